"""The rebalance journal and the per-environment lock, in the state database.

Every run records its ordered steps before the first one runs, and each step before and
after it runs. A run that dies anywhere leaves `started` steps and a `running` run; the
next `rebalance` resumes it from the first step not `done`. Steps are absolute targets
("pool b at 2 nodes", "3 replicas of m in b"), so re-running a started step is safe:
no double scale-up, nothing orphaned.

The lock is a row per environment. A second rebalance fails at once with who holds it;
a lock whose holder process is gone (same host) or whose heartbeat is older than the
lease is taken over.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import TypeAdapter
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.errors import GpufleetError
from orchestrator.planner.placement import Placement
from orchestrator.rebalance.steps import Step
from orchestrator.state import Base, StateStore
from orchestrator.state.tables import utcnow

LOCK_LEASE_S = 600.0


class LockHeld(GpufleetError):
    """Another rebalance of this environment is running."""


class RebalanceRun(Base):
    __tablename__ = "rebalance_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(String(63), index=True)
    status: Mapped[str] = mapped_column(String(16), doc="running, done or failed")
    target_json: Mapped[str] = mapped_column(Text, doc="The placement being applied.")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class JournalStep(Base):
    __tablename__ = "rebalance_steps"

    run_id: Mapped[int] = mapped_column(ForeignKey("rebalance_runs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    step_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), doc="pending, started or done")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EnvironmentLock(Base):
    __tablename__ = "rebalance_locks"

    environment: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255), doc="host:pid")
    acquired_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)  # SQLite drops the zone


def _holder_gone(holder: str, heartbeat: dt.datetime, lease_s: float) -> bool:
    host, _, pid = holder.rpartition(":")
    if (utcnow() - _aware(heartbeat)).total_seconds() > lease_s:
        return True
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


@contextmanager
def environment_lock(store: StateStore, environment: str, lease_s: float = LOCK_LEASE_S) -> Iterator[None]:
    """Hold the environment's rebalance lock for the block; LockHeld if another live run has it."""
    me = _me()
    try:
        with store.session() as s:
            s.add(EnvironmentLock(environment=environment, holder=me))
    except IntegrityError:
        with store.session() as s:
            lock = s.get(EnvironmentLock, environment)
            if lock is not None and not _holder_gone(lock.holder, lock.heartbeat_at, lease_s):
                raise LockHeld(f"another rebalance of '{environment}' is running ({lock.holder}, since "
                               f"{_aware(lock.acquired_at):%Y-%m-%d %H:%M:%S} UTC). To fix: wait for it to finish; "
                               f"a lock whose process is gone is taken over automatically") from None
            if lock is None:
                s.add(EnvironmentLock(environment=environment, holder=me))
            else:
                lock.holder, lock.acquired_at, lock.heartbeat_at = me, utcnow(), utcnow()
    try:
        yield
    finally:
        with store.session() as s:
            lock = s.get(EnvironmentLock, environment)
            if lock is not None and lock.holder == me:
                s.delete(lock)


def heartbeat(store: StateStore, environment: str) -> None:
    """Keep the lock's lease fresh during a long step."""
    with store.session() as s:
        lock = s.get(EnvironmentLock, environment)
        if lock is not None and lock.holder == _me():
            lock.heartbeat_at = utcnow()


@dataclass(frozen=True)
class PendingStep:
    seq: int
    step: Step


@dataclass(frozen=True)
class Run:
    """A journaled run: its id, the placement it applies, and the steps not yet done."""

    id: int
    target_json: str
    remaining: list[PendingStep]


def open_run(store: StateStore, environment: str) -> Run | None:
    """The environment's unfinished run, if one died part-way."""
    with store.session() as s:
        run = s.scalars(select(RebalanceRun).where(RebalanceRun.environment == environment, RebalanceRun.status == "running")
                        .order_by(RebalanceRun.id.desc())).first()
        if run is None:
            return None
        rows = s.scalars(select(JournalStep).where(JournalStep.run_id == run.id, JournalStep.state != "done")
                         .order_by(JournalStep.seq)).all()
        adapter = TypeAdapter(Step)
        return Run(run.id, run.target_json, [PendingStep(r.seq, adapter.validate_json(r.step_json)) for r in rows])


def start_run(store: StateStore, environment: str, target_json: str, steps: list) -> Run:
    """Record a run and all its steps (pending) before the first one runs."""
    with store.session() as s:
        run = RebalanceRun(environment=environment, status="running", target_json=target_json)
        s.add(run)
        s.flush()
        for seq, step in enumerate(steps):
            s.add(JournalStep(run_id=run.id, seq=seq, step_json=step.model_dump_json(), state="pending"))
        return Run(run.id, target_json, [PendingStep(seq, step) for seq, step in enumerate(steps)])


def mark_step(store: StateStore, run_id: int, seq: int, state: str) -> None:
    """Record that a step started (again) or is done."""
    with store.session() as s:
        row = s.get(JournalStep, (run_id, seq))
        row.state = state
        if state == "started":
            row.attempts += 1
            row.started_at = utcnow()
        else:
            row.finished_at = utcnow()


def finish_run(store: StateStore, run_id: int, error: str | None = None) -> None:
    with store.session() as s:
        run = s.get(RebalanceRun, run_id)
        run.status, run.finished_at, run.error = ("failed" if error else "done"), utcnow(), error


def last_applied(store: StateStore, environment: str) -> Placement | None:
    """The target of the environment's last finished run: the placement running now, as far as gpufleet knows."""
    with store.session() as s:
        run = s.scalars(select(RebalanceRun).where(RebalanceRun.environment == environment, RebalanceRun.status == "done")
                        .order_by(RebalanceRun.id.desc())).first()
        return Placement.model_validate_json(run.target_json) if run else None


def journal_rows(store: StateStore, run_id: int) -> list[dict]:
    """The journal of a run, for `status` and tests."""
    with store.session() as s:
        rows = s.scalars(select(JournalStep).where(JournalStep.run_id == run_id).order_by(JournalStep.seq)).all()
        return [{"seq": r.seq, "state": r.state, "attempts": r.attempts, "step": json.loads(r.step_json)} for r in rows]
