"""Opening the state database: one engine and session factory per URL, tables created on open.

SQLite (the default, a file in the environment's state directory) is shared by the CLI and
the local supervisor process at once, so it runs in WAL mode with a busy timeout; any other
SQLAlchemy URL (PostgreSQL in CI and production) is used as given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import GpufleetError
from orchestrator.settings import Settings
from orchestrator.state.tables import Base

SQLITE_BUSY_TIMEOUT_S = 30


class StateError(GpufleetError):
    """The state database cannot be opened or written."""


def state_url(settings: Settings, environment: str, spec_url: str | None = None) -> str:
    """The spec's `state.url` when set, else an SQLite file in the environment's state directory (owner-only:
    the directories 0700, the database and its WAL 0600, which SQLite gives the WAL from the database)."""
    if spec_url:
        return spec_url
    directory = settings.state_dir(environment)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in (settings.home, settings.home / "state", directory):  # homes made before files were kept private
        path.chmod(0o700)
    for path in directory.glob("state.db*"):
        path.chmod(0o600)
    return f"sqlite:///{directory / 'state.db'}"


@dataclass(frozen=True)
class StateStore:
    """An open state database: `with store.session() as s:` commits on success, rolls back on error."""

    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API connection)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def open_state(url: str) -> StateStore:
    """Connect to `url` and create any missing tables."""
    try:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(engine)
        _add_new_columns(engine)
    except SQLAlchemyError as exc:
        raise StateError(
            f"cannot open the state database {engine_safe(url)}: {exc}. "
            "To fix: check the spec's state.url (driver installed, server reachable, credentials)"
        ) from exc
    return StateStore(engine, sessionmaker(engine, expire_on_commit=False))


def _add_new_columns(engine: Engine) -> None:
    """Add the nullable columns a newer gpufleet declares to tables an older one made (create_all adds
    only missing tables). Additive only: a change of type or key needs a real migration."""
    existing = inspect(engine)
    tables = set(existing.get_table_names())
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name not in tables:
                continue
            have = {c["name"] for c in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    connection.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


def engine_safe(url: str) -> str:
    """`url` with any password hidden, for messages and logs."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<an unparseable URL>"
