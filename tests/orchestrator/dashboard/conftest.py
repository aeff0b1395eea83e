"""A ledger seeded with three days of the hybrid fleet, once per session, shared by the dashboard's tests (read-only)."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.ledger import open_ledger
from orchestrator.settings import load_settings
from tests.orchestrator.dashboard.seed import ENVIRONMENT, seed_ledger

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("seeded-ledger")
    store = open_ledger(load_settings(), ENVIRONMENT, f"sqlite:///{directory / 'state.db'}")
    seed_ledger(store, NOW, directory / "bill")
    yield store
    store.close()
