"""`orchestrator plan` as a user meets it: the placement contract on stdout, tables, the stored plan."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import jsonschema
import pytest

from orchestrator.cli import main
from orchestrator.planner.placement import Placement
from tests.conftest import ENVIRONMENTS
from tests.conftest import run_cli as run
from tests.orchestrator.cli.test_cli import broken_copy

CONTRACT = {  # DESIGN.md's placement contract: these keys must be there
    "top": {"environment", "cost_per_hour", "lower_bound_per_hour", "solver", "models", "demand", "pools",
            "capacity", "latency", "replicas", "routes", "unserved", "explain"},
    "solver": {"name", "status", "seconds", "mip_gap"},
    "models": {"model", "min_replicas", "max_rtt_ms", "ttft_p95_ms", "tpot_p95_ms"},
    "demand": {"model", "region", "rps", "input_tokens", "output_tokens"},
    "pools": {"pool", "provider", "region", "gpu", "capacity", "gpus_per_node", "min_nodes", "max_nodes",
              "cost_per_node_hour", "nodes", "cost_per_hour"},
    "capacity": {"model", "pool", "gpus_per_replica", "rps_per_replica"},
    "latency": {"region", "pool", "rtt_ms"},
    "replicas": {"model", "pool", "count"},
    "routes": {"model", "region", "pool", "share", "rtt_ms"},
}


@pytest.fixture(scope="module")
def hybrid_plan(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The hybrid plan with baselines, computed once for the module (in its own GPUFLEET_HOME)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setenv("GPUFLEET_HOME", str(tmp_path_factory.mktemp("home")))
        patch.setenv("GPUFLEET_ENVIRONMENTS_DIR", str(ENVIRONMENTS))
        try:
            main(["plan", "--env", "hybrid", "--format", "json", "--no-save"])
        except SystemExit as exc:
            assert exc.code in (0, None)
    return json.loads(out.getvalue())


def test_plan_json_follows_the_placement_contract(hybrid_plan: dict) -> None:
    assert CONTRACT["top"] <= set(hybrid_plan)
    assert CONTRACT["solver"] <= set(hybrid_plan["solver"])
    for key in ("models", "demand", "pools", "capacity", "latency", "replicas", "routes"):
        assert hybrid_plan[key], f"{key} is empty"
        for row in hybrid_plan[key]:
            assert CONTRACT[key] <= set(row), (key, row)
    jsonschema.validate({k: v for k, v in hybrid_plan.items() if k != "baselines"}, Placement.model_json_schema())


def test_plan_is_self_consistent(hybrid_plan: dict) -> None:
    assert hybrid_plan["solver"]["status"] == "optimal" and hybrid_plan["solver"]["mip_gap"] <= 0.005
    assert hybrid_plan["cost_per_hour"] == pytest.approx(sum(p["cost_per_hour"] for p in hybrid_plan["pools"]), abs=1e-3)
    assert hybrid_plan["lower_bound_per_hour"] <= hybrid_plan["cost_per_hour"]
    shares: dict[tuple[str, str], float] = {}
    for route in hybrid_plan["routes"]:
        shares[(route["model"], route["region"])] = shares.get((route["model"], route["region"]), 0) + route["share"]
    assert all(total == pytest.approx(1, abs=1e-4) for total in shares.values())
    assert len(shares) == len(hybrid_plan["demand"]) and not hybrid_plan["unserved"]
    assert len(hybrid_plan["pools"]) == 9  # every pool considered, unused ones with nodes 0


def test_plan_reports_savings_against_baselines(hybrid_plan: dict) -> None:
    names = [b["name"] for b in hybrid_plan["baselines"]]
    assert names == ["single_cloud", "greedy", "per_region", "lp_bound"]
    by_name = {b["name"]: b for b in hybrid_plan["baselines"]}
    assert by_name["lp_bound"]["cost_per_hour"] <= hybrid_plan["cost_per_hour"] + 1e-6
    for name in ("single_cloud", "greedy", "per_region"):  # a baseline that leaves demand unserved may cost less
        if by_name[name]["serves_all"]:
            assert by_name[name]["cost_per_hour"] >= hybrid_plan["cost_per_hour"] - 1e-6, name
    assert by_name["single_cloud"]["serves_all"]


def test_plan_table_and_stored_latest(capsys: pytest.CaptureFixture[str], gpufleet_home: Path) -> None:
    code, out, err = run(capsys, "plan", "--env", "local", "--no-baselines")
    assert code == 0, err
    assert "$0.05/h" in out and "tiny-llama" in out
    latest = gpufleet_home / "state" / "local" / "plans" / "latest.json"
    assert Placement.model_validate_json(latest.read_text()).replicas[0].count == 1


def test_plan_with_current_placement_is_churn_aware(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "plan", "--env", "hybrid", "--format", "json", "--no-baselines", "--no-save")
    first = json.loads(out)
    current = tmp_path / "current.json"
    current.write_text(json.dumps(first))
    code, out, _ = run(capsys, "plan", "--env", "hybrid", "--format", "json", "--no-baselines", "--no-save", "--current", str(current))
    assert code == 0
    assert {(r["model"], r["pool"], r["count"]) for r in json.loads(out)["replicas"]} == {(r["model"], r["pool"], r["count"]) for r in first["replicas"]}


def test_unservable_demand_exits_0_and_lists_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "slo: {ttft_p95_ms: 800, tpot_p95_ms: 60, max_rtt_ms: 120}", "slo: {ttft_p95_ms: 800, tpot_p95_ms: 60, max_rtt_ms: 1}")
    code, out, err = run(capsys, "plan", "--spec", str(path), "--format", "json", "--no-baselines", "--no-save")
    assert code == 0, err
    unserved = json.loads(out)["unserved"]
    assert {u["model"] for u in unserved} == {"llama-3.1-8b"}
    assert all("no pool within max_rtt_ms 1" in u["reason"] for u in unserved)


def test_bad_current_file_is_input_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    code, _, err = run(capsys, "plan", "--env", "local", "--current", str(bad), "--no-save")
    assert code == 2 and "not a placement" in err


def test_plan_takes_demand_from_a_trace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    # 60 requests in the first 10 s, then 5 over the next 50 s: the busiest 10 s window has 6 req/s
    rows = [{"timestamp": i * 166, "input_length": 100, "output_length": 20, "hash_ids": []} for i in range(60)]
    rows += [{"timestamp": 10_000 + i * 10_000, "input_length": 300, "output_length": 40, "hash_ids": []} for i in range(5)]
    trace.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, out, err = run(capsys, "plan", "--env", "local", "--trace", str(trace), "--window-s", "10", "--scale", "0.5",
                         "--format", "json", "--no-baselines", "--no-save")
    assert code == 0, err
    demand = json.loads(out)["demand"]
    assert [(d["model"], d["region"], d["rps"], d["input_tokens"], d["output_tokens"]) for d in demand] == [("tiny-llama", "local", 3.0, 100, 20)]


def test_trace_for_an_unknown_model_is_input_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 1, "output_length": 1, "hash_ids": []}\n')
    code, _, err = run(capsys, "plan", "--env", "local", "--trace", str(trace), "--trace-model", "gpt", "--no-save")
    assert code == 2 and "--trace-model 'gpt' is not a model of the spec" in err


def test_committed_placement_schema_is_current_and_plan_json_follows_it(capsys: pytest.CaptureFixture[str], hybrid_plan: dict) -> None:
    code, out, _ = run(capsys, "spec", "schema", "--contract", "placement")
    committed = json.loads((Path(__file__).parents[3] / "docs" / "placement.schema.json").read_text())
    assert code == 0 and json.loads(out) == committed, "run: orchestrator spec schema --contract placement --out docs/placement.schema.json"
    assert hybrid_plan["baselines"]
    jsonschema.validate(hybrid_plan, committed)  # baselines and all: what plan writes is what the readers accept
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**hybrid_plan, "baseline": []}, committed)
