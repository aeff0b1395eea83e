"""The move contract: what `rebalance --format json` prints for programs (a dry run's preview included).

Nodes per pool and replicas per (model, pool) before and after, $/h before and after, the
ordered steps as the executor runs them, the policy warnings, and whether it was applied.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.contracts import Document
from orchestrator.providers.base import Step
from orchestrator.rebalance.run import Move


class CostChange(Document):
    before: float = Field(description="$/h of the nodes running now, at the plan's prices.")
    after: float = Field(description="$/h of the target placement.")


class PoolChange(Document):
    pool: str
    nodes_before: int
    nodes_after: int


class ReplicaChange(Document):
    model: str
    pool: str
    before: int = Field(description="Healthy replicas now.")
    after: int = Field(description="Replicas in the target placement.")


class MoveReport(Document):
    """One rebalance: from what runs to the target placement, make-before-break."""

    schema_version: Literal[1] = Field(1, description="Changes only with an incompatible change (docs/contracts.md).")
    environment: str
    cost_per_hour: CostChange
    pools: list[PoolChange] = Field(description="Every pool of the target placement.")
    replicas: list[ReplicaChange] = Field(description="Every (model, pool) running now or in the target, sorted.")
    steps: list[Step] = Field(description="In order; empty when the fleet matches the plan.")
    warnings: list[str] = Field(description="Policy warnings on the target placement (denials stop the move).")
    applied: bool = Field(description="Whether the steps were run (false for --dry-run, a declined or a pointless move).")


def move_report(move: Move, applied: bool) -> MoveReport:
    """The move as its contract."""
    after = {(r.model, r.pool): r.count for r in move.target.replicas}
    for key in move.current.replicas:
        after.setdefault(key, 0)
    return MoveReport(
        environment=move.environment,
        cost_per_hour=CostChange(before=round(move.cost_before, 4), after=round(move.cost_after, 4)),
        pools=[PoolChange(pool=p.pool, nodes_before=move.current.nodes.get(p.pool, 0), nodes_after=p.nodes)
               for p in move.target.pools],
        replicas=[ReplicaChange(model=m, pool=p, before=move.current.replicas.get((m, p), 0), after=n)
                  for (m, p), n in sorted(after.items())],
        steps=move.steps, warnings=move.warnings, applied=applied)
