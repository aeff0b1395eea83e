"""The rollouts of an environment, in the state database: which version each model runs, and a rollout in flight.

A rollout is one row, written before anything changes and updated at every step, so a
rollout that dies part-way is resumed by the next `orchestrator rollout` of the same model
and version, and `status` and `rebalance` see it. The version a model runs is its last
promoted rollout's, or the spec's `version` when none was promoted.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.errors import GpufleetError, InputError
from orchestrator.spec import FleetSpec
from orchestrator.state import Base, StateStore
from orchestrator.state.tables import UtcDateTime, utcnow

if TYPE_CHECKING:
    from orchestrator.rollout.gate import Verdict
    from orchestrator.status import RolloutStatus

IN_FLIGHT = "running"
FINISHED = ("promoted", "rolled_back")


class RolloutRecord(Base):
    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(String(63), index=True)
    model: Mapped[str] = mapped_column(String(63))
    from_version: Mapped[str] = mapped_column(String(40))
    to_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), doc="running, promoted or rolled_back")
    step: Mapped[int] = mapped_column(Integer, default=0, doc="Index of the traffic step under way (rollout.steps).")
    percent: Mapped[float] = mapped_column(default=0.0, doc="Traffic on the new version now, percent.")
    plan_json: Mapped[str] = mapped_column(Text, doc="The rollout's plan: steps, canary replicas per pool, pool growth.")
    verdicts_json: Mapped[str] = mapped_column(Text, default="[]", doc="Each judged step's figures and verdict.")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True, doc="Why it was rolled back.")
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


def in_flight(store: StateStore, environment: str) -> RolloutRecord | None:
    """The environment's unfinished rollout (at most one runs at a time: they hold the environment's lock)."""
    with store.session() as s:
        return s.scalars(select(RolloutRecord).where(RolloutRecord.environment == environment,
                                                     RolloutRecord.status == IN_FLIGHT)
                         .order_by(RolloutRecord.id.desc())).first()


def running_versions(store: StateStore, environment: str) -> dict[str, str]:
    """model -> the version its last promoted rollout moved it to (models never rolled out are absent)."""
    with store.session() as s:
        rows = s.scalars(select(RolloutRecord).where(RolloutRecord.environment == environment,
                                                     RolloutRecord.status == "promoted").order_by(RolloutRecord.id)).all()
        return {r.model: r.to_version for r in rows}


def start(store: StateStore, environment: str, model: str, from_version: str, to_version: str, plan_json: str) -> int:
    with store.session() as s:
        row = RolloutRecord(environment=environment, model=model, from_version=from_version, to_version=to_version,
                            status=IN_FLIGHT, plan_json=plan_json)
        s.add(row)
        s.flush()
        return row.id


def record_step(store: StateStore, rollout_id: int, step: int, percent: float) -> None:
    with store.session() as s:
        row = s.get(RolloutRecord, rollout_id)
        row.step, row.percent = step, percent


def record_verdicts(store: StateStore, rollout_id: int, verdicts_json: str) -> None:
    with store.session() as s:
        s.get(RolloutRecord, rollout_id).verdicts_json = verdicts_json


def judged_before(rollout: RolloutRecord) -> list[Verdict]:
    """The verdicts of the steps before the one under way: what a resumed rollout keeps (that step is judged again)."""
    from orchestrator.rollout.gate import Verdict

    return [v for v in map(Verdict.model_validate, json.loads(rollout.verdicts_json)) if v.step < rollout.step]


def finish(store: StateStore, rollout_id: int, status: str, reason: str | None = None) -> None:
    with store.session() as s:
        row = s.get(RolloutRecord, rollout_id)
        row.status, row.reason, row.finished_at = status, reason, utcnow()
        row.percent = 100.0 if status == "promoted" else 0.0


def end_in_flight(store: StateStore, environment: str, reason: str) -> None:
    """Record the unfinished rollout, if any, rolled back: what it was moving no longer runs."""
    row = in_flight(store, environment)
    if row is not None:
        finish(store, row.id, "rolled_back", reason)


class RolloutInFlight(GpufleetError):
    """A rollout of the environment is unfinished: nothing else may change its replicas until it is."""


def rollout_status(store: StateStore, environment: str) -> RolloutStatus | None:
    """The unfinished rollout as `status` reports it; None when none is."""
    from orchestrator.rollout.plan import RolloutPlan
    from orchestrator.status import RolloutStatus

    row = in_flight(store, environment)
    if row is None:
        return None
    return RolloutStatus(model=row.model, from_version=row.from_version, to_version=row.to_version, step=row.step + 1,
                         steps=len(RolloutPlan.model_validate_json(row.plan_json).steps), percent=row.percent,
                         started_at=row.started_at.isoformat(timespec="seconds"))


def rollout_in_flight_message(rollout: RolloutRecord, spec_path: Path) -> str:
    where = f"--spec {spec_path}"
    return (f"a rollout of {rollout.model} from {rollout.from_version} to {rollout.to_version} is unfinished (step "
            f"{rollout.step + 1}, {rollout.percent:g} % on {rollout.to_version}). To fix: finish it with `orchestrator "
            f"rollout {where} --model {rollout.model} --to {rollout.to_version}` (it resumes) or roll it back with "
            f"`orchestrator rollout {where} --model {rollout.model} --abort`")


def checked_versions(spec: FleetSpec, versions: dict[str, str]) -> dict[str, str]:
    """The versions models were rolled out to, each checked to still be in the spec; InputError naming the model if not."""
    for model in spec.models:
        name = versions.get(model.name)
        if name is not None and name != model.version and name not in {v.name for v in model.versions}:
            raise InputError(f"models[{model.name}]: it runs version {name} (rolled out), which the spec no longer "
                             f"declares. To fix: keep {name} in its `versions` (or make it the model's `version`), or "
                             f"roll out to one of {', '.join([model.version, *(v.name for v in model.versions)])}")
    return versions
