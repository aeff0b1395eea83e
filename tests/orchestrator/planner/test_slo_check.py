"""`plan --simulate`: each (model, pool) of a plan simulated at its planned load, against the model's SLO."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator.cli.catalog import load_catalog
from orchestrator.inputs import load_inputs
from orchestrator.planner import plan_fleet
from orchestrator.planner.slo_check import derate, simulate_placement

HYBRID = Path(__file__).resolve().parents[3] / "environments" / "hybrid.yaml"


@pytest.fixture(scope="module")
def planned():
    spec, inputs = load_inputs(HYBRID, load_catalog())
    return spec, plan_fleet(spec, inputs)


def test_every_pair_with_load_is_simulated_at_its_share(planned) -> None:
    spec, placement = planned
    rows = simulate_placement(spec, placement)
    replicas = {(r.model, r.pool): r.count for r in placement.replicas}
    assert {(r.model, r.pool) for r in rows} == {(r.model, r.pool) for r in placement.routes}
    planned_rps = {(d.model, d.region): d.rps * d.peak_factor for d in placement.demand}
    for row in rows:
        routed = sum(r.share * planned_rps[(r.model, r.region)] for r in placement.routes if (r.model, r.pool) == (row.model, row.pool))
        assert row.rps_per_replica == pytest.approx(routed / replicas[(row.model, row.pool)], rel=1e-3)
        assert 0.0 <= row.within_slo <= 1.0


def test_an_overloaded_replica_misses_and_a_lightly_loaded_one_meets(planned) -> None:
    spec, placement = planned
    light = placement.model_copy(update={"replicas": [r.model_copy(update={"count": r.count * 20}) for r in placement.replicas]})
    heavy = placement.model_copy(update={"replicas": [r.model_copy(update={"count": 1}) for r in placement.replicas]})
    assert all(row.meets_slo for row in simulate_placement(spec, light))
    overloaded = [row for row in simulate_placement(spec, heavy) if row.rps_per_replica > 20]
    assert overloaded and not any(row.meets_slo for row in overloaded)


def test_derate_scales_an_overstated_pair_to_what_its_simulated_replica_sustains() -> None:
    """One pair's capacity overstated 3x (as an optimistic model would): its planned load misses in
    simulation; derate scales that pair alone, and its load at the derated capacity meets the SLO."""
    spec, inputs = load_inputs(HYBRID, load_catalog())
    key = ("llama-3.1-8b", "gcp-usc1-h100")
    overstated = dataclasses.replace(inputs, capacity=tuple(
        dataclasses.replace(c, rps_per_replica=c.rps_per_replica * 3, by_size=tuple(dataclasses.replace(s, rps=s.rps * 3) for s in c.by_size))
        if (c.model, c.pool) == key else c for c in inputs.capacity))
    placement = plan_fleet(spec, overstated)
    missed = [row for row in simulate_placement(spec, placement) if not row.meets_slo]
    assert key in {(r.model, r.pool) for r in missed}
    derated, factors = derate(spec, overstated, placement, [r for r in missed if (r.model, r.pool) == key])
    assert set(factors) == {key} and 0.2 < factors[key] < 0.6
    before = {(c.model, c.pool): c for c in overstated.capacity}
    for c in derated.capacity:
        old = before[(c.model, c.pool)]
        if (c.model, c.pool) == key:
            assert c.source.endswith("+simulated")
            assert c.rps_per_replica == pytest.approx(old.rps_per_replica * factors[key], rel=1e-3)
            assert all(s.rps == pytest.approx(o.rps * factors[key], abs=1e-4) for s, o in zip(c.by_size, old.by_size))
        else:
            assert c == old
    replanned = plan_fleet(spec, derated)
    assert [r.meets_slo for r in simulate_placement(spec, replanned) if (r.model, r.pool) == key] in ([], [True])


def test_plan_simulate_puts_the_check_in_the_json_and_the_table(capsys: pytest.CaptureFixture[str], gpufleet_home: Path) -> None:
    import json

    from tests.conftest import run_cli

    code, out, err = run_cli(capsys, "plan", "--env", "hybrid", "--format", "json", "--no-baselines", "--no-save", "--simulate")
    assert code == 0, err
    placement = json.loads(out)
    rows = placement["simulated"]
    assert rows and all({"model", "pool", "ttft_p95_ms", "tpot_p95_ms", "meets_slo", "capacity_factor"} <= set(r) for r in rows)
    # re-planned until every pair meets its p95 SLO in simulation; a scaled pair's capacity says so
    assert all(r["meets_slo"] for r in rows)
    sources = {(c["model"], c["pool"]): c["source"] for c in placement["capacity"]}
    assert all(sources[(r["model"], r["pool"])].endswith("+simulated") for r in rows if r["capacity_factor"] < 1)
    code, out, err = run_cli(capsys, "plan", "--env", "local", "--no-baselines", "--no-save", "--simulate")
    assert code == 0, err
    assert "Simulated: one replica at its planned load" in out
