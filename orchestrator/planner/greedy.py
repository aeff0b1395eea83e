"""A greedy placement: fast, always within node limits, never optimal.

Used twice: as baseline (b) — what a team gets by filling the best req/s-per-dollar pool
for each region in turn — and as a fallback MIP start for fleets too large for HiGHS to
find a good incumbent on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.planner.problem import DemandClass, Problem

EPS = 1e-6


@dataclass(frozen=True)
class GreedyPlacement:
    nodes: dict[str, int]
    replicas: dict[tuple[str, str], int]
    served_all: bool

    def cost(self, problem: Problem) -> float:
        return sum(problem.pool_by_name[p].cost_per_node_hour * n for p, n in self.nodes.items())


def greedy_placement(problem: Problem, spot_overprovision: float, hosts: dict[str, list[str]] | None = None) -> GreedyPlacement:
    """Largest demand class first, each takes replicas on the pool with the most req/s per dollar for its size.

    Replicas are not shared between classes (a greedy team sizes each stream on its own).
    """
    hosts = problem.hosts if hosts is None else hosts
    nodes = {p.pool: p.min_nodes for p in problem.pools}
    free = {p.pool: p.min_nodes * p.gpus_per_node for p in problem.pools}
    replicas: dict[tuple[str, str], int] = {}
    served_all = True

    def rate(k: DemandClass, pool: str) -> float:
        r = problem.rate(k, pool)
        return r / (1 + spot_overprovision) if problem.pool_by_name[pool].capacity == "spot" else r

    def value(model: str, pool: str, r: float) -> float:
        return r * problem.replicas_per_node(model, pool) / max(problem.pool_by_name[pool].cost_per_node_hour, EPS)

    def place(model: str, ranked: list[str]) -> str | None:
        """One more replica of `model` on the best pool with room (opening a node if allowed)."""
        for pool in ranked:
            gpus = problem.capacity[(model, pool)].gpus_per_replica
            info = problem.pool_by_name[pool]
            if free[pool] < gpus and nodes[pool] < info.max_nodes:
                nodes[pool] += 1
                free[pool] += info.gpus_per_node
            if free[pool] >= gpus:
                free[pool] -= gpus
                replicas[(model, pool)] = replicas.get((model, pool), 0) + 1
                return pool
        return None

    for k in sorted(problem.classes, key=lambda k: -k.rps):
        allowed = set(hosts.get(k.model, []))
        ranked = sorted((p for p in problem.routes[k] if p in allowed), key=lambda p: value(k.model, p, rate(k, p)), reverse=True)
        remaining = k.rps
        while remaining > EPS:
            pool = place(k.model, ranked)
            if pool is None:
                served_all = False
                break
            remaining -= rate(k, pool)
    for m in problem.models:
        ranked = sorted(hosts.get(m.model, []), key=lambda p: value(m.model, p, problem.capacity[(m.model, p)].rps_per_replica), reverse=True)
        while sum(c for (model, _), c in replicas.items() if model == m.model) < m.min_replicas and place(m.model, ranked):
            pass
    return GreedyPlacement(nodes, replicas, served_all)
