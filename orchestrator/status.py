"""The status contract: what runs now, what it costs, and where it drifted from the last applied plan.

`orchestrator status --format json` prints it (and `up --format json`, with the demo's answers
added); built from what the providers observe, never from what was asked for alone.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from orchestrator.contracts import Document
from orchestrator.planner.placement import Placement
from orchestrator.providers.base import FleetState
from orchestrator.spec import FleetSpec


class GatewayStatus(Document):
    url: str
    healthy: bool


class PoolStatus(Document):
    pool: str
    nodes: int = Field(description="Nodes present, whatever their state.")
    healthy_nodes: int
    requested: int | None = Field(description="The size asked of the cloud (booting nodes count); null where nothing is asked.")


class ReplicaStatus(Document):
    model: str
    pool: str
    url: str
    healthy: bool
    pid: int | None = Field(description="The process id of a local replica; null elsewhere.")
    restarts: int
    version: str | None = Field(None, description="The model release it runs; null for a replica started before versions.")
    canary: bool = Field(False, description="A rollout's new version, serving beside the stable replicas.")


class ReplicaDrift(Document):
    """A (model, pool) whose replicas differ from the plan: missing, extra or unhealthy."""

    kind: Literal["replicas"] = "replicas"
    model: str
    pool: str
    planned: int
    running: int
    healthy: int


class NodeDrift(Document):
    """A pool with fewer nodes than planned (or more, where nodes are rented)."""

    kind: Literal["nodes"] = "nodes"
    pool: str
    planned: int
    running: int


Drift = Annotated[ReplicaDrift | NodeDrift, Field(discriminator="kind")]


class AsleepStatus(Document):
    """A model scaled to zero while idle in a pool: no replica runs; the next request starts them."""

    model: str
    pool: str
    replicas: int = Field(description="Replicas it runs when awake.")


class RolloutStatus(Document):
    """The environment's unfinished rollout (`orchestrator rollout`)."""

    model: str
    from_version: str
    to_version: str
    step: int = Field(description="The traffic step under way, from 1.")
    steps: int
    percent: float = Field(description="Share of the model's traffic on the new version now, percent.")
    started_at: str = Field(description="When the rollout started, ISO 8601 UTC.")


class FleetStatus(Document):
    """An environment as it runs now."""

    schema_version: Literal[1] = Field(1, description="Changes only with an incompatible change (docs/contracts.md).")
    environment: str
    cost_per_hour: float = Field(description="Nodes present (or requested) x their $/h, at the applied plan's prices.")
    gateway: GatewayStatus | None = Field(description="The local gateway; null when none runs here.")
    pools: list[PoolStatus]
    replicas: list[ReplicaStatus]
    drift: list[Drift] = Field(description="Empty when it runs as planned, or when no plan was applied yet.")
    rollout: RolloutStatus | None = Field(None, description="A rollout in flight; null when none is.")
    asleep: list[AsleepStatus] = Field(default_factory=list, description="Models scaled to zero while idle (`scale_to_zero`).")


def drift(state: FleetState, applied: Placement | None) -> list[ReplicaDrift | NodeDrift]:
    """Where what runs differs from the last applied plan: replicas missing, extra or unhealthy; pools resized."""
    if applied is None:
        return []
    planned = {(r.model, r.pool): r.count for r in applied.replicas if r.count}
    running: dict[tuple[str, str], list[bool]] = {}
    for r in state.replicas:
        if not r.canary:  # a rollout's replicas are its own, not the plan's
            running.setdefault((r.model, r.pool), []).append(r.healthy)
    found: list[ReplicaDrift | NodeDrift] = []
    for model, pool in sorted(set(planned) | set(running)):
        if f"{model}@{pool}" in state.asleep:  # stopped on purpose while idle
            continue
        seen = running.get((model, pool), [])
        if len(seen) != planned.get((model, pool), 0) or not all(seen):
            found.append(ReplicaDrift(model=model, pool=pool, planned=planned.get((model, pool), 0), running=len(seen),
                                      healthy=sum(seen)))
    observed = {p.pool: p.nodes if p.requested is None else p.requested for p in state.pools}
    for p in applied.pools:
        nodes = observed.get(p.pool, 0)
        owned = p.provider in ("local", "onprem")  # owned nodes are there whether the plan uses them or not
        if nodes < p.nodes or (nodes > p.nodes and not owned):
            found.append(NodeDrift(pool=p.pool, planned=p.nodes, running=nodes))
    return found


def fleet_status(fleet: FleetSpec, name: str, state: FleetState, applied: Placement | None,
                 rollout: RolloutStatus | None = None) -> FleetStatus:
    """The status of an environment from what its providers observe, the last applied plan and a rollout in flight."""
    costs = {p.name: p.cost_per_hour or 0.0 for p in fleet.pools}
    if applied is not None:
        costs |= {p.pool: p.cost_per_node_hour for p in applied.pools}
    return FleetStatus(
        environment=name,
        cost_per_hour=round(sum((p.nodes if p.requested is None else p.requested) * costs.get(p.pool, 0.0)
                                for p in state.pools), 6),
        gateway=GatewayStatus(url=state.gateway.url, healthy=state.gateway.healthy) if state.gateway else None,
        pools=[PoolStatus(pool=p.pool, nodes=p.nodes, healthy_nodes=p.healthy_nodes, requested=p.requested)
               for p in state.pools],
        replicas=[ReplicaStatus(model=r.model, pool=r.pool, url=r.url, healthy=r.healthy, pid=r.pid, restarts=r.restarts,
                                version=r.version, canary=r.canary) for r in state.replicas],
        drift=drift(state, applied), rollout=rollout,
        asleep=[AsleepStatus(model=key.rpartition("@")[0], pool=key.rpartition("@")[2], replicas=count)
                for key, count in sorted(state.asleep.items())])
