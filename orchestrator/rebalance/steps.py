"""From what runs now to the target placement: ordered make-before-break steps.

Pure: a fleet snapshot and a target in, a list of steps out, checked by simulation.

Order: grow node pools (to the peak the move needs, within max_nodes) → start replicas
(a provider's ScaleUp returns once they are ready and in the gateway) → drain and stop
leaving replicas (ScaleDown takes them out of the gateway first) → start the replicas that
needed the room those freed → shrink node pools to the target.

Invariants, verified step by step before anything runs: no pool ever holds more GPUs than
its nodes have; no model's serving capacity drops below min(its demand, what it has now);
no model drops below min(min_replicas, what it has now). A move that cannot keep them
(a full pool that must first empty before it fills) is refused with the model and pool
named, rather than dropping requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from orchestrator.errors import GpufleetError
from orchestrator.planner.placement import Placement
from orchestrator.providers.base import ReplicaSpec, ResizePool, ScaleDown, ScaleUp, Step


class RebalanceUnsafe(GpufleetError):
    """The move cannot be made without dropping capacity below demand; nothing was changed."""


@dataclass(frozen=True)
class Fleet:
    """A snapshot: nodes per pool and ready replicas per (model, pool)."""

    nodes: dict[str, int]
    replicas: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def of(cls, placement: Placement) -> Fleet:
        return cls({p.pool: p.nodes for p in placement.pools}, {(r.model, r.pool): r.count for r in placement.replicas})


def _gpus(placement: Placement) -> dict[tuple[str, str], int]:
    return {(c.model, c.pool): c.gpus_per_replica for c in placement.capacity}


def _rates(placement: Placement) -> dict[tuple[str, str], float]:
    return {(c.model, c.pool): c.rps_per_replica for c in placement.capacity}


def plan_steps(
    current: Fleet, target: Placement, replica_spec: Callable[[str, str], ReplicaSpec],
) -> list[Step]:
    """The ordered steps from `current` to `target` (empty when nothing changes); raises RebalanceUnsafe.

    `replica_spec(model, pool)` says what a replica of the model runs in that pool.
    """
    gpus = _gpus(target)
    pools = {p.pool: p for p in target.pools}
    goal = {(r.model, r.pool): r.count for r in target.replicas}
    keys = sorted(set(goal) | {k for k, v in current.replicas.items() if v})
    steps: list[Step] = []

    def used(replicas: dict[tuple[str, str], int], pool: str) -> int:
        return sum(count * gpus.get(key, 0) for key, count in replicas.items() if key[1] == pool)

    peak = {k: max(current.replicas.get(k, 0), goal.get(k, 0)) for k in keys}
    nodes = dict(current.nodes)
    for name, p in pools.items():
        needed = max(p.nodes, math.ceil(used(peak, name) / p.gpus_per_node))
        grow_to = min(p.max_nodes, max(needed, current.nodes.get(name, 0)))
        if grow_to > current.nodes.get(name, 0):
            steps.append(ResizePool(pool=name, nodes=grow_to))
            nodes[name] = grow_to

    running = dict(current.replicas)

    def start(key: tuple[str, str]) -> bool:
        model, pool = key
        room = nodes.get(pool, 0) * pools[pool].gpus_per_node - used(running, pool)
        if (goal.get(key, 0) - running.get(key, 0)) * gpus[key] > room:
            return False
        steps.append(ScaleUp(model=model, pool=pool, count=goal[key], replica=replica_spec(model, pool)))
        running[key] = goal[key]
        return True

    deferred = [k for k in keys if goal.get(k, 0) > current.replicas.get(k, 0) and not start(k)]
    for key in keys:
        if goal.get(key, 0) < current.replicas.get(key, 0):
            steps.append(ScaleDown(model=key[0], pool=key[1], count=goal.get(key, 0)))
            running[key] = goal.get(key, 0)
    for key in deferred:
        if not start(key):
            raise RebalanceUnsafe(f"no room for {goal[key]} replicas of {key[0]} in {key[1]} even after the others leave. "
                                  "To fix: raise the pool's max_nodes or re-plan")
    for name, p in pools.items():
        if p.nodes < nodes.get(name, 0):
            steps.append(ResizePool(pool=name, nodes=p.nodes))
    check_steps(current, target, steps)
    return steps


def check_steps(current: Fleet, target: Placement, steps: Iterable[Step]) -> None:
    """Simulate the steps and raise RebalanceUnsafe at the first one that breaks an invariant."""
    gpus, rates = _gpus(target), _rates(target)
    pools = {p.pool: p for p in target.pools}
    demand: dict[str, float] = {}
    for d in target.demand:
        demand[d.model] = demand.get(d.model, 0.0) + d.rps
    min_replicas = {m.model: m.min_replicas for m in target.models}
    nodes, running = dict(current.nodes), dict(current.replicas)

    def capacity(model: str) -> float:
        return sum(count * rates.get(key, 0.0) for key, count in running.items() if key[0] == model)

    def count(model: str) -> int:
        return sum(c for key, c in running.items() if key[0] == model)

    floor_capacity = {m: min(demand.get(m, 0.0), capacity(m)) for m in min_replicas}
    floor_count = {m: min(min_replicas[m], count(m)) for m in min_replicas}
    for index, step in enumerate(steps):
        if isinstance(step, ResizePool):
            nodes[step.pool] = step.nodes
        else:
            running[(step.model, step.pool)] = step.count
        for pool, p in pools.items():
            held = sum(c * gpus.get(key, 0) for key, c in running.items() if key[1] == pool)
            if held > nodes.get(pool, 0) * p.gpus_per_node:
                raise RebalanceUnsafe(f"step {index + 1} ({step.kind} {getattr(step, 'pool', '')}) leaves {pool} with {held} GPUs of "
                                      f"replicas on {nodes.get(pool, 0)} nodes")
        for model in min_replicas:
            if capacity(model) < floor_capacity[model] - 1e-9:
                raise RebalanceUnsafe(f"step {index + 1} drops {model} to {capacity(model):.2f} req/s, below {floor_capacity[model]:.2f}")
            if count(model) < floor_count[model]:
                raise RebalanceUnsafe(f"step {index + 1} drops {model} to {count(model)} replicas, below min_replicas {floor_count[model]}")
