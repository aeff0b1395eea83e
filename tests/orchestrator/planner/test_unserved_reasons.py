"""Every unserved row names its binding cause, and the nearest pool the rules still allow.

One case per cause: RTT, a residency area (issue 14's repro: a European-style area for South
America), a request size no pool serves within the TTFT SLO, the spot cap, capacity at
max_nodes, the budget, a model that fits no GPU. The real-input cases plan
environments/hybrid.yaml within its policies, as `orchestrator plan` does.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from orchestrator.planner import PlanOptions, plan_problem
from orchestrator.planner.placement import Placement
from orchestrator.planner.problem import PlacementRules, Problem, ResidencyArea
from tests.orchestrator.planner.conftest import model, pool, problem
from tests.orchestrator.planner.test_exactness import hybrid_with

OPTIONS = PlanOptions(mip_gap=0.0, spot_overprovision=0.0)
EU = PlacementRules(residency_areas=(ResidencyArea("eu", frozenset({"europe"})),))


def only_row(placement: Placement, region: str):
    rows = [u for u in placement.unserved if u.region == region]
    assert len(rows) == 1, placement.unserved
    return rows[0]


def nearest(p: Problem, region: str, pools) -> tuple[str, float]:
    best = min(pools, key=lambda q: p.rtt.get((region, q), math.inf))
    return best, p.rtt[(region, best)]


def test_rtt_names_the_nearest_pool_that_serves_the_model() -> None:
    p = hybrid_with([{"model": "llama-3.3-70b", "region": "sydney", "requests_per_second": 5, "input_tokens": 1000, "output_tokens": 300}])
    row = only_row(plan_problem(p, PlanOptions()), "sydney")
    name, rtt = nearest(p, "sydney", p.hosts["llama-3.3-70b"])
    assert rtt > 150
    assert row.rps == 5 and row.size is None
    assert row.reason == f"no pool within max_rtt_ms 150: nearest that serves it is {name} at {rtt:.0f} ms"


def test_residency_area_is_the_cause_when_a_pool_in_rtt_reach_is_outside_it() -> None:
    """Issue 14's repro: hybrid plus a sao-paulo demand and an `sa` residency area (policies.data.residency_areas,
    docs/policies.md). US pools are within 150 ms, the only allowed one (on-prem Frankfurt) is not."""
    demand = {"model": "llama-3.3-70b", "region": "sao-paulo", "requests_per_second": 5, "input_tokens": 1000, "output_tokens": 300}
    p = hybrid_with([demand], {"residency_areas": {"sa": {"continents": ["south-america"], "allow_onprem": True}}})
    assert [a.name for a in p.rules.residency_areas] == ["eu", "sa"]  # merged with the default eu area
    row = only_row(plan_problem(p, PlanOptions()), "sao-paulo")
    hosts = p.hosts["llama-3.3-70b"]
    allowed = [q for q in hosts if p.pool_by_name[q].provider == "onprem" or p.pool_by_name[q].continent == "south-america"]
    in_reach = [q for q in hosts if p.rtt[("sao-paulo", q)] <= 150]
    allowed_name, allowed_rtt = nearest(p, "sao-paulo", allowed)
    reach_name, reach_rtt = nearest(p, "sao-paulo", in_reach)
    assert allowed_name == "fra-dc1-a100" and allowed_rtt > 150 and p.pool_by_name[reach_name].continent == "north-america"
    assert row.rps == 5
    assert row.reason.startswith("residency 'sa' serves users in sao-paulo only from pools in south-america or on-prem")
    assert f"the nearest of those is {allowed_name} at {allowed_rtt:.0f} ms (max_rtt_ms 150)" in row.reason
    assert f"without it {reach_name} at {reach_rtt:.0f} ms would serve" in row.reason
    assert "no pool within max_rtt_ms" not in row.reason


def test_without_the_area_the_same_demand_is_served() -> None:
    demand = {"model": "llama-3.3-70b", "region": "sao-paulo", "requests_per_second": 5, "input_tokens": 1000, "output_tokens": 300}
    assert not [u for u in plan_problem(hybrid_with([demand]), PlanOptions()).unserved if u.region == "sao-paulo"]


def rtt_beyond_reach_with_residency() -> Problem:
    """A European user: a US pool at 120 ms (outside the eu area), a European pool at 300 ms, max_rtt_ms 100."""
    us = replace(pool("us", 1, gpus=1), continent="north-america")
    p = problem([us, pool("eu", 1, gpus=1)], [model("m", max_rtt=100)], [("m", "paris", 2)],
                {("m", "us"): (1, 1.0), ("m", "eu"): (1, 1.0)}, {("paris", "us"): 120, ("paris", "eu"): 300}, rules=EU)
    return replace(p, demand=tuple(replace(d, continent="europe") for d in p.demand))


def test_rtt_reason_names_the_nearest_allowed_pool_not_one_residency_forbids() -> None:
    """No pool is within RTT reach, so RTT is the cause; the pool it names must be one the user's area allows
    (eu at 300 ms), not the US pool at 120 ms that residency would rule out even within reach."""
    row = only_row(plan_problem(rtt_beyond_reach_with_residency(), OPTIONS), "paris")
    assert row.reason.startswith("no pool within max_rtt_ms 100")
    assert "eu at 300 ms" in row.reason and "us at 120 ms" not in row.reason


def test_residency_area_that_allows_no_serving_pool_says_so() -> None:
    us = replace(pool("us", 1, gpus=1), continent="north-america")
    p = problem([us], [model("m", max_rtt=100)], [("m", "paris", 2)], {("m", "us"): (1, 1.0)}, {("paris", "us"): 300}, rules=EU)
    p = replace(p, demand=tuple(replace(d, continent="europe") for d in p.demand))
    row = only_row(plan_problem(p, OPTIONS), "paris")
    assert row.reason == "residency 'eu' allows no pool that serves it for users in paris"


def test_a_size_bucket_no_pool_serves_within_ttft_is_named_with_its_share() -> None:
    """A size mix with a 30k-token prompt bucket: beyond llama-3.3-70b's 2 s TTFT on every GPU in reach of madrid;
    the rest of the demand is served."""
    demand = {"model": "llama-3.3-70b", "region": "madrid", "requests_per_second": 0.5,  # within the EU pools' room
              "size_mix": [{"input_tokens": 1000, "output_tokens": 250, "share": 0.9},
                           {"input_tokens": 30000, "output_tokens": 100, "share": 0.1, "label": "huge prompts"}]}
    p = hybrid_with([demand])
    assert all(p.capacity[("llama-3.3-70b", q)].rate(30000, 100) == 0 for q in p.hosts["llama-3.3-70b"])
    row = only_row(plan_problem(p, PlanOptions()), "madrid")
    assert row.size == "huge prompts" and row.rps == pytest.approx(0.05)
    assert row.reason == "requests of huge prompts: no pool serves them within the TTFT/TPOT SLO (ttft bound)"


def test_spot_cap_is_the_cause_when_only_spot_pools_have_room() -> None:
    pools = [pool("spot", 1, gpus=1, hi=10, capacity="spot"), pool("od", 5, gpus=1, hi=2)]
    p = problem(pools, [model("m")], [("m", "r", 6)], {("m", "spot"): (1, 1.0), ("m", "od"): (1, 1.0)},
                {("r", "spot"): 1, ("r", "od"): 1})
    placement = plan_problem(p, replace(OPTIONS, max_spot_share=0.5))
    row = only_row(placement, "r")
    assert row.rps == pytest.approx(2)  # 2 on-demand replicas allow 2 on spot
    assert row.reason == "spot cap 50% of m's capacity: the pools in reach with room are spot (spot), the others are at max_nodes (od)"


def test_spot_cap_from_the_policy_rules_is_named_too() -> None:
    pools = [pool("spot", 1, gpus=1, hi=10, capacity="spot"), pool("od", 5, gpus=1, hi=1)]
    p = problem(pools, [model("m")], [("m", "r", 6)], {("m", "spot"): (1, 1.0), ("m", "od"): (1, 1.0)},
                {("r", "spot"): 1, ("r", "od"): 1}, rules=PlacementRules(max_spot_share={"default": 0.25}))
    row = only_row(plan_problem(p, OPTIONS), "r")
    assert row.rps == pytest.approx(5, abs=1e-4)  # 1 od replica; a spot one would be 50 % of the capacity
    assert row.reason.startswith("spot cap 25% of m's capacity")


def test_capacity_at_max_nodes_names_the_full_pools_in_reach() -> None:
    pools = [pool("a", 1, gpus=1, hi=2), pool("b", 2, gpus=1, hi=1), pool("far", 1, gpus=1, hi=9)]
    p = problem(pools, [model("m", max_rtt=100)], [("m", "r", 5)], {("m", q.pool): (1, 1.0) for q in pools},
                {("r", "a"): 10, ("r", "b"): 10, ("r", "far"): 500})
    row = only_row(plan_problem(p, OPTIONS), "r")
    assert row.rps == pytest.approx(2)
    assert row.reason == "capacity exhausted: pools in reach at max_nodes (a, b)"


def test_budget_is_the_cause_when_the_cap_binds_before_the_pools_fill() -> None:
    p = problem([pool("p", 10, gpus=1, hi=10)], [model("m")], [("m", "r", 5)], {("m", "p"): (1, 1.0)}, {("r", "p"): 1},
                budget_usd_per_hour=30)
    row = only_row(plan_problem(p, OPTIONS), "r")
    assert row.rps == pytest.approx(2)
    assert row.reason == "budget exhausted ($30.00/h)"


def test_a_model_that_fits_no_gpu_says_so() -> None:
    p = problem([pool("p", 1, gpus=1)], [model("m")], [("m", "r", 5)], {}, {("r", "p"): 1})
    row = only_row(plan_problem(p, OPTIONS), "r")
    assert row.rps == 5 and "fits no" in row.reason and "GPUs" in row.reason


def test_a_model_no_pool_serves_within_its_slo_says_so() -> None:
    p = problem([pool("p", 1, gpus=1)], [model("m")], [("m", "r", 5)], {("m", "p"): (1, 0.0)}, {("r", "p"): 1})
    row = only_row(plan_problem(p, OPTIONS), "r")
    assert row.reason.startswith("no pool meets the model's TTFT/TPOT SLO")
