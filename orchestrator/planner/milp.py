"""The placement MILP, built as one sparse matrix and solved with HiGHS.

Sets
    P pools; M models; D demand pairs (m, r) with rate λ_mr (req/s);
    E(m,r) ⊆ P pools that serve m within its SLO and lie within max_rtt_ms of r;
    H(m) ⊆ P pools that serve m within its SLO (any region).
Data
    c_p $/node-hour; G_p GPUs per node; [lo_p, hi_p] node bounds; g_mp GPUs per replica;
    k_mp = ⌊G_p / g_mp⌋ replicas per node; a_mp req/s per replica (÷(1+σ) on spot pools,
    σ = spot over-provisioning); rtt_rp ms; N_m min replicas; S_m (domain kind, count) spread;
    B budget $/h; x⁰_mp current replicas.
Variables
    n_p ∈ ℤ ∩ [lo_p, hi_p]           nodes in pool p
    x_mp ∈ ℤ₊, m ∈ M, p ∈ H(m)       replicas of m in p
    f_mrp ∈ [0, λ_mr], p ∈ E(m,r)    req/s of (m, r) served by p (route share = f/λ)
    u_mr ∈ [0, λ_mr]                 req/s left unserved (only where nothing else is possible)
    s_m ∈ ℤ₊, t_m ∈ ℤ₊               shortfall of min_replicas / of spread domains
    y_md ∈ {0,1}                     domain d hosts a replica of m
    d⁺_mp ≥ 0                        replicas started against x⁰ (churn-aware mode)
Objective (minimise, $/h)
    Σ c_p n_p + ε Σ rtt_rp f_mrp + δ Σ g_mp x_mp + Π_u Σ u_mr + Π_s Σ (s_m + t_m) + κ Σ d⁺
    with ε a latency tie-break, δ a tiny charge per GPU a replica holds (no idle replicas on
    nodes that are paid for anyway), κ $/h per replica started, and penalties Π large enough
    that serving, min_replicas and spread always win over cost (lexicographic in effect).
    Stopping a replica is free: make-before-break keeps capacity while it drains, and a charge
    on it would keep an idle surplus replica on a paid node forever (δ alone is far below κ).
    A move from pool a to pool b still pays κ per replica started in b. The running placement,
    when it has the capacity for the demand, is the MIP start (`_current_start`), so a solve
    that stops within the gap keeps it rather than an about-as-cheap move.
Constraints
    packing    Σ_m g_mp x_mp ≤ G_p n_p            (all g, G powers of two: whole replicas fit nodes)
               Σ_m x_mp / k_mp ≤ n_p              (other node sizes: conservative per-type packing)
    capacity   Σ_r f_mrp ≤ a_mp x_mp
    demand     Σ_p f_mrp + u_mr = λ_mr
    replicas   Σ_p x_mp + s_m ≥ N_m
    spread     y_md ≤ Σ_{p∈d} x_mp,  Σ_d y_md + t_m ≥ S_m
    spot       Σ_{p spot} a_mp x_mp ≤ φ_m Σ_p a_mp x_mp   (φ_m = max spot share of m's capacity, when < 1)
    budget     Σ c_p n_p ≤ max(B, Σ c_p lo_p)
    churn      x_mp − d⁺_mp ≤ x⁰_mp              (d⁺ ≥ replicas started)
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace

import highspy
import numpy as np

from orchestrator.planner.greedy import greedy_placement
from orchestrator.planner.problem import Problem, candidates

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanOptions:
    """Solver and modelling knobs; defaults suit fleets of a few to a thousand pools."""

    time_limit_s: float = 30.0
    mip_gap: float = 0.005
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
    """Pools kept per (model, region) by lowest marginal $/req/s (see `problem.candidates`); None: all (exact)."""
    relax: bool = False
    """Solve the LP relaxation (a lower bound) instead of the MILP."""


@dataclass
class Solution:
    """Raw solver values, keyed like the problem."""

    status: str
    seconds: float
    objective: float
    dual_bound: float | None
    mip_gap: float | None
    nodes: dict[str, float] = field(default_factory=dict)
    replicas: dict[tuple[str, str], float] = field(default_factory=dict)
    flows: dict[tuple[str, str, str], float] = field(default_factory=dict)
    unserved: dict[tuple[str, str], float] = field(default_factory=dict)
    replica_shortfall: dict[str, float] = field(default_factory=dict)
    spread_shortfall: dict[str, float] = field(default_factory=dict)
    effective_budget: float | None = None


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

    def row(self, terms: list[tuple[int, float]], lower: float = -math.inf, upper: float = math.inf) -> None:
        for column, coefficient in terms:
            self.index.append(column)
            self.value.append(coefficient)
        self.starts.append(len(self.index))
        self.row_lower.append(lower)
        self.row_upper.append(upper)

    def to_lp(self, relax: bool) -> highspy.HighsLp:
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
        if not relax and any(self.integer):
            lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in self.integer]
        return lp


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _rounded_start(problem: Problem, lp: np.ndarray, nodes: dict[str, int], replicas: dict[tuple[str, str], int]) -> dict[int, float]:
    """A MIP start from the LP relaxation: replicas rounded up, then the fewest nodes that hold them.

    Large fleets leave HiGHS's own heuristics without a good incumbent for a long time;
    this one is usually within a few percent. Empty when rounding breaks a node limit.
    """
    if lp.size == 0:
        return {}
    start: dict[int, float] = {}
    gpus: dict[str, int] = {}
    for (model, pool), col in replicas.items():
        count = math.ceil(lp[col] - 1e-6)
        start[col] = float(count)
        gpus[pool] = gpus.get(pool, 0) + count * problem.capacity[(model, pool)].gpus_per_replica
    for p in problem.pools:
        needed = max(p.min_nodes, math.ceil(gpus.get(p.pool, 0) / p.gpus_per_node))
        if needed > p.max_nodes:
            return {}
        start[nodes[p.pool]] = float(needed)
    return start


def _current_start(problem: Problem, options: PlanOptions, nodes: dict[str, int], replicas: dict[tuple[str, str], int],
                   ups: dict[tuple[str, str], int]) -> dict[int, float]:
    """A MIP start that keeps the running placement, when it still has the capacity for every model's demand.

    With it as the incumbent, a solve that stops within the MIP gap returns the fleet as it
    runs rather than another placement about as cheap, so a move must beat staying by more
    than the gap: the hysteresis that free stops would otherwise take away. Empty when the
    running placement falls short of demand or breaks a node limit.
    """
    start: dict[int, float] = {}
    capacity: dict[str, float] = {}
    node_share: dict[str, float] = {}  # nodes the kept replicas take, as the packing row counts them
    for (model, pool), col in replicas.items():
        p, cap = problem.pool_by_name[pool], problem.capacity[(model, pool)]
        per_node = problem.replicas_per_node(model, pool)
        count = min(problem.current.get((model, pool), 0), p.max_nodes * per_node)
        start[col], start[ups[(model, pool)]] = float(count), 0.0
        rate = cap.rps_per_replica / (1.0 + options.spot_overprovision) if p.capacity == "spot" else cap.rps_per_replica
        capacity[model] = capacity.get(model, 0.0) + count * rate
        exact = _is_power_of_two(p.gpus_per_node) and _is_power_of_two(cap.gpus_per_replica)
        node_share[pool] = node_share.get(pool, 0.0) + count * (cap.gpus_per_replica / p.gpus_per_node if exact else 1.0 / per_node)
    demand: dict[str, float] = {}
    for d in problem.demand:
        demand[d.model] = demand.get(d.model, 0.0) + d.rps
    if any(capacity.get(model, 0.0) < rps - 1e-9 for model, rps in demand.items()):
        return {}
    for p in problem.pools:
        needed = max(p.min_nodes, math.ceil(node_share.get(p.pool, 0.0) - 1e-9))
        if needed > p.max_nodes:
            return {}
        start[nodes[p.pool]] = float(needed)
    return start


def _greedy_start(problem, options, routes, hosts, nodes, replicas) -> dict[int, float]:
    """A MIP start from the greedy placement, for when rounding the LP breaks a node limit."""
    result = greedy_placement(problem, options.spot_overprovision, routes, hosts)
    start = {nodes[p]: float(n) for p, n in result.nodes.items()}
    start.update({col: float(result.replicas.get(key, 0)) for key, col in replicas.items()})
    return start


def solve(problem: Problem, options: PlanOptions) -> Solution:
    """Build and solve the MILP (or its relaxation); never raises for an infeasible fleet.

    Pruned candidate pools (`candidates`) can leave demand unserved that every pool would
    serve (many demands counting the same cheap pools' capacity): then it is solved again
    with every eligible pool, so pruning never costs a served request.
    """
    solution = _solve(problem, options)
    if options.candidate_pools is not None and any(v > 1e-6 for v in solution.unserved.values()):
        logger.info("%s: pruned candidate pools left demand unserved; solving with every eligible pool", problem.environment)
        exact = _solve(problem, replace(options, candidate_pools=None))
        if sum(exact.unserved.values()) < sum(solution.unserved.values()) - 1e-6:
            return replace(exact, seconds=solution.seconds + exact.seconds)
    return solution


def _solve(problem: Problem, options: PlanOptions) -> Solution:
    started = time.perf_counter()
    mat = _Matrix()
    max_node_cost = max((p.cost_per_node_hour for p in problem.pools), default=0.0) + 1.0
    shortfall_penalty = 100.0 * max_node_cost  # a missing replica is worse than any node

    nodes = {p.pool: mat.col(p.min_nodes, p.max_nodes, p.cost_per_node_hour, True) for p in problem.pools}

    replicas: dict[tuple[str, str], int] = {}
    routes, hosts = candidates(problem, options.candidate_pools)
    for model, pools in hosts.items():
        for pool in pools:
            upper = problem.pool_by_name[pool].max_nodes * problem.replicas_per_node(model, pool)
            gpus = problem.capacity[(model, pool)].gpus_per_replica
            replicas[(model, pool)] = mat.col(0, upper, options.replica_weight_usd * gpus, True)

    flows: dict[tuple[str, str, str], int] = {}
    unserved: dict[tuple[str, str], int] = {}
    for d in problem.demand:
        per_rps = 100.0 * max_node_cost / min(d.rps, 1.0)  # leaving load unserved costs more than serving it
        unserved[(d.model, d.region)] = u = mat.col(0, d.rps, per_rps)
        terms = [(u, 1.0)]
        for pool in routes[(d.model, d.region)]:
            rtt = problem.rtt[(d.region, pool)]
            flows[(d.model, d.region, pool)] = f = mat.col(0, d.rps, options.latency_weight_usd * rtt)
            terms.append((f, 1.0))
        mat.row(terms, d.rps, d.rps)  # demand

    for p in problem.pools:  # packing
        hosted = [(m, replicas[(m, p.pool)]) for m in hosts if (m, p.pool) in replicas]
        sizes = [problem.capacity[(m, p.pool)].gpus_per_replica for m, _ in hosted]
        if _is_power_of_two(p.gpus_per_node) and all(_is_power_of_two(g) for g in sizes):
            terms = [(col, float(g)) for (_, col), g in zip(hosted, sizes)]
            mat.row(terms + [(nodes[p.pool], -float(p.gpus_per_node))], upper=0.0)
        else:
            terms = [(col, 1.0 / problem.replicas_per_node(m, p.pool)) for m, col in hosted]
            mat.row(terms + [(nodes[p.pool], -1.0)], upper=0.0)

    flows_by_host: dict[tuple[str, str], list[int]] = {}
    for (model, _region, pool), col in flows.items():
        flows_by_host.setdefault((model, pool), []).append(col)
    for (model, pool), col in replicas.items():  # capacity
        pool_info = problem.pool_by_name[pool]
        rate = problem.capacity[(model, pool)].rps_per_replica
        if pool_info.capacity == "spot":
            rate /= 1.0 + options.spot_overprovision
        terms = [(f, 1.0) for f in flows_by_host.get((model, pool), [])]
        if terms:
            mat.row(terms + [(col, -rate)], upper=0.0)

    replica_shortfall: dict[str, int] = {}
    spread_shortfall: dict[str, int] = {}
    for m in problem.models:
        hosted = [replicas[(m.model, p)] for p in hosts.get(m.model, [])]
        if m.min_replicas > 0:
            replica_shortfall[m.model] = s = mat.col(0, m.min_replicas, shortfall_penalty, True)
            mat.row([(c, 1.0) for c in hosted] + [(s, 1.0)], lower=m.min_replicas)
        spread = problem.spread.get(m.model)
        if spread is not None and spread.min > 1:
            domains: dict[str, list[int]] = {}
            for pool in hosts.get(m.model, []):
                domains.setdefault(problem.domain(pool, spread.across), []).append(replicas[(m.model, pool)])
            indicators = []
            for cols in domains.values():
                y = mat.col(0, 1, 0.0, True)
                mat.row([(y, 1.0)] + [(c, -1.0) for c in cols], upper=0.0)
                indicators.append(y)
            spread_shortfall[m.model] = t = mat.col(0, spread.min, shortfall_penalty, True)
            mat.row([(y, 1.0) for y in indicators] + [(t, 1.0)], lower=spread.min)

    for m in problem.models:  # spot share of serving capacity: Σ_spot a x ≤ φ Σ a x
        cap = min(options.max_spot_share, problem.rules.spot_cap(m.model))
        if cap >= 1.0:
            continue
        terms = [(col, ((1.0 if problem.pool_by_name[pool].capacity == "spot" else 0.0) - cap) * problem.capacity[(model, pool)].rps_per_replica)
                 for (model, pool), col in replicas.items() if model == m.model]
        if terms:
            mat.row(terms, upper=0.0)

    effective_budget = None
    if problem.budget_usd_per_hour is not None:
        floor_cost = sum(p.cost_per_node_hour * p.min_nodes for p in problem.pools)
        effective_budget = max(problem.budget_usd_per_hour, floor_cost)
        mat.row([(nodes[p.pool], p.cost_per_node_hour) for p in problem.pools], upper=effective_budget)

    ups: dict[tuple[str, str], int] = {}
    if problem.current:
        for key, col in replicas.items():
            was = problem.current.get(key, 0)
            ups[key] = up = mat.col(0, math.inf, options.churn_usd_per_replica)  # stopping is free: no d⁻ column
            mat.row([(col, 1.0), (up, -1.0)], upper=was)

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", float(options.time_limit_s))
    highs.setOptionValue("mip_rel_gap", float(options.mip_gap))
    highs.passModel(mat.to_lp(relax=True))
    highs.run()
    if not options.relax and any(mat.integer):
        start = (_current_start(problem, options, nodes, replicas, ups) if problem.current else {}) or \
            _rounded_start(problem, np.asarray(highs.getSolution().col_value), nodes, replicas) or \
            _greedy_start(problem, options, routes, hosts, nodes, replicas)
        integer = [i for i, flag in enumerate(mat.integer) if flag]
        highs.changeColsIntegrality(len(integer), np.array(integer, dtype=np.int32),
                                    np.array([highspy.HighsVarType.kInteger] * len(integer)))
        highs.setOptionValue("time_limit", max(0.1, float(options.time_limit_s) - (time.perf_counter() - started)))
        if start:
            highs.setSolution(len(start), np.array(list(start), dtype=np.int32), np.array(list(start.values())))
        highs.run()
    status = highs.modelStatusToString(highs.getModelStatus()).lower().replace(" ", "_")
    info = highs.getInfo()
    values = np.asarray(highs.getSolution().col_value)
    has_values = values.size == len(mat.cost)
    is_mip = not options.relax and any(mat.integer)
    logger.info("solved %s: %d columns, %d rows, status %s in %.2fs", problem.environment,
                len(mat.cost), len(mat.row_lower), status, time.perf_counter() - started)

    def pick(index: dict) -> dict:
        return {key: float(values[col]) for key, col in index.items()} if has_values else {}

    return Solution(
        status=status,
        seconds=time.perf_counter() - started,
        objective=float(info.objective_function_value) if has_values else math.nan,
        dual_bound=float(info.mip_dual_bound) if is_mip else (float(info.objective_function_value) if has_values else None),
        mip_gap=float(info.mip_gap) if is_mip and has_values else None,
        nodes=pick(nodes),
        replicas=pick(replicas),
        flows=pick(flows),
        unserved=pick(unserved),
        replica_shortfall=pick(replica_shortfall),
        spread_shortfall=pick(spread_shortfall),
        effective_budget=effective_budget,
    )
