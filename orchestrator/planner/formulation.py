"""The placement MILP as a matrix: columns, rows and the indices the solve and pricing read.

The model itself — sets, variables, constraints, objectives — is stated in `planner.milp`'s
docstring; this module builds it over a given set of (model, pool) hosts in one of three
modes: "penalised" (cost plus penalties on unserved demand, the first try), "service" (the
least service shortfall alone) and "cost" (cost with the service shortfall capped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import highspy
import numpy as np

from orchestrator.planner.problem import DemandClass, Problem


@dataclass(frozen=True)
class PlanOptions:
    """Solver and modelling knobs; defaults suit fleets of a few to a thousand pools."""

    time_limit_s: float = 30.0
    mip_gap: float = 0.005
    """Relative gap on $/h (objective 2) at which the solver may stop."""
    latency_weight_usd: float = 1e-6
    """$/h per (req/s x ms) of RTT: small enough never to outweigh a real price difference."""
    spot_overprovision: float = 0.25
    """Spot replicas count at 1/(1+x) of their capacity (SpotHedge-style headroom for preemption)."""
    max_spot_share: float = 1.0
    """Largest share of any model's serving capacity on spot pools (1.0: no cap); the policy data's per-model caps apply too."""
    replica_weight_usd: float = 1e-4
    """$/h per GPU a replica holds: breaks ties towards fewer replicas on already-paid nodes."""
    churn_usd_per_replica: float = 0.5
    """With a current placement: $/h charged per replica started (stopping is free), so a plan only moves for a real saving."""
    candidate_pools: int | None = 12
    """Pools per (model, region) the solve starts from (`problem.candidate_hosts`); pricing adds any that matter. None: all."""
    relax: bool = False
    """Solve the LP relaxation (a lower bound) instead of the MILP."""
    simulate: bool = False
    """Re-plan until every (model, pool) meets its SLO with one replica simulated at its planned load
    (`planning.Planning.plan`, `planner.slo_check`); the MILP itself does not read it."""


class _Matrix:
    """Columns and rows accumulated in plain lists, handed to HiGHS once as a row-wise matrix."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.cost: list[float] = []
        self.integer: list[bool] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []
        self.starts: list[int] = [0]
        self.index: list[int] = []
        self.value: list[float] = []

    def col(self, lower: float, upper: float, cost: float = 0.0, integer: bool = False) -> int:
        self.lower.append(lower)
        self.upper.append(upper)
        self.cost.append(cost)
        self.integer.append(integer)
        return len(self.cost) - 1

    def row(self, terms: list[tuple[int, float]], lower: float = -math.inf, upper: float = math.inf) -> int:
        for column, coefficient in terms:
            self.index.append(column)
            self.value.append(coefficient)
        self.starts.append(len(self.index))
        self.row_lower.append(lower)
        self.row_upper.append(upper)
        return len(self.row_lower) - 1

    def to_lp(self) -> highspy.HighsLp:
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = len(self.cost), len(self.row_lower)
        lp.col_cost_ = np.array(self.cost)
        lp.col_lower_ = np.array(self.lower)
        lp.col_upper_ = np.array(self.upper)
        lp.row_lower_ = np.array(self.row_lower)
        lp.row_upper_ = np.array(self.row_upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = lp.num_col_, lp.num_row_
        lp.a_matrix_.start_ = np.array(self.starts, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(self.index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(self.value)
        return lp


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def exact_packing(problem: Problem, pool: str, models: list[str]) -> bool:
    """Whether GPUs-per-pool packing is exact for these models in `pool` (all sizes powers of two)."""
    return is_power_of_two(problem.pool_by_name[pool].gpus_per_node) and all(
        is_power_of_two(problem.capacity[(m, pool)].gpus_per_replica) for m in models)


def derated(problem: Problem, options: PlanOptions, pool: str, rate: float) -> float:
    """Capacity the plan counts on: spot replicas at 1/(1+σ) of what they sustain."""
    return rate / (1.0 + options.spot_overprovision) if problem.pool_by_name[pool].capacity == "spot" else rate


def service_weight(k: DemandClass) -> float:
    """Weight of one unserved req/s of class k in the service objective: small demands count as much as 1 req/s."""
    return 1.0 / min(k.rps, 1.0)


@dataclass
class Formulation:
    """The MILP over a set of (model, pool) hosts, with the column and row indices pricing needs."""

    problem: Problem
    options: PlanOptions
    hosts: dict[str, list[str]]
    mode: str  # "penalised", "service" or "cost"
    service_cap: float | None = None
    mat: _Matrix = field(default_factory=_Matrix)
    nodes: dict[str, int] = field(default_factory=dict)
    replicas: dict[tuple[str, str], int] = field(default_factory=dict)
    flows: dict[tuple[DemandClass, str], int] = field(default_factory=dict)
    unserved: dict[DemandClass, int] = field(default_factory=dict)
    replica_shortfall: dict[str, int] = field(default_factory=dict)
    spread_shortfall: dict[str, int] = field(default_factory=dict)
    ups: dict[tuple[str, str], int] = field(default_factory=dict)
    demand_rows: dict[DemandClass, int] = field(default_factory=dict)
    packing_rows: dict[str, int] = field(default_factory=dict)
    exact_rows: dict[str, bool] = field(default_factory=dict)  # pool -> its packing row counts GPUs (else node shares)
    min_replica_rows: dict[str, int] = field(default_factory=dict)
    domain_rows: dict[tuple[str, str], int] = field(default_factory=dict)
    spread_rows: dict[str, int] = field(default_factory=dict)
    spot_rows: dict[str, int] = field(default_factory=dict)
    budget_row: int | None = None
    effective_budget: float | None = None

    def __post_init__(self) -> None:
        self._build()

    def _build(self) -> None:
        problem, options, mat = self.problem, self.options, self.mat
        cost_on = self.mode != "service"
        penalty = 100.0 * (max((p.cost_per_node_hour for p in problem.pools), default=0.0) + 1.0) if self.mode == "penalised" else \
            (1.0 if self.mode == "service" else 0.0)
        tie = 1.0 if cost_on else 0.0

        self.nodes = {p.pool: mat.col(p.min_nodes, p.max_nodes, p.cost_per_node_hour * tie, True) for p in problem.pools}
        for model, pools in self.hosts.items():
            for pool in pools:
                upper = problem.pool_by_name[pool].max_nodes * problem.replicas_per_node(model, pool)
                gpus = problem.capacity[(model, pool)].gpus_per_replica
                self.replicas[(model, pool)] = mat.col(0, upper, options.replica_weight_usd * gpus * tie, True)

        service_terms: list[tuple[int, float]] = []
        for k in problem.classes:
            if not problem.routes[k]:
                continue  # no pool may serve it at all: unserved whatever the plan (`structural_shortfall`)
            routes = [p for p in problem.routes[k] if (k.model, p) in self.replicas]
            self.unserved[k] = u = mat.col(0, k.rps, penalty * service_weight(k))
            service_terms.append((u, service_weight(k)))
            terms = [(u, 1.0)]
            for pool in routes:
                rtt = problem.rtt[(k.region, pool)]
                self.flows[(k, pool)] = f = mat.col(0, k.rps, options.latency_weight_usd * rtt * tie)
                terms.append((f, 1.0))
            self.demand_rows[k] = mat.row(terms, k.rps, k.rps)

        hosted_in: dict[str, list[str]] = {}
        for m, pool in self.replicas:
            hosted_in.setdefault(pool, []).append(m)
        for p in problem.pools:  # packing
            hosted = hosted_in.get(p.pool, [])
            self.exact_rows[p.pool] = exact_packing(problem, p.pool, hosted)
            if self.exact_rows[p.pool]:
                terms = [(self.replicas[(m, p.pool)], float(problem.capacity[(m, p.pool)].gpus_per_replica)) for m in hosted]
                self.packing_rows[p.pool] = mat.row(terms + [(self.nodes[p.pool], -float(p.gpus_per_node))], upper=0.0)
            else:
                terms = [(self.replicas[(m, p.pool)], 1.0 / problem.replicas_per_node(m, p.pool)) for m in hosted]
                self.packing_rows[p.pool] = mat.row(terms + [(self.nodes[p.pool], -1.0)], upper=0.0)

        by_host: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for (k, pool), col in self.flows.items():  # capacity: Σ_k f/a ≤ x
            by_host.setdefault((k.model, pool), []).append((col, 1.0 / derated(problem, options, pool, problem.rate(k, pool))))
        for key, col in self.replicas.items():
            if key in by_host:
                mat.row(by_host[key] + [(col, -1.0)], upper=0.0)

        for m in problem.models:
            hosted = [self.replicas[(m.model, p)] for p in self.hosts.get(m.model, [])]
            if m.min_replicas > 0 and problem.hosts.get(m.model):
                self.replica_shortfall[m.model] = s = mat.col(0, m.min_replicas, penalty, True)
                service_terms.append((s, 1.0))
                self.min_replica_rows[m.model] = mat.row([(c, 1.0) for c in hosted] + [(s, 1.0)], lower=m.min_replicas)
            spread = problem.spread.get(m.model)
            if spread is not None and spread_target(problem, m.model) > 1:
                domains: dict[str, list[int]] = {}
                for pool in self.hosts.get(m.model, []):
                    domains.setdefault(problem.domain(pool, spread.across), []).append(self.replicas[(m.model, pool)])
                indicators = []
                for domain, cols in domains.items():
                    y = mat.col(0, 1, 0.0, True)
                    self.domain_rows[(m.model, domain)] = mat.row([(y, 1.0)] + [(c, -1.0) for c in cols], upper=0.0)
                    indicators.append(y)
                target = spread_target(problem, m.model)
                self.spread_shortfall[m.model] = t = mat.col(0, target, penalty, True)
                service_terms.append((t, 1.0))
                self.spread_rows[m.model] = mat.row([(y, 1.0) for y in indicators] + [(t, 1.0)], lower=target)

        for m in problem.models:  # spot share of serving capacity: Σ_spot ā x ≤ φ Σ ā x
            cap = spot_cap(problem, options, m.model)
            terms = [(col, spot_coefficient(problem, pool, cap, m.model)) for (model, pool), col in self.replicas.items() if model == m.model]
            if cap < 1.0 and terms:
                self.spot_rows[m.model] = mat.row(terms, upper=0.0)

        if problem.budget_usd_per_hour is not None:
            floor_cost = sum(p.cost_per_node_hour * p.min_nodes for p in problem.pools)
            self.effective_budget = max(problem.budget_usd_per_hour, floor_cost)
            self.budget_row = mat.row([(self.nodes[p.pool], p.cost_per_node_hour) for p in problem.pools], upper=self.effective_budget)

        if problem.current and cost_on:
            for key, col in self.replicas.items():
                self.ups[key] = up = mat.col(0, math.inf, options.churn_usd_per_replica)  # stopping is free: no d⁻ column
                mat.row([(col, 1.0), (up, -1.0)], upper=problem.current.get(key, 0))

        if self.service_cap is not None:
            mat.row(service_terms, upper=self.service_cap)

    def service(self, values: np.ndarray) -> float:
        """Σ w u + Σ s + Σ t of a solution of this formulation."""
        total = sum(service_weight(k) * values[col] for k, col in self.unserved.items())
        return total + sum(values[col] for col in self.replica_shortfall.values()) + sum(values[col] for col in self.spread_shortfall.values())


def spread_target(problem: Problem, model: str) -> int:
    """Domains the plan can spread `model` over: the spec's `spread.min`, or fewer when fewer domains can host it."""
    spread = problem.spread.get(model)
    if spread is None:
        return 0
    return min(spread.min, len({problem.domain(p, spread.across) for p in problem.hosts.get(model, [])}))


def spot_cap(problem: Problem, options: PlanOptions, model: str) -> float:
    return min(options.max_spot_share, problem.rules.spot_cap(model))


def spot_coefficient(problem: Problem, pool: str, cap: float, model: str) -> float:
    """x_mp's coefficient in model's spot-share row: (spot? 1 : 0) − φ, times the mix's req/s per replica."""
    spot = 1.0 if problem.pool_by_name[pool].capacity == "spot" else 0.0
    return (spot - cap) * problem.capacity[(model, pool)].rps_per_replica
