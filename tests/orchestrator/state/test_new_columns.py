"""A state database an older gpufleet made gains the nullable columns a newer one declares (`db._add_new_columns`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Column, MetaData, Table, create_engine, select

from orchestrator.state import ReplicaRecord, ReplicaStatus, open_state
from orchestrator.state.tables import utcnow


def _old_database(path: Path) -> None:
    """The `replicas` table as it was before model versions (no `version` column), with one replica in it."""
    engine = create_engine(f"sqlite:///{path}")
    old = Table("replicas", MetaData(), *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                                          for c in ReplicaRecord.__table__.columns if c.name != "version"))
    old.create(engine)
    with engine.begin() as connection:
        connection.execute(old.insert().values(environment="e", model="m", pool="p", provider="local",
                                               url="http://127.0.0.1:1", pid=42, status="ready", restarts=0,
                                               started_at=utcnow(), updated_at=utcnow()))
    engine.dispose()


def _columns(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[1] for row in db.execute("PRAGMA table_info(replicas)")]


def test_an_old_replicas_table_gains_the_version_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _old_database(path)
    assert "version" not in _columns(path)
    store = open_state(f"sqlite:///{path}")
    assert _columns(path)[-1] == "version"
    with store.session() as session:
        old = session.scalars(select(ReplicaRecord)).one()
        assert (old.model, old.pid, old.status, old.version) == ("m", 42, ReplicaStatus.ready, None)
        session.add(ReplicaRecord(environment="e", model="m", pool="p", provider="local", url="http://127.0.0.1:2",
                                  status=ReplicaStatus.starting, version="v2"))
    store.close()

    again = open_state(f"sqlite:///{path}")  # a second open adds nothing and loses nothing
    assert _columns(path).count("version") == 1
    with again.session() as session:
        assert [r.version for r in session.scalars(select(ReplicaRecord).order_by(ReplicaRecord.id))] == [None, "v2"]
    again.close()
