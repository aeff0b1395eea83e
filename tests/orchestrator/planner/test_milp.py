"""The placement MILP: optimal against brute force, every claimed constraint held, infeasibility explained."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.planner import PlanOptions, plan_problem
from orchestrator.planner.placement import Placement
from orchestrator.planner.problem import Problem
from orchestrator.spec import Spread
from tests.orchestrator.planner.conftest import model, pool, problem

OPTIONS = PlanOptions(mip_gap=0.0, spot_overprovision=0.25)


def rate(p: Problem, m: str, name: str, options: PlanOptions = OPTIONS) -> float:
    r = p.capacity[(m, name)].rps_per_replica
    return r / (1 + options.spot_overprovision) if p.pool_by_name[name].capacity == "spot" else r


def random_problem(rng: random.Random) -> Problem:
    pools = [pool(f"p{i}", cost=round(rng.uniform(1, 20), 2), gpus=rng.choice([1, 2, 4, 8]), lo=rng.choice([0, 0, 1]),
                  hi=rng.randint(1, 3), capacity=rng.choice(["on_demand", "spot", "owned"])) for i in range(rng.randint(1, 3))]
    models = [model(f"m{j}", min_replicas=rng.choice([0, 1, 2]), max_rtt=100) for j in range(rng.randint(1, 2))]
    regions = [f"r{k}" for k in range(rng.randint(1, 2))]
    capacity = {}
    for m in models:
        for p in pools:
            if rng.random() < 0.8:
                capacity[(m.model, p.pool)] = (rng.choice([g for g in (1, 2, 4) if g <= p.gpus_per_node]), round(rng.uniform(0.5, 5), 2))
    rtt = {(r, p.pool): rng.choice([10.0, 50.0, 150.0]) for r in regions for p in pools}
    demand = [(m.model, r, round(rng.uniform(0.2, 6), 2)) for m in models for r in regions if rng.random() < 0.8]
    return problem(pools, models, demand, capacity, rtt)


def brute_force_cost(p: Problem) -> float | None:
    """Cheapest cost over every integer replica assignment that serves all demand and min_replicas (None: none does)."""
    keys = [(m, q) for m, pools in p.hosts.items() for q in pools]
    ranges = [range(0, p.pool_by_name[q].max_nodes * p.replicas_per_node(m, q) + 1) for m, q in keys]
    best = None
    for counts in itertools.product(*ranges):
        x = dict(zip(keys, counts))
        nodes = {}
        for q in p.pools:  # fewest nodes that pack these replicas (power-of-two sizes pack perfectly)
            gpus = sum(x.get((m.model, q.pool), 0) * p.capacity[(m.model, q.pool)].gpus_per_replica for m in p.models if (m.model, q.pool) in x)
            nodes[q.pool] = max(q.min_nodes, math.ceil(gpus / q.gpus_per_node))
        if any(nodes[q.pool] > q.max_nodes for q in p.pools):
            continue
        if any(sum(c for (m, _), c in x.items() if m == mod.model) < mod.min_replicas for mod in p.models):
            continue
        if not all(_hall(p, mod.model, x) for mod in p.models):
            continue
        cost = sum(q.cost_per_node_hour * nodes[q.pool] for q in p.pools)
        best = cost if best is None else min(best, cost)
    return best


def _hall(p: Problem, m: str, x: dict) -> bool:
    """Gale/Hall: demand of every set of regions fits the capacity of the pools eligible for any of them."""
    regions = [d for d in p.demand if d.model == m]
    for size in range(1, len(regions) + 1):
        for subset in itertools.combinations(regions, size):
            pools = set().union(*(p.eligible[(d.model, d.region)] for d in subset))
            if sum(d.rps for d in subset) > sum(rate(p, m, q) * x.get((m, q), 0) for q in pools) + 1e-9:
                return False
    return True


def assert_respects_constraints(p: Problem, placement: Placement, options: PlanOptions = OPTIONS) -> None:
    """Every constraint the placement claims to hold, checked from the placement alone."""
    nodes = {row.pool: row.nodes for row in placement.pools}
    replicas = {(r.model, r.pool): r.count for r in placement.replicas}
    for q in p.pools:
        assert q.min_nodes <= nodes[q.pool] <= q.max_nodes
        used = sum(c * p.capacity[(m, q.pool)].gpus_per_replica for (m, pool_name), c in replicas.items() if pool_name == q.pool)
        assert used <= q.gpus_per_node * nodes[q.pool]
    assert placement.cost_per_hour == pytest.approx(sum(q.cost_per_node_hour * nodes[q.pool] for q in p.pools), abs=1e-3)
    demand = {(d.model, d.region): d.rps for d in p.demand}
    unserved = {(u.model, u.region): u.rps for u in placement.unserved if u.region}
    served = {}
    for route in placement.routes:
        assert route.pool in p.eligible[(route.model, route.region)], "a route to a pool beyond max_rtt_ms or without capacity"
        assert route.rtt_ms <= p.model_by_name[route.model].max_rtt_ms
        served[(route.model, route.region)] = served.get((route.model, route.region), 0) + route.share
    for key, total in served.items():
        assert total == pytest.approx(1.0, abs=1e-4), "shares of a served (model, region) sum to 1"
    load: dict[tuple[str, str], float] = {}
    for route in placement.routes:
        rps = route.share * (demand[(route.model, route.region)] - unserved.get((route.model, route.region), 0))
        load[(route.model, route.pool)] = load.get((route.model, route.pool), 0) + rps
    for (m, q), rps in load.items():
        assert rps <= rate(p, m, q, options) * replicas.get((m, q), 0) + 1e-4
    for key in demand:
        assert key in served or key in unserved, "demand neither served nor listed as unserved"
    for mod in p.models:
        total = sum(c for (m, _), c in replicas.items() if m == mod.model)
        if total < mod.min_replicas:  # only when the pools cannot hold them, and then it is said
            said = f"{mod.model}: only {total} of min_replicas {mod.min_replicas} could be placed"
            assert said in placement.explain or any(u.model == mod.model and not u.region for u in placement.unserved)


@pytest.mark.parametrize("seed", range(40))
def test_optimal_against_brute_force(seed: int) -> None:
    p = random_problem(random.Random(seed))
    placement = plan_problem(p, OPTIONS)
    assert_respects_constraints(p, placement)
    best = brute_force_cost(p)
    if best is None:
        assert placement.unserved or any("could be placed" in e for e in placement.explain)
    else:
        assert not placement.unserved
        assert placement.cost_per_hour == pytest.approx(best, abs=1e-6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**6))
def test_every_plan_respects_every_constraint(seed: int) -> None:
    rng = random.Random(seed)
    p = random_problem(rng)
    options = PlanOptions(mip_gap=0.0, spot_overprovision=rng.choice([0.0, 0.25, 1.0]))
    assert_respects_constraints(p, plan_problem(p, options), options)


def test_cheaper_pool_wins_within_rtt() -> None:
    p = problem([pool("cheap", 10, hi=2), pool("dear", 30, hi=2)], [model("m")], [("m", "r", 3)],
                {("m", "cheap"): (1, 1.0), ("m", "dear"): (1, 1.0)}, {("r", "cheap"): 20, ("r", "dear"): 20})
    placement = plan_problem(p, OPTIONS)
    assert [(r.pool, r.count) for r in placement.replicas] == [("cheap", 3)]
    assert placement.cost_per_hour == 10


def test_rtt_limit_moves_load_to_a_dearer_pool() -> None:
    p = problem([pool("far", 10, hi=2), pool("near", 30, hi=2)], [model("m", max_rtt=100)], [("m", "r", 3)],
                {("m", "far"): (1, 1.0), ("m", "near"): (1, 1.0)}, {("r", "far"): 150, ("r", "near"): 20})
    placement = plan_problem(p, OPTIONS)
    assert {r.pool for r in placement.routes} == {"near"}
    assert any("excludes m's cheapest pool per req/s, far (150 ms)" in e for e in placement.explain)


def test_replicas_pack_whole_into_nodes() -> None:
    # 4-GPU replicas on 8-GPU nodes: three replicas need two nodes, never 1.5
    p = problem([pool("p", 10, gpus=8, hi=4)], [model("m")], [("m", "r", 2.5)], {("m", "p"): (4, 1.0)}, {("r", "p"): 1})
    placement = plan_problem(p, OPTIONS)
    assert placement.pools[0].nodes == 2 and placement.replicas[0].count == 3


def test_spot_capacity_is_derated() -> None:
    p = problem([pool("spot", 1, gpus=1, hi=10, capacity="spot")], [model("m")], [("m", "r", 4)],
                {("m", "spot"): (1, 1.0)}, {("r", "spot"): 1})
    assert plan_problem(p, PlanOptions(spot_overprovision=0.5)).replicas[0].count == 6  # 4 × 1.5
    assert plan_problem(p, PlanOptions(spot_overprovision=0.0)).replicas[0].count == 4


def test_max_spot_share_keeps_load_on_demand() -> None:
    p = problem([pool("spot", 1, gpus=1, hi=10, capacity="spot"), pool("od", 5, gpus=1, hi=10)], [model("m")], [("m", "r", 4)],
                {("m", "spot"): (1, 1.0), ("m", "od"): (1, 1.0)}, {("r", "spot"): 1, ("r", "od"): 1})
    placement = plan_problem(p, PlanOptions(spot_overprovision=0.0, max_spot_share=0.5))
    shares = {r.pool: r.share for r in placement.routes}
    assert shares["spot"] <= 0.5 + 1e-6 and shares["od"] >= 0.5 - 1e-6


def test_min_replicas_and_spread_over_providers() -> None:
    pools = [pool("a", 1, gpus=1, provider="aws"), pool("b", 2, gpus=1, provider="aws"), pool("g", 5, gpus=1, provider="gcp")]
    p = problem(pools, [model("m", min_replicas=3)], [("m", "r", 0.5)],
                {("m", q.pool): (1, 10.0) for q in pools}, {("r", q.pool): 1 for q in pools},
                spread={"m": Spread(across="provider", min=2)})
    placement = plan_problem(p, OPTIONS)
    counts = {r.pool: r.count for r in placement.replicas}
    assert sum(counts.values()) == 3 and counts.get("g", 0) >= 1
    assert placement.cost_per_hour == 1 * 2 + 5  # two on the cheapest aws pool, one on gcp


def test_budget_cap_leaves_demand_unserved_with_reason() -> None:
    p = problem([pool("p", 10, gpus=1, hi=10)], [model("m")], [("m", "r", 5)], {("m", "p"): (1, 1.0)}, {("r", "p"): 1},
                budget_usd_per_hour=30)
    placement = plan_problem(p, OPTIONS)
    assert placement.cost_per_hour <= 30
    assert placement.unserved[0].rps == pytest.approx(2) and "budget exhausted" in placement.unserved[0].reason
    assert any("budget cap" in e for e in placement.explain)


def test_budget_below_owned_floor_is_raised_and_said() -> None:
    p = problem([pool("own", 10, gpus=1, lo=2, hi=2, capacity="owned")], [model("m")], [("m", "r", 1)],
                {("m", "own"): (1, 1.0)}, {("r", "own"): 1}, budget_usd_per_hour=5)
    placement = plan_problem(p, OPTIONS)
    assert placement.cost_per_hour == 20 and not placement.unserved
    assert any("below the cost of min_nodes" in e for e in placement.explain)


@pytest.mark.parametrize(
    ("capacity", "rtt", "hi", "reason"),
    [
        ({("m", "p"): (1, 1.0)}, 500, 4, "no pool within max_rtt_ms 100: nearest that serves it is p at 500 ms"),
        ({("m", "p"): (1, 0.0)}, 1, 4, "no pool meets the model's TTFT/TPOT SLO"),
        ({}, 1, 4, "fits no pool's GPUs"),
        ({("m", "p"): (1, 1.0)}, 1, 2, "capacity exhausted: pools in reach at max_nodes (p)"),
    ],
)
def test_unservable_demand_is_explained(capacity, rtt, hi, reason) -> None:
    p = problem([pool("p", 1, gpus=1, hi=hi)], [model("m")], [("m", "r", 5)], capacity, {("r", "p"): rtt})
    placement = plan_problem(p, OPTIONS)
    assert placement.unserved and reason in placement.unserved[0].reason
    assert placement.solver.status == "optimal"


def test_churn_aware_mode_keeps_the_running_placement_when_saving_is_small() -> None:
    pools = [pool("a", 10.0, gpus=1, hi=5), pool("b", 10.2, gpus=1, hi=5)]
    base = problem(pools, [model("m")], [("m", "r", 3)], {("m", "a"): (1, 1.0), ("m", "b"): (1, 1.0)},
                   {("r", "a"): 1, ("r", "b"): 1})
    running = {("m", "b"): 3}
    fresh = plan_problem(base, OPTIONS)
    assert {r.pool for r in fresh.replicas} == {"a"}
    from dataclasses import replace
    sticky = plan_problem(replace(base, current=running), OPTIONS)
    assert {(r.pool, r.count) for r in sticky.replicas} == {("b", 3)}  # moving 6 replicas for $0.60/h is not worth it
    moving = plan_problem(replace(base, current=running), PlanOptions(churn_usd_per_replica=0.01))
    assert {r.pool for r in moving.replicas} == {"a"}


def test_churn_aware_mode_removes_a_surplus_replica_on_a_paid_node_when_demand_drops() -> None:
    from dataclasses import replace
    paid = [pool("local", 0.0, gpus=2, lo=1, hi=1, capacity="owned", provider="local")]
    base = problem(paid, [model("m", min_replicas=1)], [("m", "r", 0.5)], {("m", "local"): (1, 1.0)}, {("r", "local"): 1})
    shrunk = plan_problem(replace(base, current={("m", "local"): 2}), OPTIONS)
    assert {(r.pool, r.count) for r in shrunk.replicas} == {("local", 1)}  # stopping is free; the idle one goes
    assert not shrunk.unserved
    busy = replace(base, demand=tuple(replace(d, rps=1.5) for d in base.demand))
    grown = plan_problem(replace(busy, current={("m", "local"): 1}), OPTIONS)
    assert {(r.pool, r.count) for r in grown.replicas} == {("local", 2)}  # churn never outweighs serving demand
    kept = plan_problem(replace(busy, current={("m", "local"): 2}), OPTIONS)
    assert {(r.pool, r.count) for r in kept.replicas} == {("local", 2)}


def test_churn_is_charged_per_replica_started_only() -> None:
    from dataclasses import replace
    pools = [pool("a", 10.0, gpus=1, hi=5), pool("b", 10.4, gpus=1, hi=5)]
    base = problem(pools, [model("m")], [("m", "r", 3)], {("m", "a"): (1, 1.0), ("m", "b"): (1, 1.0)},
                   {("r", "a"): 1, ("r", "b"): 1}, current={("m", "b"): 3})
    # moving b -> a saves $1.20/h and starts 3 replicas: worth it at $0.30 each, not at $0.50 (stops are not charged:
    # under the old start+stop charge $0.30 would have cost $1.80 and kept the fleet in b)
    assert {(r.pool, r.count) for r in plan_problem(base, replace(OPTIONS, churn_usd_per_replica=0.3)).replicas} == {("a", 3)}
    assert {(r.pool, r.count) for r in plan_problem(base, replace(OPTIONS, churn_usd_per_replica=0.5)).replicas} == {("b", 3)}


def test_replanning_the_running_placement_within_the_gap_starts_nothing() -> None:
    """The hybrid example under its placement policies, at the default 0.5 % gap: the running placement is the
    incumbent, so a plan that stops replicas for free and starts one elsewhere (cheaper by less than that start
    costs, within the gap: what the solver returned before) is not returned."""
    from dataclasses import replace

    from orchestrator.catalog.price_catalog import load_price_catalog
    from orchestrator.inputs import load_inputs
    from orchestrator.planner import build_problem
    from orchestrator.policy import planning_rules
    from orchestrator.settings import load_settings
    from tests.conftest import ENVIRONMENTS, REPO

    spec, inputs = load_inputs(ENVIRONMENTS / "hybrid.yaml", load_price_catalog(load_settings().catalog_dir))
    base = build_problem(spec, inputs, rules=planning_rules(spec, REPO))
    fresh = plan_problem(base, PlanOptions())
    running = {(r.model, r.pool): r.count for r in fresh.replicas}
    again = plan_problem(replace(base, current=running), PlanOptions())
    assert all(r.count <= running.get((r.model, r.pool), 0) for r in again.replicas)  # nothing started
    assert again.cost_per_hour <= fresh.cost_per_hour + 1e-9


def test_lower_bound_never_exceeds_cost() -> None:
    for seed in range(10):
        placement = plan_problem(random_problem(random.Random(seed)), OPTIONS)
        assert placement.lower_bound_per_hour <= placement.cost_per_hour + 1e-9


def test_pruning_never_leaves_demand_unserved_that_every_pool_would_serve() -> None:
    regions = [f"r{i}" for i in range(5)]  # each demand alone fits the cheap pool 4x over; together they do not
    p = problem([pool("cheap", 10, hi=2), pool("dear", 30, hi=2)], [model("m")], [("m", r, 4) for r in regions],
                {("m", "cheap"): (1, 1.0), ("m", "dear"): (1, 1.0)},
                {(r, name): 20 for r in regions for name in ("cheap", "dear")})
    pruned = replace(OPTIONS, candidate_pools=1)
    placement = plan_problem(p, pruned)
    assert placement.unserved == [] and {r.pool: r.count for r in placement.replicas} == {"cheap": 16, "dear": 4}
    assert placement.cost_per_hour == plan_problem(p, replace(OPTIONS, candidate_pools=None)).cost_per_hour
