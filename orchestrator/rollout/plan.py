"""A rollout's plan: how many replicas of the new version each pool runs at each traffic step, and the room for them.

Pure: the running fleet and the applied placement in, a plan out. The new version starts
beside the old one (make-before-break). Where a gateway splits by weight (local pools), a
step of p % runs ceil(p % of the old replicas) of the new version in each pool (at least
one), and all of them at 100 %, so each version always has the replicas for the share it
is sent, at the capacity per replica the planner gave the model there (`capacity[]` of the
applied placement). Where traffic follows pod counts (Kubernetes Services), the new
version's share is c / (N + c), so a step of p % runs round(N·p / (100 − p)) (at least
one): N at 50 %, 3N at 75 % (docs/rollouts-kubernetes.md). The old replicas all stay until
the promotion. A pool without the GPUs for that grows up to its `max_nodes` for the
rollout and shrinks back after; one that cannot is refused, naming the pool.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import GpufleetError
from orchestrator.planner.placement import Placement
from orchestrator.providers.base import ReplicaSpec
from orchestrator.rebalance.steps import Fleet
from orchestrator.spec.models import Model


class RolloutRefused(GpufleetError):
    """The rollout cannot start without dropping capacity (no room for the new version); nothing was changed."""


class PoolRollout(BaseModel):
    model_config = ConfigDict(frozen=True)

    pool: str
    stable: int = Field(description="Replicas of the old version, kept until the promotion.")
    gpus_per_replica: int
    canary: list[int] = Field(description="Replicas of the new version at each traffic step.")
    nodes: int = Field(description="Nodes of the pool before the rollout (it shrinks back to this).")
    grow_to: int | None = Field(None, description="Nodes the pool grows to for the rollout; None: it has the room.")


class RolloutPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    from_version: str
    to_version: str
    steps: list[float] = Field(description="Percent of the model's traffic on the new version at each step.")
    pools: list[PoolRollout]
    replica: dict[str, ReplicaSpec] = Field(description="Pool -> what a replica of the new version runs there.")


def replica_of(model: Model, version: str | None, tensor_parallel_size: int) -> ReplicaSpec:
    """What a replica of `model` at `version` (None: the spec's own) runs, at the plan's GPUs per replica."""
    release = model.version_named(version)
    idle = model.scale_to_zero
    return ReplicaSpec(source=release.source or model.source, served_name=model.name, tensor_parallel_size=tensor_parallel_size,
                       max_model_len=release.max_model_len, version=release.name, image=release.image,
                       vllm_args=tuple(release.vllm_args), idle_after_s=idle.idle_after_s if idle else None,
                       wake_hold_s=idle.hold_s if idle else None)


def canary_counts(steps: list[float], stable: int, by_pods: bool = False) -> list[int]:
    """Replicas of the new version at each step, at least one: its share of the old ones, rounded up, where a
    gateway splits by weight; where traffic follows pod counts (`by_pods`), the count whose ratio is that share."""
    if by_pods:
        return [stable if percent >= 100 else max(1, round(stable * percent / (100 - percent))) for percent in steps]
    return [stable if percent >= 100 else max(1, math.ceil(stable * percent / 100 - 1e-9)) for percent in steps]


def plan_rollout(model: Model, from_version: str, to_version: str, current: Fleet, applied: Placement,
                 by_pods: frozenset[str] = frozenset()) -> RolloutPlan:
    """The plan for `model` from `from_version` to `to_version`; RolloutRefused where a pool has no room.
    `by_pods`: the pools whose traffic follows pod counts (no weighting gateway)."""
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in applied.capacity}
    pools = {p.pool: p for p in applied.pools}
    planned: list[PoolRollout] = []
    for (name, pool_name), stable in sorted(current.replicas.items()):
        if name != model.name or stable <= 0:
            continue
        pool = pools.get(pool_name)
        if pool is None or (name, pool_name) not in gpus:
            raise RolloutRefused(f"{name} runs in {pool_name}, which the applied plan does not know. "
                                 "To fix: run `orchestrator rebalance` first, so the fleet matches a plan")
        each = gpus[(name, pool_name)]
        counts = canary_counts(model.rollout.steps, stable, pool_name in by_pods)
        used = sum(n * gpus.get(key, 0) for key, n in current.replicas.items() if key[1] == pool_name)
        nodes = current.nodes.get(pool_name, 0)
        needed = math.ceil((used + max(counts) * each) / pool.gpus_per_node)
        if needed > pool.max_nodes:
            free = max(0, pool.max_nodes * pool.gpus_per_node - used)
            raise RolloutRefused(
                f"pool {pool_name} has room for {free} more GPUs at its max_nodes {pool.max_nodes}; {name}'s new version "
                f"needs {max(counts) * each} beside the old one at 100 %. To fix: raise {pool_name}'s max_nodes, or move "
                f"some of {name}'s replicas elsewhere first (`orchestrator rebalance`)")
        planned.append(PoolRollout(pool=pool_name, stable=stable, gpus_per_replica=each, canary=counts, nodes=nodes,
                                   grow_to=needed if needed > nodes else None))
    if not planned:
        raise RolloutRefused(f"no replica of {model.name} runs. To fix: start it first (`orchestrator up` or `rebalance`); "
                             f"a model with no replicas takes a new version by editing its spec")
    return RolloutPlan(model=model.name, from_version=from_version, to_version=to_version, steps=model.rollout.steps,
                       pools=planned, replica={p.pool: replica_of(model, to_version, p.gpus_per_replica) for p in planned})
