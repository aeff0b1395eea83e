"""The state database: default location, tables, two processes' worth of sessions, safe error messages."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from orchestrator.settings import Settings
from orchestrator.state import DesiredReplicas, ReplicaRecord, ReplicaStatus, open_state, state_url
from orchestrator.state.db import StateError, engine_safe


def test_the_default_is_an_sqlite_file_in_the_environments_state_dir(gpufleet_home):
    url = state_url(Settings(), "local")
    assert url == f"sqlite:///{gpufleet_home / 'state' / 'local' / 'state.db'}"
    assert state_url(Settings(), "local", "postgresql+psycopg://u:p@db/gpufleet") == "postgresql+psycopg://u:p@db/gpufleet"


def test_open_creates_the_tables_in_wal_mode_and_rows_round_trip(tmp_path):
    store = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    with store.session() as session:
        session.add(DesiredReplicas(environment="e", model="m", pool="p", count=2, replica_json="{}"))
        session.add(ReplicaRecord(environment="e", model="m", pool="p", provider="local", url="http://127.0.0.1:1",
                                  pid=42, status=ReplicaStatus.ready))
    other = open_state(f"sqlite:///{tmp_path / 'state.db'}")  # another process's view
    with other.session() as session:
        record = session.scalars(select(ReplicaRecord)).one()
        assert (record.status, record.pid, record.restarts) == (ReplicaStatus.ready, 42, 0)
        assert session.get(DesiredReplicas, ("e", "m", "p")).count == 2
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()
    other.close()


def test_a_failed_session_rolls_back(tmp_path):
    store = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    with pytest.raises(RuntimeError), store.session() as session:
        session.add(DesiredReplicas(environment="e", model="m", pool="p", count=1, replica_json="{}"))
        raise RuntimeError
    with store.session() as session:
        assert session.scalars(select(DesiredReplicas)).all() == []


def test_an_unreachable_database_is_an_error_without_its_password():
    with pytest.raises(StateError) as error:
        open_state("sqlite:////nonexistent-dir/for/sure/state.db")
    assert "To fix" in str(error.value)
    assert "s3cret" not in engine_safe("postgresql://user:s3cret@db/gpufleet")
