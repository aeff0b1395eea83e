"""Replay on the real local fleet: one CPU vLLM replica of the tiny model behind vllm-router, a slice of
the Azure 2023 code trace, planned for, then replayed at the planned rate (meets the SLO) and at 200x it
on the same fleet (misses it: at 20x an idle 2-core machine still kept up, so the overload is far past any CPU replica). The trace's prompts are clipped to the tiny model's 512-token context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.providers.local.test_local_fleet import Fleet, running_fleet


pytestmark = pytest.mark.slow

WINDOW = ("--window-s", "10")  # the busiest 10 s of the trace: ~44 requests/s
PLANNED_SCALE = 0.03  # ~1.3 requests/s: one CPU replica keeps up
OVERLOAD_SCALE = 6.0  # 200x the planned demand (~260 requests/s) on the same replica


@pytest.fixture(scope="module")
def trace() -> Path:
    from orchestrator.settings import load_settings

    path = load_settings().shared_data / "llm_traces" / "azure_llm_2023_code.csv"
    if not path.exists():
        pytest.skip(f"the Azure code trace is not at {path} (set GPUFLEET_SHARED_DATA)")
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, trace) -> Fleet:
    with running_fleet(tmp_path_factory.mktemp("replay-home"), demo=False) as fleet:
        yield fleet


def replay(fleet: Fleet, trace: Path, scale: float) -> dict:
    run = fleet.cli("replay", "--trace", str(trace), *WINDOW, "--scale", str(scale), "--format", "json", timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_a_replay_at_the_planned_rate_meets_the_slo_and_200x_on_the_same_fleet_misses_it(fleet, trace):
    plan = fleet.cli("plan", "--trace", str(trace), *WINDOW, "--scale", str(PLANNED_SCALE), "--format", "json")
    assert plan.returncode == 0, plan.stderr[-2000:]
    planned = json.loads(plan.stdout)
    assert sum(r["count"] for r in planned["replicas"]) == 1

    ok = replay(fleet, trace, PLANNED_SCALE)
    m = ok["models"][0]
    assert ok["format"] == "azure" and ok["window_end_s"] - ok["window_start_s"] == 10
    assert ok["clipped"] > 0 and ok["max_model_len"] == {"tiny-llama": 512}  # the trace's prompts are longer
    assert ok["length_mismatches"] == 0  # the replica counted exactly the prompt and output tokens asked for
    assert m["requests"] == ok["requests"] > 5 and m["errors"] == 0
    assert m["meets_slo"] and m["attainment"] >= 0.95 and m["ttft_p95_ms"] <= m["slo_ttft_p95_ms"]
    demand = planned["demand"][0]
    assert m["plan"]["planned_rps"] == pytest.approx(demand["rps"] * demand["peak_factor"], rel=1e-3)
    assert m["plan"]["replicas"] == 1 and m["plan"]["capacity_rps"] > 0

    over = replay(fleet, trace, OVERLOAD_SCALE)
    m_over = over["models"][0]
    assert over["requests"] > 10 * ok["requests"]
    assert not m_over["meets_slo"] and m_over["attainment"] < m["attainment"]
    assert m_over["plan"] == m["plan"]  # the same plan's promise, measured against 200x its demand

    import sqlite3

    with sqlite3.connect(fleet.home / "state" / "local" / "state.db") as db:
        stored = db.execute("SELECT scale, all_met FROM replay_runs ORDER BY id").fetchall()
    assert stored == [(PLANNED_SCALE, 1), (OVERLOAD_SCALE, 0)]
