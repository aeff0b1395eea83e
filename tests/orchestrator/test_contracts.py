"""The contracts: the committed JSON Schemas are the ones the models generate, and what the commands print
validates against them (and something else does not)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from orchestrator.contracts import CONTRACTS, DOCS, main
from orchestrator.providers.base import FleetState, ObservedGateway, ObservedPool, ObservedReplica, ReplicaSpec, ScaleDown, ScaleUp
from tests.conftest import run_cli


def committed(name: str) -> dict:
    return json.loads((DOCS / CONTRACTS[name].file).read_text())


def test_the_committed_schemas_are_the_generated_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0, capsys.readouterr().err
    for name in CONTRACTS:
        code, out, _ = run_cli(capsys, "spec", "schema", "--contract", name)
        assert code == 0 and json.loads(out) == committed(name), name


def test_check_names_a_stale_or_missing_schema_and_generation_fixes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "move.schema.json").write_text("{}\n")
    assert main(["--check", "--docs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"stale: {tmp_path / 'move.schema.json'}" in err and f"stale: {tmp_path / 'status.schema.json'}" in err
    assert main(["--docs", str(tmp_path)]) == 0
    assert main(["--check", "--docs", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(c.file for c in CONTRACTS.values())


@pytest.mark.parametrize("name", ["move", "status", "replay-report"])
def test_every_written_contract_is_versioned_and_lists_each_field_as_required(name: str) -> None:
    schema = committed(name)
    assert schema["properties"]["schema_version"]["const"] == 1
    assert set(schema["required"]) == set(schema["properties"]) and schema["additionalProperties"] is False


def test_rebalance_json_is_a_move(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "rebalance", "--env", "local", "--dry-run", "--format", "json")
    assert code == 0, err
    move = json.loads(out)
    jsonschema.validate(move, committed("move"))
    assert move["schema_version"] == 1 and move["applied"] is False
    assert [s["kind"] for s in move["steps"]] == ["resize_pool", "scale_up"]  # nothing runs in a fresh home
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**move, "step": []}, committed("move"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**move, "schema_version": 2}, committed("move"))


def test_a_move_that_stops_replicas_and_warns_is_a_move_too() -> None:
    from orchestrator.rebalance import Fleet
    from orchestrator.rebalance.report import move_report
    from orchestrator.rebalance.run import Move
    from tests.orchestrator.rebalance.test_steps import target

    steps = [ScaleUp(model="m", pool="a", count=2, replica=ReplicaSpec(source="s3://b/m/", served_name="m")),
             ScaleDown(model="k", pool="a", count=0)]
    move = Move("t", Fleet({"a": 1}, {("m", "a"): 1, ("k", "a"): 3}), target({("m", "a"): 2}, {"a": 1}), steps, 1.0, 1.0,
                ["spot share 60 % is over 50 %"])
    document = move_report(move, applied=True).model_dump(mode="json")
    jsonschema.validate(document, committed("move"))
    assert document["replicas"] == [{"model": "k", "pool": "a", "before": 3, "after": 0},
                                    {"model": "m", "pool": "a", "before": 1, "after": 2}]


def test_status_json_is_a_status(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "status", "--env", "local", "--format", "json")
    assert code == 0, err
    status = json.loads(out)
    jsonschema.validate(status, committed("status"))
    assert (status["schema_version"], status["gateway"], status["replicas"], status["drift"]) == (1, None, [], [])


def test_a_status_with_replicas_a_gateway_and_both_kinds_of_drift_is_a_status() -> None:
    from orchestrator.spec import load_spec
    from orchestrator.status import fleet_status
    from tests.conftest import ENVIRONMENTS
    from tests.orchestrator.rebalance.test_steps import target

    applied = target({("m", "a"): 2}, {"a": 2})
    state = FleetState(gateway=ObservedGateway(url="http://127.0.0.1:9000", healthy=True),
                       pools=[ObservedPool(pool="a", nodes=1, healthy_nodes=1, requested=1)],
                       replicas=[ObservedReplica(model="m", pool="a", url="http://127.0.0.1:9001", healthy=True, pid=42),
                                 ObservedReplica(model="m", pool="a", url="http://127.0.0.1:9002", healthy=False, restarts=3)])
    document = fleet_status(load_spec(ENVIRONMENTS / "local.yaml"), "t", state, applied).model_dump(mode="json")
    jsonschema.validate(document, committed("status"))
    assert document["drift"] == [{"kind": "replicas", "model": "m", "pool": "a", "planned": 2, "running": 2, "healthy": 1},
                                 {"kind": "nodes", "pool": "a", "planned": 2, "running": 1}]
    assert document["cost_per_hour"] == 1.0  # one node at the applied plan's $1/h



def test_a_replay_report_with_failures_regions_and_the_plans_promise_is_a_replay_report(tmp_path: Path) -> None:
    """Built as `replay` builds what it prints (`replay --format json` itself: tests/orchestrator/replay/test_replay.py)."""
    from orchestrator.catalog.price_catalog import load_price_catalog
    from orchestrator.inputs import load_inputs
    from orchestrator.planner import plan_fleet
    from orchestrator.replay import build_report, build_schedule
    from orchestrator.replay.runner import RequestResult
    from tests.conftest import ENVIRONMENTS
    from tests.orchestrator.replay.test_replay import write_jsonl

    spec, inputs = load_inputs(ENVIRONMENTS / "local.yaml", load_price_catalog())
    regions = ["eu", "us", "eu"]
    trace = write_jsonl(tmp_path / "trace.jsonl", [{"timestamp": i, "input_tokens": 20, "output_tokens": 2, "region": region}
                                                   for i, region in enumerate(regions)])
    schedule = build_schedule(trace, spec)
    results = [RequestResult(model="tiny-llama", region=region, at_s=i, input_tokens=20, output_tokens=2, ok=i != 1,
                             input_tokens_served=20 if i != 1 else 0, ttft_ms=50.0 if i != 1 else None,
                             tpot_ms=5.0 if i != 1 else None, e2e_ms=60.0 if i != 1 else None,
                             output_tokens_served=2 if i != 1 else 0, error="Bad Gateway" if i == 1 else None)
               for i, region in enumerate(regions)]
    report = build_report(spec, "local", "http://127.0.0.1:9000", schedule, results, plan_fleet(spec, inputs)).to_json()
    jsonschema.validate(report, committed("replay-report"))
    assert report["schema_version"] == 1 and report["errors"] == 1 and report["models"][0]["plan"]["replicas"] >= 1
    assert [(r["region"], r["requests"], r["plan"]) for r in report["regions"]] == [("eu", 2, None), ("us", 1, None)]


NO_JSON = {
    ("dashboard",): "serves the dashboard page until stopped",
    ("spec", "schema"): "prints a JSON Schema: JSON already",
    ("spend", "export"): "writes FOCUS rows; its --format picks the row shape",
}


def commands(app, path: tuple[str, ...] = ()):
    """(command path, its function) for every command of a Typer app, sub-apps included."""
    for info in app.registered_commands:
        yield (*path, info.name or info.callback.__name__), info.callback
    for group in app.registered_groups:
        yield from commands(group.typer_instance, (*path, group.name))


def test_every_command_that_reports_takes_format_json() -> None:
    import typing

    from orchestrator.cli import app
    from orchestrator.cli.common import FormatOption

    found = dict(commands(app))
    assert set(NO_JSON) <= set(found), "a command listed in NO_JSON is gone"
    without = [" ".join(path) for path, callback in found.items() if path not in NO_JSON
               and FormatOption not in typing.get_type_hints(callback, include_extras=True).values()]
    assert not without, f"commands without --format json (add it, or list them in NO_JSON with why): {without}"


def test_a_written_contract_cannot_hold_nan_or_infinity() -> None:
    from pydantic import ValidationError

    from orchestrator.rebalance.report import CostChange

    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValidationError, match="finite number"):
            CostChange(before=bad, after=1.0)
