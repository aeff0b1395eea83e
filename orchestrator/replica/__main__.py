"""`python -m orchestrator.replica`: the replica entrypoint (see entrypoint.py)."""

from orchestrator.replica.entrypoint import main

main()
