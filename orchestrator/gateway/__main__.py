"""`python -m orchestrator.gateway`: vllm-router and its OpenAI front (see serve.py)."""

from orchestrator.gateway.serve import main

main()
