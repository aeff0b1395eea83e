"""The placement MILP, built as one sparse matrix and solved with HiGHS.

Sets
    P pools; M models; K demand classes k = (m, r, b): model m's users in region r whose
    requests fall in size bucket b, with planned rate λ_k (req/s: mean x peak factor x share);
    R(k) ⊆ P pools within max_rtt_ms of r, allowed by residency, that serve size b within m's SLO;
    H(m) ⊆ P pools that serve some of m's sizes within its SLO (any region).
Data
    c_p $/node-hour; G_p GPUs per node; [lo_p, hi_p] node bounds; g_mp GPUs per replica;
    k_mp = ⌊G_p / g_mp⌋ replicas per node; a_kp req/s of class k one replica sustains on p
    (÷(1+σ) on spot pools, σ = spot over-provisioning); ā_mp the same for m's whole mix;
    rtt_rp ms; N_m min replicas; S_m (domain kind, count) spread; B budget $/h; x⁰_mp current replicas.
Variables
    n_p ∈ ℤ ∩ [lo_p, hi_p]           nodes in pool p
    x_mp ∈ ℤ₊, m ∈ M, p ∈ H(m)       replicas of m in p
    f_kp ∈ [0, λ_k], p ∈ R(k)        req/s of class k served by p (route share = Σ_b f / λ)
    u_k ∈ [0, λ_k]                   req/s of class k left unserved
    s_m ∈ ℤ₊, t_m ∈ ℤ₊               shortfall of min_replicas / of spread domains
    y_md ∈ {0,1}                     domain d hosts a replica of m
    d⁺_mp ≥ 0                        replicas started against x⁰ (churn-aware mode)
Constraints
    packing    Σ_m g_mp x_mp ≤ G_p n_p            (all g, G powers of two: whole replicas fit nodes)
               Σ_m x_mp / k_mp ≤ n_p              (other node sizes: conservative per-type packing)
    capacity   Σ_k f_kp / a_kp ≤ x_mp             (replicas time-shared by the size buckets, Mélange-style)
    demand     Σ_p f_kp + u_k = λ_k
    replicas   Σ_p x_mp + s_m ≥ N_m
    spread     y_md ≤ Σ_{p∈d} x_mp,  Σ_d y_md + t_m ≥ S_m
    spot       Σ_{p spot} ā_mp x_mp ≤ φ_m Σ_p ā_mp x_mp   (φ_m = max spot share of m's capacity, when < 1)
    budget     Σ c_p n_p ≤ max(B, Σ c_p lo_p)
    churn      x_mp − d⁺_mp ≤ x⁰_mp              (d⁺ ≥ replicas started)
Objective, lexicographic (`solve`)
    1. the least service shortfall  Σ_k w_k u_k + Σ_m (s_m + t_m),  w_k = 1 / min(λ_k, 1);
    2. at that service, the lowest  Σ c_p n_p + ε Σ rtt f + δ Σ g_mp x_mp + κ Σ d⁺
    with ε a latency tie-break, δ a tiny charge per GPU a replica holds (no idle replicas on
    nodes that are paid for anyway) and κ $/h per replica started. The MIP gap applies to
    objective 2 only, so it is a gap on $/h. Stopping a replica is free: make-before-break
    keeps capacity while it drains, and a charge on it would keep an idle surplus replica on a
    paid node forever. The running placement, when it has the capacity for the demand, is the
    MIP start (`_current_start`), so a move must beat staying by more than the gap.
Candidate pools
    The MILP starts from a pruned set of (m, p) pairs (`problem.candidate_hosts`) and prices
    the rest against its LP duals (`planner.pricing`): column generation until the LP is the
    full problem's LP, then, after the MILP, every pair whose reduced cost is within the
    incumbent's distance from that LP bound is added and the MILP solved again. A pair left
    out provably appears in no placement cheaper than the one returned, so the result and its
    bound hold for the full problem.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import highspy

from orchestrator.planner.formulation import Formulation, PlanOptions, derated, spread_target
from orchestrator.planner.greedy import greedy_placement
from orchestrator.planner.pricing import price_out
from orchestrator.planner.problem import DemandClass, Problem, candidate_hosts

logger = logging.getLogger(__name__)

SERVICE_TOLERANCE = 1e-6  # relative slack on the least service shortfall once it is fixed
MAX_PRICING_ROUNDS = 50
SERVICE_TIME_SHARE = 0.5  # when some demand goes unserved: the penalised and the service solves each take half the time left
SOLVER_GAP_SHARE = 0.9  # HiGHS's gap is on cost plus tie-breaks; asking for 90 % of it keeps the gap on $/h within --mip-gap

__all__ = ["PlanOptions", "Solution", "solve"]


@dataclass
class Solution:
    """Raw solver values, keyed like the problem."""

    status: str
    seconds: float
    mip_gap: float | None
    nodes: dict[str, float] = field(default_factory=dict)
    replicas: dict[tuple[str, str], float] = field(default_factory=dict)
    class_flows: dict[tuple[DemandClass, str], float] = field(default_factory=dict)
    class_unserved: dict[DemandClass, float] = field(default_factory=dict)
    replica_shortfall: dict[str, float] = field(default_factory=dict)
    spread_shortfall: dict[str, float] = field(default_factory=dict)
    effective_budget: float | None = None
    lower_bound: float | None = None
    """$/h no placement of the full problem undercuts at this plan's service (None: not proven, e.g. time limit)."""
    pairs: tuple[int, int] = (0, 0)
    """(model, pool) pairs in the final MILP, out of all that could host."""

    @property
    def flows(self) -> dict[tuple[str, str, str], float]:
        """req/s per (model, region, pool), summed over size buckets."""
        out: dict[tuple[str, str, str], float] = {}
        for (k, pool), v in self.class_flows.items():
            out[(k.model, k.region, pool)] = out.get((k.model, k.region, pool), 0.0) + v
        return out

    @property
    def unserved(self) -> dict[tuple[str, str], float]:
        """req/s left unserved per (model, region), summed over size buckets."""
        out: dict[tuple[str, str], float] = {}
        for k, v in self.class_unserved.items():
            out[(k.model, k.region)] = out.get((k.model, k.region), 0.0) + v
        return out


@dataclass
class _Run:
    """One HiGHS solve of a formulation: its values and what the solver reports."""

    status: str
    values: np.ndarray
    objective: float
    dual_bound: float | None
    row_duals: np.ndarray | None = None


def _solve_lp(form: Formulation) -> _Run:
    highs = _highs(form, time_limit=math.inf)
    highs.run()
    solution = highs.getSolution()
    return _Run(_status(highs), np.asarray(solution.col_value), highs.getInfo().objective_function_value, None,
                 np.asarray(solution.row_dual) if solution.dual_valid else None)


def _solve_mip(form: Formulation, time_limit: float, gap: float, start: dict[int, float]) -> _Run:
    highs = _highs(form, time_limit=time_limit)
    highs.setOptionValue("mip_rel_gap", float(gap))
    integer = [i for i, flag in enumerate(form.mat.integer) if flag]
    highs.changeColsIntegrality(len(integer), np.array(integer, dtype=np.int32),
                                np.array([highspy.HighsVarType.kInteger] * len(integer)))
    if start:
        highs.setSolution(len(start), np.array(list(start), dtype=np.int32), np.array(list(start.values())))
    highs.run()
    info = highs.getInfo()
    values = np.asarray(highs.getSolution().col_value)
    has = values.size == len(form.mat.cost) and info.primal_solution_status == 2
    return _Run(_status(highs), values if has else np.array([]), info.objective_function_value if has else math.nan,
                float(info.mip_dual_bound))


def _highs(form: Formulation, time_limit: float) -> highspy.Highs:
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    if math.isfinite(time_limit):
        highs.setOptionValue("time_limit", max(0.1, float(time_limit)))
    highs.passModel(form.mat.to_lp())
    return highs


def _status(highs: highspy.Highs) -> str:
    return highs.modelStatusToString(highs.getModelStatus()).lower().replace(" ", "_")


def _rounded_start(form: Formulation, lp: np.ndarray) -> dict[int, float]:
    """A MIP start from the LP relaxation: replicas rounded up, then the fewest nodes that hold them.

    Large fleets leave HiGHS's own heuristics without a good incumbent for a long time;
    this one is usually within a few percent. Empty when rounding breaks a node limit.
    """
    problem = form.problem
    if lp.size == 0:
        return {}
    start: dict[int, float] = {}
    share: dict[str, float] = {}
    for (model, pool), col in form.replicas.items():
        count = math.ceil(lp[col] - 1e-6)
        start[col] = float(count)
        share[pool] = share.get(pool, 0.0) + count * _node_share(problem, form, model, pool)
    return _with_nodes(form, start, share)


def _node_share(problem: Problem, form: Formulation, model: str, pool: str) -> float:
    """Nodes one replica takes, as the packing row counts them."""
    if form.exact_rows[pool]:
        return problem.capacity[(model, pool)].gpus_per_replica / problem.pool_by_name[pool].gpus_per_node
    return 1.0 / problem.replicas_per_node(model, pool)


def _with_nodes(form: Formulation, start: dict[int, float], share: dict[str, float]) -> dict[int, float]:
    for p in form.problem.pools:
        needed = max(p.min_nodes, math.ceil(share.get(p.pool, 0.0) - 1e-9))
        if needed > p.max_nodes:
            return {}
        start[form.nodes[p.pool]] = float(needed)
    return start


def _current_start(form: Formulation) -> dict[int, float]:
    """A MIP start that keeps the running placement, when it still has the capacity for every model's demand.

    With it as the incumbent, a solve that stops within the MIP gap returns the fleet as it
    runs rather than another placement about as cheap, so a move must beat staying by more
    than the gap: the hysteresis that free stops would otherwise take away. Empty when the
    running placement falls short of demand or breaks a node limit.
    """
    problem, options = form.problem, form.options
    start: dict[int, float] = {}
    capacity: dict[str, float] = {}
    share: dict[str, float] = {}
    for (model, pool), col in form.replicas.items():
        count = min(problem.current.get((model, pool), 0), problem.pool_by_name[pool].max_nodes * problem.replicas_per_node(model, pool))
        start[col] = float(count)
        if (model, pool) in form.ups:
            start[form.ups[(model, pool)]] = 0.0
        capacity[model] = capacity.get(model, 0.0) + count * derated(problem, options, pool, problem.capacity[(model, pool)].rps_per_replica)
        share[pool] = share.get(pool, 0.0) + count * _node_share(problem, form, model, pool)
    demand: dict[str, float] = {}
    for d in problem.demand:
        demand[d.model] = demand.get(d.model, 0.0) + d.planned_rps
    if any(capacity.get(model, 0.0) < rps - 1e-9 for model, rps in demand.items()):
        return {}
    return _with_nodes(form, start, share)


def _greedy_start(form: Formulation) -> dict[int, float]:
    """A MIP start from the greedy placement, for when rounding the LP breaks a node limit."""
    result = greedy_placement(form.problem, form.options.spot_overprovision, form.hosts)
    start = {form.nodes[p]: float(n) for p, n in result.nodes.items()}
    start.update({col: float(result.replicas.get(key, 0)) for key, col in form.replicas.items()})
    return start


def _start_from(form: Formulation, previous: Formulation, values: np.ndarray) -> dict[int, float]:
    """A previous solve's integer values as a start for a formulation over more (or the same) hosts."""
    if values.size == 0:
        return {}
    start = {form.nodes[p]: float(round(values[col])) for p, col in previous.nodes.items()}
    start.update({col: float(round(values[previous.replicas[key]])) if key in previous.replicas else 0.0
                  for key, col in form.replicas.items()})
    return start


def solve(problem: Problem, options: PlanOptions) -> Solution:
    """The lexicographic optimum: least service shortfall, then lowest $/h within the MIP gap on cost.

    Never raises for an infeasible fleet: what cannot be served is left unserved (see module
    docstring). With `options.relax`, the LP relaxation over every pool (a lower bound).
    """
    started = time.perf_counter()
    solver_gap = options.mip_gap * SOLVER_GAP_SHARE
    left = lambda: options.time_limit_s - (time.perf_counter() - started)  # noqa: E731
    hosts = candidate_hosts(problem, None if options.relax else options.candidate_pools, options.spot_overprovision)

    def converged_lp(mode: str, service_cap: float | None) -> tuple[Formulation, _Run, bool]:
        """Column generation: add priced-out pairs until the LP over `hosts` is the full problem's LP (True)."""
        nonlocal hosts
        for _ in range(MAX_PRICING_ROUNDS):
            form = Formulation(problem, options, hosts, mode, service_cap)
            lp = _solve_lp(form)
            if lp.row_duals is None:
                return form, lp, False
            added = price_out(form, lp.row_duals, hosts, threshold=0.0)
            if not added:
                return form, lp, True
            hosts = _merge(hosts, added)
        return form, lp, False

    form, lp, full_lp = converged_lp("penalised", None)
    if options.relax:
        return _solution(form, lp, started, lp.objective if full_lp else None, certified=False)

    start = (_current_start(form) if problem.current else {}) or _rounded_start(form, lp.values) or _greedy_start(form)
    short = form.service(lp.values) > 1e-6  # even the LP leaves some unserved: keep time for the service and cost solves
    run = _solve_mip(form, left() * (SERVICE_TIME_SHARE if short else 1.0), solver_gap, start)
    if run.values.size and form.service(run.values) > 1e-6:
        # something goes unserved: the least shortfall first (from the penalised incumbent), then the cheapest plan at it
        service_form = Formulation(problem, options, dict(problem.hosts), "service")
        best = _solve_mip(service_form, max(left() * SERVICE_TIME_SHARE, 1.0), 0.0, _start_from(service_form, form, run.values))
        if best.values.size:
            cap = service_form.service(best.values)
            cap += SERVICE_TOLERANCE * max(1.0, cap)
            used = {m: [p for p in pools if best.values[service_form.replicas[(m, p)]] > 0.5] for m, pools in problem.hosts.items()}
            hosts = _merge(hosts, used)
            form, lp, full_lp = converged_lp("cost", cap)
            run = _solve_mip(form, max(left(), 1.0), solver_gap, _start_from(form, service_form, best.values))

    # certificate: every pair left out has a reduced cost (against the full LP's duals) larger than
    # the incumbent's distance from the LP bound, so it is in no placement cheaper than the incumbent
    lp_form, certified = form, _every_pair(problem, hosts)  # nothing left out: the MILP's own bound holds
    while not certified and run.values.size and full_lp:
        added = price_out(lp_form, lp.row_duals, hosts, threshold=run.objective - lp.objective)
        if not added:
            certified = True
        elif left() <= 0:
            break  # out of time: the incumbent stands, bounded by the full LP
        else:
            logger.info("%s: %d pruned (model, pool) pairs could beat the incumbent; solving with them",
                        problem.environment, sum(map(len, added.values())))
            previous, values = form, run.values
            hosts = _merge(hosts, added)
            form = Formulation(problem, options, hosts, form.mode, form.service_cap)
            run = _solve_mip(form, max(left(), 1.0), solver_gap, _start_from(form, previous, values))
            certified = _every_pair(problem, hosts)
    return _solution(form, run, started, lp.objective if full_lp else None, certified)


def _every_pair(problem: Problem, hosts: dict[str, list[str]]) -> bool:
    return all(len(hosts.get(m, ())) == len(pools) for m, pools in problem.hosts.items())


def _merge(hosts: dict[str, list[str]], added: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {m: list(pools) for m, pools in hosts.items()}
    for m, pools in added.items():
        have = set(out.setdefault(m, []))
        out[m] += [p for p in pools if p not in have]
    return out


def _solution(form: Formulation, run: _Run, started: float, lp_bound: float | None, certified: bool) -> Solution:
    problem, options = form.problem, form.options
    values = run.values
    has = values.size == len(form.mat.cost)

    def pick(index: dict) -> dict:
        return {key: float(values[col]) for key, col in index.items()} if has else {}

    cost = sum(p.cost_per_node_hour * round(values[form.nodes[p.pool]]) for p in problem.pools) if has else math.nan
    bound = _cost_lower_bound(form, run, run.dual_bound if certified else lp_bound, cost) if has else None
    logger.info("solved %s: %d columns, %d rows, status %s in %.2fs", problem.environment,
                len(form.mat.cost), len(form.mat.row_lower), run.status, time.perf_counter() - started)
    return Solution(
        status=run.status,
        seconds=time.perf_counter() - started,
        mip_gap=None if bound is None or not has or options.relax else max(0.0, (cost - bound) / cost) if cost > 0 else 0.0,
        nodes=pick(form.nodes),
        replicas=pick(form.replicas),
        class_flows=pick(form.flows),
        class_unserved=pick(form.unserved) | {k: k.rps for k in problem.classes if not problem.routes[k]},
        replica_shortfall=pick(form.replica_shortfall) | {m.model: float(m.min_replicas) for m in problem.models
                                                          if m.min_replicas > 0 and not problem.hosts.get(m.model)},
        spread_shortfall={m: v + problem.spread[m].min - spread_target(problem, m) for m, v in pick(form.spread_shortfall).items()}
        | {m: float(s.min - spread_target(problem, m)) for m, s in problem.spread.items() if 1 < s.min and spread_target(problem, m) <= 1},
        effective_budget=form.effective_budget,
        lower_bound=bound,
        pairs=(len(form.replicas), sum(map(len, problem.hosts.values()))),
    )


def _cost_lower_bound(form: Formulation, run: _Run, bound: float | None, cost: float) -> float | None:
    """$/h that no placement of the full problem at this plan's service level undercuts: a bound on the
    objective (the certified MIP's dual bound, else the full LP's) less the most the tie-breaks could
    add to it. With a current placement the churn charges stay in: it bounds cost plus churn."""
    problem, options = form.problem, form.options
    if bound is None or not math.isfinite(bound):
        return None
    if form.mode == "penalised" and form.service(run.values) > 1e-6:
        return None  # the bound mixes penalties and cost (a solve that stopped early)
    latency = options.latency_weight_usd * sum(k.rps * problem.model_by_name[k.model].max_rtt_ms for k in problem.classes)
    return max(0.0, min(cost, bound - latency - options.replica_weight_usd * _most_gpus(problem, cost)))


def _most_gpus(problem: Problem, budget: float) -> float:
    """The most GPUs nodes costing at most `budget` $/h hold (a fractional knapsack, cheapest per GPU first):
    what bounds the GPU tie-break of any placement at least as cheap as the incumbent."""
    budget -= sum(p.min_nodes * p.cost_per_node_hour for p in problem.pools)  # min_nodes are paid in any placement
    gpus = float(sum(p.min_nodes * p.gpus_per_node for p in problem.pools))
    for p in sorted(problem.pools, key=lambda p: p.cost_per_node_hour / p.gpus_per_node):
        extra = p.max_nodes - p.min_nodes
        if p.cost_per_node_hour <= 0:
            gpus += extra * p.gpus_per_node
        elif budget > 0:
            nodes = min(extra, budget / p.cost_per_node_hour)
            gpus += nodes * p.gpus_per_node
            budget -= nodes * p.cost_per_node_hour
    return gpus
