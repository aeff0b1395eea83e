"""Opening an environment's state database with the ledger's tables on it."""

from __future__ import annotations

import orchestrator.ledger.tables  # noqa: F401  (registers the ledger's tables on Base before they are created)
from orchestrator.settings import Settings
from orchestrator.state import StateStore, open_state, state_url


def open_ledger(settings: Settings, environment: str, spec_url: str | None = None) -> StateStore:
    """The environment's state database (the spec's `state.url`, else its SQLite file), ledger tables created."""
    return open_state(state_url(settings, environment, spec_url))
