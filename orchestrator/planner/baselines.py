"""What the placement is compared with: how teams place replicas without gpufleet.

(a) single cloud: all on-demand, one provider, one GPU type, in that provider's regions
    near the users — the cheapest such choice that serves all demand within the SLOs. The
    choices are the (provider, GPU type) pairs of the spec's own cloud pools: the same
    hardware menu, without spot, owned capacity or a second cloud;
(b) greedy: each (model, region) in turn takes replicas on the eligible pool with the most
    requests/s per dollar, no sharing of replicas across regions;
(c) per-region GPU mix: an optimal mix of the spec's pools for each user region on its own
    (Mélange-style), ignoring that one replica could serve several regions;
(d) LP relaxation of the full model: a lower bound no placement can beat.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace

from orchestrator.catalog.offers import CLOUD_PROVIDERS
from orchestrator.catalog.price_catalog import PriceCatalog
from orchestrator.errors import InputError, SpecError
from orchestrator.inputs import resolve_inputs
from orchestrator.latency import load_latency_model, resolve
from orchestrator.planner.greedy import greedy_placement
from orchestrator.planner.formulation import PlanOptions
from orchestrator.planner.milp import solve
from orchestrator.planner.problem import PlacementRules, Problem, build_problem
from orchestrator.spec import FleetSpec, Pool

EPS = 1e-6
SINGLE_CLOUD_MAX_NODES = 64  # quota a single-cloud team would ask for per region


@dataclass(frozen=True)
class Baseline:
    """One baseline's cost; `serves_all` is False when it cannot meet every SLO."""

    name: str
    description: str
    cost_per_hour: float | None
    serves_all: bool
    detail: str = ""


def _all_served(solution, problem: Problem) -> bool:
    return all(solution.unserved.get((d.model, d.region), 0.0) <= EPS * max(1.0, d.planned_rps) for d in problem.demand)


def _node_cost(problem: Problem, nodes: dict[str, float]) -> float:
    return sum(problem.pool_by_name[p].cost_per_node_hour * n for p, n in nodes.items())


def single_cloud(spec: FleetSpec, catalog: PriceCatalog, options: PlanOptions, profiles_dir=None,
                 rules: PlacementRules | None = None) -> Baseline:
    """(a) The cheapest (provider, GPU type) that serves all demand on-demand in that provider's nearby regions."""
    latency = load_latency_model()
    users = [resolve(d.region) for d in spec.demand]
    name, description = "single_cloud", "one provider, one GPU type, all on-demand"
    if any(u.kind == "local" for u in users):
        return Baseline(name, description, None, False, "not applicable: users on this machine")
    max_rtt = max((m.slo.max_rtt_ms for m in spec.models), default=0.0)
    menu = sorted({(p.provider, o.gpu) for p in spec.pools if p.provider in CLOUD_PROVIDERS
                   for o in catalog.find(provider=p.provider, instance_type=p.instance_type)})
    best: tuple[float, str] | None = None
    for provider, gpu in menu:
        pools = _nearby_pools(catalog, provider, gpu, users, max_rtt, latency)
        if not pools:
            continue
        models = [m.model_copy(update={"spread": None if m.spread and m.spread.across == "provider" else m.spread})
                  for m in spec.models]
        candidate = spec.model_copy(update={"pools": pools, "models": models, "budget": spec.budget.model_copy(update={"usd_per_hour": None})})
        try:
            inputs = resolve_inputs(candidate, catalog, profiles_dir=profiles_dir)
        except SpecError:
            continue  # e.g. a model that fits no node of this GPU, or residency excludes the provider
        problem = build_problem(candidate, inputs, rules=rules)
        solution = solve(problem, options)
        if _all_served(solution, problem) and all(v < 0.5 for v in solution.replica_shortfall.values()):
            cost = _node_cost(problem, {p: round(n) for p, n in solution.nodes.items()})
            if best is None or cost < best[0]:
                best = (cost, f"{provider} {gpu}, on-demand, {sum(1 for n in solution.nodes.values() if n > 0.5)} regions")
    if best is None:
        return Baseline(name, description, None, False, "no single provider and GPU type of the spec's pools serves every region within its SLOs")
    return Baseline(name, description, round(best[0], 4), True, best[1])


def _nearby_pools(catalog, provider, gpu, users, max_rtt, latency) -> list[Pool]:
    """For each region of `provider` within RTT of some user: its cheapest on-demand shape per GPU count."""
    cheapest: dict[tuple[str, int], object] = {}
    for offer in catalog.find(provider=provider, gpu=gpu):
        if offer.on_demand_per_hour is None:
            continue
        key = (offer.region, offer.gpu_count)
        if key not in cheapest or offer.on_demand_per_hour < cheapest[key].on_demand_per_hour:
            cheapest[key] = offer
    pools = []
    for (region, count), offer in sorted(cheapest.items()):
        try:
            place = resolve(region, provider=provider)
        except InputError:  # a catalog region the latency model does not know cannot be placed near users
            continue
        if any(latency.rtt(u, place).rtt_ms <= max_rtt for u in users):
            pools.append(Pool(name=f"{provider}-{region}-{count}x".lower()[:63], provider=provider, region=region,
                              zone=offer.zone, instance_type=offer.instance_type, capacity="on_demand",
                              max_nodes=SINGLE_CLOUD_MAX_NODES))
    return pools


def greedy(problem: Problem, options: PlanOptions) -> Baseline:
    """(b) Per (model, region), largest demand first: replicas on the pool with the most req/s per dollar."""
    result = greedy_placement(problem, options.spot_overprovision)
    return Baseline("greedy", "greedy: most req/s per dollar per region", round(result.cost(problem), 4), result.served_all)


def per_region(problem: Problem, options: PlanOptions) -> Baseline:
    """(c) An optimal GPU mix per user region, each region on its own replicas and nodes.

    Regions are solved one after another, busiest first, each taking what node quota the
    ones before it left (max_nodes is a fleet-wide limit).
    """
    total, served_all = 0.0, True
    left = {p.pool: p.max_nodes for p in problem.pools}
    used = {p.pool: 0 for p in problem.pools}
    load = defaultdict(float)
    for d in problem.demand:
        load[d.region] += d.rps
    for region in sorted(load, key=lambda r: -load[r]):
        pools = tuple(replace(p, min_nodes=0, max_nodes=left[p.pool]) for p in problem.pools)
        sub = replace(problem, pools=pools, demand=tuple(d for d in problem.demand if d.region == region),
                      models=tuple(replace(m, min_replicas=0) for m in problem.models), spread={}, budget_usd_per_hour=None, current={})
        solution = solve(sub, options)
        served_all &= _all_served(solution, sub)
        rounded = {p: round(n) for p, n in solution.nodes.items()}
        total += _node_cost(sub, rounded)
        for p, n in rounded.items():
            used[p] += n
            left[p] -= n
    # owned capacity is paid whether used or not
    total += sum(p.cost_per_node_hour * max(0, p.min_nodes - used[p.pool]) for p in problem.pools)
    return Baseline("per_region", "per-region GPU mix (Mélange-style), no cross-region routing", round(total, 4), served_all)


def lp_bound(problem: Problem, options: PlanOptions) -> Baseline:
    """(d) The LP relaxation: fractional nodes and replicas; no integer placement costs less."""
    solution = solve(problem, replace(options, relax=True))
    cost = _node_cost(problem, solution.nodes) if solution.nodes else math.nan
    return Baseline("lp_bound", "LP relaxation (lower bound)", round(cost, 4), _all_served(solution, problem))


def all_baselines(spec: FleetSpec, problem: Problem, catalog: PriceCatalog, options: PlanOptions, profiles_dir=None) -> list[Baseline]:
    """(a)-(d) for one environment, under the same SLOs, guardrails and options as the plan."""
    return [single_cloud(spec, catalog, options, profiles_dir, problem.rules), greedy(problem, options),
            per_region(problem, options), lp_bound(problem, options)]
