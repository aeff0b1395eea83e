"""The default plan against the exhaustive solve: within 0.5 % of the optimum, with a bound that holds.

The default solve starts from a pruned set of (model, pool) pairs and prices the rest against
the LP duals (`planner.pricing`); `PlanOptions(candidate_pools=None)` solves over every pair
from the start. On guardrailed instances drawn from the real catalog and traces
(`bench.instances.generated_spec`: EU residency, a 50 % spot cap) the default plan must cost at
most 0.5 % more than the exhaustive one, and its `lower_bound_per_hour` must never exceed
what the exhaustive solve found (so never the true optimum). Issue 14's repros: an
unreachable demand that used to let the cost drift 44 % inside a penalised gap, and pruning
that kept only spot pools under a spot cap.
"""

from __future__ import annotations

import random
from dataclasses import replace
from functools import cache

import pytest
import yaml

from bench.instances import generated_spec
from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.inputs import resolve_inputs
from orchestrator.planner import PlanOptions, build_problem, plan_problem
from orchestrator.planner.placement import Placement
from orchestrator.planner.problem import MIN_NON_SPOT, PlacementRules, Problem, ResidencyArea, candidate_hosts
from orchestrator.policy import planning_rules
from orchestrator.spec import parse_spec
from tests.conftest import ENVIRONMENTS, REPO
from tests.orchestrator.planner.conftest import model, pool, problem

GUARDRAILS = PlacementRules(residency_areas=(ResidencyArea("eu", frozenset({"europe"})),), max_spot_share={"default": 0.5})
DEFAULT = PlanOptions()
EXHAUSTIVE = PlanOptions(candidate_pools=None, mip_gap=1e-4, time_limit_s=300)
GAP = 0.005
# the exhaustive run's bound sits below the optimum by up to its own 1e-4 gap plus the latency and
# per-GPU tie-breaks it deducts; a default plan within 0.5 % of the optimum is within this of that bound
BOUND_SLACK = 0.001


def unserved_rps(placement: Placement) -> float:
    return sum(u.rps for u in placement.unserved)


def assert_exact_within_gap(default: Placement, exhaustive: Placement) -> None:
    """The default plan against an exhaustive solve of the same problem (see the module docstring)."""
    assert exhaustive.solver.status == "optimal"
    assert unserved_rps(default) == pytest.approx(unserved_rps(exhaustive), abs=1e-4), "the same service, first"
    assert default.cost_per_hour <= exhaustive.cost_per_hour * (1 + GAP) + 1e-6
    assert default.cost_per_hour <= exhaustive.lower_bound_per_hour * (1 + GAP + BOUND_SLACK) + 1e-6, "true gap over 0.5 %"
    # bounds: each is valid for the full problem, so neither exceeds a feasible plan of it
    assert default.lower_bound_per_hour <= default.cost_per_hour + 1e-6
    assert default.lower_bound_per_hour <= exhaustive.cost_per_hour + 1e-6
    assert exhaustive.lower_bound_per_hour <= default.cost_per_hour + 1e-6


@cache
def generated_problem(pools: int, models: int, regions: int, seed: int) -> Problem:
    spec = parse_spec(generated_spec(pools, models, regions, seed), f"generated-{pools}x{models}x{regions}-{seed}")
    return build_problem(spec, resolve_inputs(spec, load_price_catalog()), rules=GUARDRAILS)


# (pools, models, user regions, seed), chosen so each pair of solves takes seconds on a 2-core machine;
# 20x3x6/3 and 30x3x6/11 are instances where the default plan is not the exhaustive one (it may be,
# within 0.5 %), 30x3x6/11 also leaves a demand unserved (service first, then cost)
SIZES = [(10, 2, 4, 1), (10, 2, 4, 2), (20, 3, 6, 1), (20, 3, 6, 3), (30, 3, 6, 11), (30, 3, 6, 12), (40, 3, 6, 2),
         (100, 3, 6, 2), (100, 2, 6, 3)]
FAMILY = [pytest.param(*size, marks=pytest.mark.slow) if size[0] >= 100 else size for size in SIZES]


def test_the_family_exercises_the_guardrails() -> None:
    problems = [generated_problem(*size) for size in SIZES]
    assert sum(any(q.capacity == "spot" for q in p.pools) for p in problems) >= len(problems) - 1, "spot pools to cap"
    assert sum(any(d.continent == "europe" for d in p.demand) for p in problems) >= 4, "European users to keep in the eu area"


@cache
def planned(size: tuple[int, int, int, int], options: PlanOptions) -> Placement:
    return plan_problem(generated_problem(*size), options)


@pytest.mark.parametrize(("pools", "models", "regions", "seed"), FAMILY)
def test_default_plan_is_within_the_gap_of_the_exhaustive_solve(pools: int, models: int, regions: int, seed: int) -> None:
    size = (pools, models, regions, seed)
    assert_exact_within_gap(planned(size, DEFAULT), planned(size, EXHAUSTIVE))


@pytest.mark.parametrize("size", [(30, 3, 6, 12), pytest.param((100, 2, 6, 3), marks=pytest.mark.slow)])
def test_an_optimal_solve_reports_a_gap_within_the_one_asked_for(size: tuple[int, int, int, int]) -> None:
    """Status "optimal" at the default 0.5 % gap should not be reported with a larger `solver.mip_gap`: the CLI
    prints "optimal, gap 0.69 %" for a plan that is the exhaustive optimum (100x2x6/3: $37.39/h both)."""
    default = planned(size, DEFAULT)
    assert default.solver.status == "optimal"
    assert default.solver.mip_gap is not None and default.solver.mip_gap <= GAP + 1e-6


def hybrid_with(demand: list[dict], data: dict | None = None) -> Problem:
    """environments/hybrid.yaml with extra demand (and policy data), planned within its policies as `plan` does."""
    doc = yaml.safe_load((ENVIRONMENTS / "hybrid.yaml").read_text())
    doc["demand"] += demand
    if data:
        doc.setdefault("policies", {})["data"] = data
    spec = parse_spec(yaml.safe_dump(doc), "hybrid-extra.yaml")
    return build_problem(spec, resolve_inputs(spec, load_price_catalog()), rules=planning_rules(spec, REPO))


SYDNEY = {"model": "llama-3.3-70b", "region": "sydney", "requests_per_second": 5, "input_tokens": 1000, "output_tokens": 300}


def test_unreachable_demand_plans_at_the_optimum() -> None:
    """Issue 14's repro: the unreachable demand's penalty used to dominate the gap (~$242/h vs ~$168/h)."""
    p = hybrid_with([SYDNEY])
    default = plan_problem(p, DEFAULT)
    exact = plan_problem(p, replace(DEFAULT, mip_gap=0.0))
    assert default.cost_per_hour <= exact.cost_per_hour * (1 + GAP) + 1e-6
    assert default.lower_bound_per_hour <= exact.cost_per_hour + 1e-6
    assert default.solver.mip_gap is not None and default.solver.mip_gap <= GAP + 1e-6
    assert [(u.region, u.rps) for u in default.unserved] == [("sydney", 5)]
    assert "no pool within max_rtt_ms 150" in default.unserved[0].reason
    # the demand no pool can serve costs nothing: the plan is the one without it
    without = plan_problem(hybrid_with([]), replace(DEFAULT, mip_gap=0.0))
    assert exact.cost_per_hour == pytest.approx(without.cost_per_hour, abs=1e-6)


def test_unreachable_demand_on_a_generated_instance_plans_at_the_optimum() -> None:
    p = generated_problem(20, 3, 6, 1)
    far = replace(p.demand[0], region="nowhere", continent=None)
    p = replace(p, demand=p.demand + (far,), rtt=p.rtt | {("nowhere", q.pool): 10_000.0 for q in p.pools})
    default, exhaustive = plan_problem(p, DEFAULT), plan_problem(p, EXHAUSTIVE)
    assert [u.region for u in default.unserved] == ["nowhere"]
    assert_exact_within_gap(default, exhaustive)


def spot_capped(**extra) -> Problem:
    """Cheap spot pools and dearer on-demand ones under a 50 % spot cap: the optimum needs on-demand hosts."""
    pools = [pool("s1", 1.0, gpus=1, hi=8, capacity="spot", region="r1"), pool("s2", 1.2, gpus=1, hi=8, capacity="spot", region="r1"),
             pool("od1", 3.0, gpus=1, hi=8, region="r1"), pool("od2", 3.5, gpus=1, hi=8, region="r1")]
    # on-demand pools cheaper per req/s than od1 but sold in 8-GPU nodes, enough to fill the pruning's quota of them
    pools += [pool(f"od-big{i}", 16.0 + i, gpus=8, hi=4, region="r1") for i in range(MIN_NON_SPOT)]
    return problem(pools, [model("m")], [("m", "r", 2)], {("m", q.pool): (1, 1.0) for q in pools},
                   {("r", q.pool): 10.0 for q in pools}, rules=PlacementRules(max_spot_share={"default": 0.5}), **extra)


def test_pricing_adds_back_on_demand_pools_when_pruning_keeps_only_spot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14's pruning case: a start set of spot pools only, under a 50 % spot cap, still plans at the optimum."""
    p = spot_capped()
    options = PlanOptions(mip_gap=0.0, spot_overprovision=0.0)
    exhaustive = plan_problem(p, replace(options, candidate_pools=None))

    def spot_only(problem: Problem, per_demand: int | None, spot_overprovision: float = 0.0) -> dict[str, list[str]]:
        hosts = candidate_hosts(problem, per_demand, spot_overprovision)
        if per_demand is None:
            return hosts
        return {m: [q for q in pools if problem.pool_by_name[q].capacity == "spot"] for m, pools in hosts.items()}

    monkeypatch.setattr("orchestrator.planner.milp.candidate_hosts", spot_only)
    pruned = plan_problem(p, options)
    assert exhaustive.cost_per_hour == 4.0  # one spot replica (s1) and one on-demand (od1): 50 % on spot
    assert pruned.cost_per_hour == exhaustive.cost_per_hour and not pruned.unserved
    assert {(r.pool, r.count) for r in pruned.replicas} == {(r.pool, r.count) for r in exhaustive.replicas}
    assert pruned.lower_bound_per_hour <= exhaustive.cost_per_hour + 1e-6


def test_certificate_adds_a_pair_the_lp_never_wanted() -> None:
    """The pruned start keeps the on-demand pools cheapest per req/s (8-GPU nodes at $16/h and up); the LP is happy
    with a fraction of one, the MILP must buy a whole node. Only the reduced-cost certificate after the MILP brings back
    od1 ($3/h for one GPU), which the optimum uses."""
    p = spot_capped()
    options = PlanOptions(spot_overprovision=0.0, candidate_pools=1)
    assert "od1" not in candidate_hosts(p, 1, 0.0)["m"], "the instance must prune the pool the optimum needs"
    default = plan_problem(p, options)
    exhaustive = plan_problem(p, replace(options, candidate_pools=None, mip_gap=0.0))
    assert exhaustive.cost_per_hour == 4.0
    assert default.cost_per_hour == exhaustive.cost_per_hour
    assert default.lower_bound_per_hour <= exhaustive.cost_per_hour + 1e-6


def random_guardrailed(rng: random.Random) -> Problem:
    regions = ["paris", "boston"]
    pools = [replace(pool(f"p{i}", round(rng.uniform(1, 20), 2), gpus=rng.choice([1, 2, 4, 8]), lo=rng.choice([0, 0, 0, 1]),
                          hi=rng.randint(1, 4), capacity=rng.choice(["on_demand", "on_demand", "spot", "owned"]),
                          provider=rng.choice(["aws", "gcp", "onprem"]), region=f"z{i % 3}"),
                     continent=rng.choice(["europe", "north-america"])) for i in range(rng.randint(3, 7))]
    models = [model(f"m{j}", min_replicas=rng.choice([0, 1])) for j in range(rng.randint(1, 2))]
    capacity = {(m.model, q.pool): (rng.choice([g for g in (1, 2, 4) if g <= q.gpus_per_node]), round(rng.uniform(0.5, 5), 2))
                for m in models for q in pools if rng.random() < 0.8}
    rtt = {(r, q.pool): rng.choice([10.0, 50.0, 150.0]) for r in regions for q in pools}
    demand = [(m.model, r, round(rng.uniform(0.5, 8), 2)) for m in models for r in regions]
    p = problem(pools, models, demand, capacity, rtt, rules=GUARDRAILS)
    return replace(p, demand=tuple(replace(d, continent="europe" if d.region == "paris" else "north-america") for d in p.demand))


@pytest.mark.parametrize("seed", range(25))
def test_any_start_set_plans_at_the_exhaustive_optimum(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever (model, pool) pairs the solve starts from — here a random few, spot or not — column generation and
    the certificate make the answer the exhaustive one (at gap 0: the same cost)."""
    rng = random.Random(seed)
    p = random_guardrailed(rng)
    options = PlanOptions(mip_gap=0.0)
    exhaustive = plan_problem(p, replace(options, candidate_pools=None))

    def random_start(problem: Problem, per_demand: int | None, spot_overprovision: float = 0.0) -> dict[str, list[str]]:
        if per_demand is None:
            return dict(problem.hosts)
        return {m: [q for q in pools if rng.random() < 0.3] for m, pools in problem.hosts.items()}

    monkeypatch.setattr("orchestrator.planner.milp.candidate_hosts", random_start)
    pruned = plan_problem(p, options)
    assert unserved_rps(pruned) == pytest.approx(unserved_rps(exhaustive), abs=1e-4)
    assert pruned.cost_per_hour == pytest.approx(exhaustive.cost_per_hour, abs=1e-3)
    assert pruned.lower_bound_per_hour <= exhaustive.cost_per_hour + 1e-6
