"""`plan_fleet`: spec and inputs in, a self-describing placement out.

Pure: reads no files, calls no cloud. The placement embeds its inputs (placement
contract), lists what could not be served and why, and names the constraints that
shaped the answer.
"""

from __future__ import annotations

import math
from collections import defaultdict

from orchestrator.inputs import FleetInputs
from orchestrator.planner.formulation import PlanOptions, spot_cap
from orchestrator.planner.milp import Solution, solve
from orchestrator.planner.mix_check import check_mix
from orchestrator.planner.placement import (
    CapacityRow, DemandRow, LatencyRow, ModelRow, Placement, PoolRow, ReplicaRow, RouteRow, SizeBucketRow, SizeRateRow,
    SolverInfo, UnservedRow,
)
from orchestrator.planner.problem import DemandClass, PlacementRules, Problem, build_problem
from orchestrator.spec import FleetSpec

EPS = 1e-6


def plan_fleet(
    spec: FleetSpec,
    inputs: FleetInputs,
    options: PlanOptions | None = None,
    current: dict[tuple[str, str], int] | None = None,
    rules: PlacementRules | None = None,
) -> Placement:
    """The cheapest placement serving every region within its SLOs; churn-aware when `current` is given,
    within the policy guardrails when `rules` are."""
    return plan_problem(build_problem(spec, inputs, current, rules), options or PlanOptions())


def plan_problem(problem: Problem, options: PlanOptions) -> Placement:
    """Solve a (possibly modified, e.g. by a baseline) problem into a placement."""
    solution = solve(problem, options)
    return to_placement(problem, solution, options)


def _size(k: DemandClass) -> str:
    return k.label or f"{k.input_tokens} prompt / {k.output_tokens} generated tokens"


def _nearest(problem: Problem, region: str, pools: list[str]) -> str:
    pool = min(pools, key=lambda p: problem.rtt.get((region, p), math.inf))
    return f"{pool} at {problem.rtt.get((region, pool), math.inf):.0f} ms"


def _unserved_reason(problem: Problem, k: DemandClass, solution: Solution, options: PlanOptions) -> str:
    """The binding cause of unserved load, naming the nearest pool each rule still allows."""
    model = problem.model_by_name[k.model]
    hosts = problem.hosts.get(k.model, [])
    if not hosts:
        caps = [c for (m, _), c in problem.capacity.items() if m == k.model]
        if caps:
            return "no pool meets the model's TTFT/TPOT SLO for its request sizes (" + ", ".join(sorted({c.binding or "measured" for c in caps})) + " bound)"
        return "the model fits no pool's GPUs (among the pools its residency allows)"
    sized = [p for p in hosts if problem.rate(k, p) > 0]
    if not sized:
        bindings = sorted({s.binding or "measured" for p in hosts for s in problem.capacity[(k.model, p)].by_size
                           if (s.input_tokens, s.output_tokens) == (k.input_tokens, k.output_tokens)})
        return f"requests of {_size(k)}: no pool serves them within the TTFT/TPOT SLO ({', '.join(bindings) or 'capacity'} bound)"
    demand = problem.demand_by_pair[(k.model, k.region)]
    allowed = [p for p in sized if problem.rules.route_allowed(demand.continent, problem.pool_by_name[p])]
    near = [p for p in sized if problem.rtt.get((k.region, p), math.inf) <= model.max_rtt_ms]
    if not problem.routes[k]:
        area = next((a for a in problem.rules.residency_areas if demand.continent in a.continents), None)
        if area is not None and near:
            where = ", ".join(sorted(area.continents)) + (" or on-prem" if area.allow_onprem else "")
            reach = f"the nearest of those is {_nearest(problem, k.region, allowed)} (max_rtt_ms {model.max_rtt_ms:g})" if allowed else "no pool there serves it"
            return (f"residency '{area.name}' serves users in {k.region} only from pools in {where}: {reach}; "
                    f"without it {_nearest(problem, k.region, near)} would serve")
        if area is not None and not allowed:
            return f"residency '{area.name}' allows no pool that serves it for users in {k.region}"
        return f"no pool within max_rtt_ms {model.max_rtt_ms:g}: nearest that serves it is {_nearest(problem, k.region, allowed or sized)}"
    routes = problem.routes[k]
    if solution.effective_budget is not None:
        cost = sum(problem.pool_by_name[p].cost_per_node_hour * round(n) for p, n in solution.nodes.items())
        if cost >= solution.effective_budget - 0.01:
            return f"budget exhausted (${solution.effective_budget:,.2f}/h)"
    full = [p for p in routes if solution.nodes.get(p, 0) >= problem.pool_by_name[p].max_nodes - EPS]
    room = [p for p in routes if p not in full]
    cap = spot_cap(problem, options, k.model)
    if room and cap < 1.0 and all(problem.pool_by_name[p].capacity == "spot" for p in room):
        return (f"spot cap {cap:.0%} of {k.model}'s capacity: the pools in reach with room are spot ({', '.join(room)}), "
                f"the others are at max_nodes ({', '.join(full)})")
    return "capacity exhausted: pools in reach at max_nodes (" + ", ".join(full) + ")" if full else "capacity exhausted"


def _cost_per_rps(problem: Problem, model: str, pool: str) -> float:
    """$/h per req/s of a full node of `pool` serving only `model`."""
    per_node = problem.capacity[(model, pool)].rps_per_replica * problem.replicas_per_node(model, pool)
    return problem.pool_by_name[pool].cost_per_node_hour / per_node


def _explain(problem: Problem, solution: Solution, options: PlanOptions, replicas: dict[tuple[str, str], int]) -> list[str]:
    """The constraints that shaped this plan, in words a reviewer can check against the inputs."""
    notes: list[str] = []
    for p in problem.pools:
        n = round(solution.nodes.get(p.pool, 0))
        if p.max_nodes and n >= p.max_nodes:
            notes.append(f"pool {p.pool} at max_nodes ({p.max_nodes})")
        elif p.min_nodes and n == p.min_nodes and not any(c for (m, pool), c in replicas.items() if pool == p.pool):
            notes.append(f"pool {p.pool} runs min_nodes ({p.min_nodes}) with no replicas")
    if solution.effective_budget is not None:
        cost = sum(problem.pool_by_name[p].cost_per_node_hour * round(n) for p, n in solution.nodes.items())
        if cost >= solution.effective_budget - 0.01:
            notes.append(f"budget cap ${solution.effective_budget:,.2f}/h reached")
        if problem.budget_usd_per_hour is not None and solution.effective_budget > problem.budget_usd_per_hour:
            notes.append(f"budget ${problem.budget_usd_per_hour:,.2f}/h is below the cost of min_nodes; raised to ${solution.effective_budget:,.2f}/h")
    for m in problem.models:
        total = sum(c for (model, _), c in replicas.items() if model == m.model)
        needed = sum(d.planned_rps for d in problem.demand if d.model == m.model)
        if m.min_replicas and total == m.min_replicas and needed > 0:
            notes.append(f"min_replicas of {m.model} ({m.min_replicas}) sets its replica count")
        if solution.replica_shortfall.get(m.model, 0) > 0.5:
            notes.append(f"{m.model}: only {total} of min_replicas {m.min_replicas} could be placed")
        spread = problem.spread.get(m.model)
        if spread is not None and spread.min > 1:
            used = {problem.domain(p, spread.across) for (model, p), c in replicas.items() if model == m.model and c}
            short = solution.spread_shortfall.get(m.model, 0) > 0.5
            notes.append(f"spread of {m.model} over {spread.min} {spread.across}s: " + (f"only {len(used)} possible" if short else ", ".join(sorted(used))))
        hosts = problem.hosts.get(m.model, [])
        if hosts:
            cheapest = min(hosts, key=lambda p: _cost_per_rps(problem, m.model, p))
            for d in (d for d in problem.demand if d.model == m.model):
                if cheapest not in problem.eligible[(d.model, d.region)]:
                    rtt = problem.rtt[(d.region, cheapest)]
                    rule = f"max_rtt_ms {m.max_rtt_ms:g}" if rtt > m.max_rtt_ms else "residency"
                    notes.append(f"{rule} excludes {m.model}'s cheapest pool per req/s, {cheapest} ({rtt:.0f} ms), for users in {d.region}")
    for d in problem.demand:
        if d.peak_factor != 1.0:
            notes.append(f"{d.model} from {d.region}: planned for {d.planned_rps:.4g} req/s = {d.peak_factor:.3g} x the mean {d.rps:.4g} req/s"
                         + (f" ({d.peak_source})" if d.peak_source else " (peak_factor in the spec)"))
        if len(d.buckets) > 1:
            notes.append(f"{d.model} from {d.region}: capacity sized per request size over {len(d.buckets)} size buckets, not at the mean")
    for m in problem.models:
        cap = min(options.max_spot_share, problem.rules.spot_cap(m.model))
        if cap < 1.0 and any(problem.pool_by_name[p].capacity == "spot" for p in problem.hosts.get(m.model, [])):
            notes.append(f"spot share of {m.model}'s capacity capped at {cap:.0%}")
    for area in problem.rules.residency_areas:
        if any(d.continent in area.continents for d in problem.demand):
            notes.append(f"residency '{area.name}': users in {', '.join(sorted(area.continents))} served only from pools there"
                         + (" or on-prem" if area.allow_onprem else ""))
    if any(problem.pool_by_name[p].capacity == "spot" for p in problem.pool_by_name):
        notes.append(f"spot replicas count at 1/{1 + options.spot_overprovision:g} of their capacity (preemption headroom)")
    return notes


def to_placement(problem: Problem, solution: Solution, options: PlanOptions) -> Placement:
    """The placement contract for a solution (integers rounded; shares normalised per (model, region))."""
    replicas = {key: round(v) for key, v in solution.replicas.items() if round(v) > 0}
    nodes = {p: round(v) for p, v in solution.nodes.items()}
    cost = sum(problem.pool_by_name[p].cost_per_node_hour * n for p, n in nodes.items())

    served: dict[tuple[str, str], float] = defaultdict(float)
    buckets: dict[tuple[str, str, str], list[float]] = {}
    for (k, pool), rps in solution.class_flows.items():
        served[(k.model, k.region)] += max(rps, 0.0)
        size = len(problem.demand_by_pair[(k.model, k.region)].sizes)
        buckets.setdefault((k.model, k.region, pool), [0.0] * size)[k.bucket] = round(max(rps, 0.0), 6)
    routes: list[RouteRow] = []
    for (model, region, pool), rps in sorted(solution.flows.items()):
        if rps > EPS and served[(model, region)] > EPS:
            routes.append(RouteRow(model=model, region=region, pool=pool, share=round(min(1.0, rps / served[(model, region)]), 6),
                                   rtt_ms=problem.rtt[(region, pool)], bucket_rps=buckets[(model, region, pool)]))

    classes_of: dict[tuple[str, str], list[DemandClass]] = defaultdict(list)
    for k in problem.classes:
        classes_of[(k.model, k.region)].append(k)
    unserved: list[UnservedRow] = []
    for d in problem.demand:
        classes = classes_of[(d.model, d.region)]
        left = {k: solution.class_unserved.get(k, k.rps) for k in classes}
        if sum(left.values()) <= EPS * max(1.0, d.planned_rps):
            continue
        reasons: dict[str, list[DemandClass]] = defaultdict(list)
        for k, rps in left.items():
            if rps > EPS * max(1.0, k.rps):
                reasons[_unserved_reason(problem, k, solution, options)].append(k)
        for reason, ks in reasons.items():
            whole = len(ks) == len(classes)
            unserved.append(UnservedRow(model=d.model, region=d.region, rps=round(sum(left[k] for k in ks), 6),
                                        size=None if whole else ", ".join(_size(k) for k in ks), reason=reason))
    for m in problem.models:
        if solution.replica_shortfall.get(m.model, 0) > 0.5 and not problem.hosts.get(m.model):
            unserved.append(UnservedRow(model=m.model, reason=f"min_replicas {m.min_replicas} unmet: no pool can host the model within its SLO"))

    inputs = problem.inputs
    placement = Placement(
        environment=problem.environment,
        cost_per_hour=round(cost, 4),
        lower_bound_per_hour=round(solution.lower_bound, 4) if solution.lower_bound is not None else 0.0,
        solver=SolverInfo(status=solution.status, seconds=round(solution.seconds, 4),
                          mip_gap=None if solution.mip_gap is None else round(solution.mip_gap, 6),
                          pairs=list(solution.pairs)),
        models=[ModelRow(model=m.model, min_replicas=m.min_replicas, max_rtt_ms=m.max_rtt_ms,
                         ttft_p95_ms=m.ttft_p95_ms, tpot_p95_ms=m.tpot_p95_ms) for m in problem.models],
        demand=[DemandRow(model=d.model, region=d.region, rps=d.rps, input_tokens=d.input_tokens,
                          output_tokens=d.output_tokens, peak_factor=d.peak_factor, peak_source=d.peak_source,
                          size_mix=[SizeBucketRow(input_tokens=b.input_tokens, output_tokens=b.output_tokens, share=round(b.share, 6), label=b.label)
                                    for b in d.buckets]) for d in problem.demand],
        pools=[PoolRow(pool=p.pool, provider=p.provider, region=p.region, zone=p.zone, gpu=p.gpu, capacity=p.capacity,
                       gpus_per_node=p.gpus_per_node, min_nodes=p.min_nodes, max_nodes=p.max_nodes,
                       cost_per_node_hour=p.cost_per_node_hour, nodes=nodes.get(p.pool, 0),
                       cost_per_hour=round(nodes.get(p.pool, 0) * p.cost_per_node_hour, 4)) for p in problem.pools],
        capacity=[CapacityRow(model=c.model, pool=c.pool, gpus_per_replica=c.gpus_per_replica, rps_per_replica=c.rps_per_replica,
                              source=c.source, by_size=[SizeRateRow(input_tokens=b.input_tokens, output_tokens=b.output_tokens, rps=b.rps)
                                                        for b in c.by_size])
                  for c in (inputs.capacity if inputs else problem.capacity.values())],
        latency=[LatencyRow(region=l.region, pool=l.pool, rtt_ms=l.rtt_ms, source=l.source) for l in inputs.latency] if inputs else
                [LatencyRow(region=r, pool=p, rtt_ms=v) for (r, p), v in problem.rtt.items()],
        replicas=[ReplicaRow(model=m, pool=p, count=c) for (m, p), c in sorted(replicas.items())],
        routes=routes,
        unserved=unserved,
        explain=_explain(problem, solution, options, replicas),
        spot_overprovision=options.spot_overprovision,
    )
    return placement.model_copy(update={"mix_check": check_mix(placement)})
