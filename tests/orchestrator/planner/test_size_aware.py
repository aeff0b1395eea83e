"""Size-aware planning: every planned pool carries its routed size mix within the SLO; the mean-size plan does not always."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.inputs import FleetInputs, resolve_inputs
from orchestrator.planner import PlanOptions, plan_fleet
from orchestrator.planner.mean_size import compare_mean_size
from orchestrator.planner.placement import Placement
from orchestrator.spec import FleetSpec
from tests.conftest import run_cli as run

OPTIONS = PlanOptions(mip_gap=0.0)
SHORT, LONG = (256, 64), (7000, 64)  # a long prompt misses an 800 ms TTFT at the rate a mean-sized replica is planned for


def fleet(demand: list[dict], ttft_ms: float = 2000) -> dict:
    """Two on-prem pools (L40S and H100, priced per node-hour) in Frankfurt, llama-3.1-8b, `demand` from Frankfurt."""
    return {
        "environment": "size-aware",
        "pools": [
            {"name": "l40s", "provider": "onprem", "region": "fra-dc1", "location": "frankfurt", "gpu": "L40S", "gpus_per_node": 4,
             "node": {"cpus": 64, "memory_gb": 512}, "cost_per_hour": 7.0, "capacity": "owned", "min_nodes": 0, "max_nodes": 12},
            {"name": "h100", "provider": "onprem", "region": "fra-dc2", "location": "frankfurt", "gpu": "H100", "gpus_per_node": 8,
             "node": {"cpus": 192, "memory_gb": 2048}, "cost_per_hour": 30.0, "capacity": "owned", "min_nodes": 0, "max_nodes": 6},
        ],
        "models": [{"name": "llama-3.1-8b", "architecture": "llama-3.1-8b", "source": "meta-llama/Llama-3.1-8B-Instruct",
                    "max_model_len": 16384, "min_replicas": 0, "slo": {"ttft_p95_ms": ttft_ms, "tpot_p95_ms": 100, "max_rtt_ms": 50}}],
        "demand": [{"model": "llama-3.1-8b", "region": "frankfurt", **d} for d in demand],
    }


def resolved(doc: dict) -> tuple[FleetSpec, FleetInputs]:
    spec = FleetSpec.model_validate(doc)
    return spec, resolve_inputs(spec, load_price_catalog())


def recomputed_load(placement: Placement) -> dict[tuple[str, str], float]:
    """Σ over routes and buckets of planned req/s / req/s per replica at that size, from the placement's rows alone."""
    rates = {(c.model, c.pool): {(s.input_tokens, s.output_tokens): s.rps for s in c.by_size} for c in placement.capacity}
    demand = {(d.model, d.region): d for d in placement.demand}
    spot = {p.pool for p in placement.pools if p.capacity == "spot"}
    load: dict[tuple[str, str], float] = defaultdict(float)
    for route in placement.routes:
        d = demand[(route.model, route.region)]
        sizes = [(b.input_tokens, b.output_tokens) for b in d.size_mix] or [(d.input_tokens, d.output_tokens)]
        assert len(route.bucket_rps) == len(sizes)
        for size, rps in zip(sizes, route.bucket_rps):
            rate = rates[(route.model, route.pool)][size] / (1 + placement.spot_overprovision if route.pool in spot else 1)
            assert rps <= 1e-9 or rate > 0, f"{size} routed to {route.pool}, which cannot serve it"
            if rps > 1e-9:
                load[(route.model, route.pool)] += rps / rate
    return load


buckets = st.lists(
    st.tuples(st.integers(64, 12_000), st.integers(8, 1024), st.floats(0.05, 1.0)), min_size=1, max_size=4,
    unique_by=lambda b: (b[0], b[1]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mix=buckets, rps=st.floats(0.5, 40), peak=st.floats(1.0, 4.0))
def test_every_planned_pool_carries_its_routed_mix_within_the_slo(mix: list[tuple[int, int, float]], rps: float, peak: float) -> None:
    total, rps, peak = sum(s for _, _, s in mix), round(rps, 3), round(peak, 3)
    size_mix = [{"input_tokens": i, "output_tokens": o, "share": s / total} for i, o, s in mix]
    spec, inputs = resolved(fleet([{"requests_per_second": rps, "size_mix": size_mix, "peak_factor": peak}]))
    placement = plan_fleet(spec, inputs, OPTIONS)
    load = recomputed_load(placement)
    replicas = {(r.model, r.pool): r.count for r in placement.replicas}
    for key in set(load) | set(replicas):  # 1e-5 relative: the contract rounds req/s to 6 decimals, HiGHS is feasible to 1e-7
        assert load.get(key, 0.0) <= replicas.get(key, 0) * (1 + 1e-5) + 1e-6, (key, load.get(key), replicas.get(key))
    rows = {(r.model, r.pool): r for r in placement.mix_check}
    assert set(rows) == set(load) | set(replicas)
    for row in rows.values():
        assert row.carried_share == 1.0, row
        assert row.load_replicas == pytest.approx(load.get((row.model, row.pool), 0.0), abs=1e-3)
    routed = sum(sum(r.bucket_rps) for r in placement.routes)
    unserved = sum(u.rps for u in placement.unserved)
    assert routed + unserved == pytest.approx(rps * peak, rel=1e-4, abs=1e-3)  # every planned request is routed or reported


def test_a_mean_size_plan_misses_the_slo_for_a_long_prompt_bucket() -> None:
    size_mix = [{"input_tokens": SHORT[0], "output_tokens": SHORT[1], "share": 0.9},
                {"input_tokens": LONG[0], "output_tokens": LONG[1], "share": 0.1}]
    spec, inputs = resolved(fleet([{"requests_per_second": 20, "size_mix": size_mix}], ttft_ms=800))
    placement = plan_fleet(spec, inputs, OPTIONS)
    assert not placement.unserved and all(r.carried_share == 1.0 for r in placement.mix_check)
    compared = compare_mean_size(spec, inputs, OPTIONS)
    assert compared is not None
    assert compared.placement.demand[0].size_mix == [] and compared.placement.demand[0].peak_factor == 1.0
    assert compared.carried_share < 0.95  # the long prompts take far more replica-time than the mean one
    # measured at its own replica sizes: the reference's capacity rows are the naive plan's sizes
    sizes = {(c.model, c.pool): c.gpus_per_replica for c in compared.placement.capacity}
    assert {(c.model, c.pool): c.gpus_per_replica for c in compared.reference.capacity} == sizes
    # the size-aware plan carries it all, so its share against its own reference is 1
    assert compared.summary().carried_share == pytest.approx(compared.carried_share, abs=1e-4)


def test_a_peak_factor_alone_is_compared_and_the_mean_plan_carries_a_share_of_it() -> None:
    spec, inputs = resolved(fleet([{"requests_per_second": 10, "input_tokens": 1000, "output_tokens": 200, "peak_factor": 3}]))
    compared = compare_mean_size(spec, inputs, OPTIONS)
    assert compared is not None
    # one size: the naive plan's load at 3x the rate is 3x what it planned for (up to whole replicas)
    assert compared.carried_share < 0.5
    assert compared.cost_per_hour <= plan_fleet(spec, inputs, OPTIONS).cost_per_hour


def test_a_mean_only_spec_plans_exactly_as_a_one_bucket_mix_and_has_nothing_to_compare() -> None:
    mean_spec, mean_inputs = resolved(fleet([{"requests_per_second": 12, "input_tokens": 1500, "output_tokens": 150}]))
    mix_spec, mix_inputs = resolved(fleet([{"requests_per_second": 12, "size_mix": [{"input_tokens": 1500, "output_tokens": 150, "share": 1.0}]}]))
    mean_plan, mix_plan = plan_fleet(mean_spec, mean_inputs, OPTIONS), plan_fleet(mix_spec, mix_inputs, OPTIONS)
    assert mean_plan.cost_per_hour == mix_plan.cost_per_hour
    assert mean_plan.replicas == mix_plan.replicas
    assert [(r.pool, r.share, r.bucket_rps) for r in mean_plan.routes] == [(r.pool, r.share, r.bucket_rps) for r in mix_plan.routes]
    assert mean_plan.mix_check == mix_plan.mix_check
    assert compare_mean_size(mean_spec, mean_inputs, OPTIONS) is None


def test_plan_shows_the_price_of_truth(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size_mix = [{"input_tokens": SHORT[0], "output_tokens": SHORT[1], "share": 0.9},
                {"input_tokens": LONG[0], "output_tokens": LONG[1], "share": 0.1}]
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet([{"requests_per_second": 20, "size_mix": size_mix, "peak_factor": 2,
                                           "peak_source": "p99 of 10 s windows (test)"}], ttft_ms=800)))
    code, out, err = run(capsys, "plan", "--spec", str(path), "--format", "json", "--no-baselines", "--no-save")
    assert code == 0, err
    payload = json.loads(out)
    mean = payload["mean_size_plan"]
    assert set(mean) == {"cost_per_hour", "carried_share"} and mean["carried_share"] < 0.95
    assert all(row["carried_share"] == 1.0 for row in payload["mix_check"])
    from orchestrator.cli.common import console

    monkeypatch.setattr(console, "width", 250)  # one line per table row
    code, out, err = run(capsys, "plan", "--spec", str(path), "--no-baselines", "--no-save")
    assert code == 0, err
    text = " ".join(out.split())
    assert "mix within SLO" in text and "warning" not in text
    assert any(line.split()[:1] == ["llama-3.1-8b"] and "100.0%" in line for line in out.splitlines())
    assert "p99 of 10 s windows (test)" in text and "Demand planned for" in text
    assert f"a plan at mean sizes would cost ${mean['cost_per_hour']:,.2f}/h and carry {mean['carried_share']:.1%} of this demand within SLO" in text
