"""The ledger database of the ledger tests (SQLite; PostgreSQL too when GPUFLEET_TEST_POSTGRES_URL is set)."""

from tests.orchestrator.ledger.conftest import store  # noqa: F401 (a fixture, shared)
