"""CLI conventions: --version, shell completion, errors as JSON with --format json, tables that are never cut
when stdout is not a terminal, and rebalance steps that say how many replicas they start."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from orchestrator.errors import CatalogError
from tests.conftest import run_cli as run
from tests.orchestrator.cli.test_cli import broken_copy


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"orchestrator (gpufleet) {importlib.metadata.version('gpufleet')}"


def test_shell_completion_script_and_answers(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")  # name the shell instead of detecting it
    code, out, err = run(capsys, "--show-completion", "bash")
    assert code == 0, err
    assert "_ORCHESTRATOR_COMPLETE=complete_bash" in out and "complete -o default -F _orchestrator_completion orchestrator" in out
    monkeypatch.delenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION")
    monkeypatch.setenv("_ORCHESTRATOR_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "orchestrator pol")
    monkeypatch.setenv("COMP_CWORD", "1")
    code, out, _ = run(capsys)
    assert code == 0 and out.split() == ["policy"]
    monkeypatch.setenv("COMP_WORDS", "orchestrator plan --env ")
    monkeypatch.setenv("COMP_CWORD", "3")
    code, out, _ = run(capsys)
    assert code == 0  # an option's value: no completions offered, no error


@pytest.mark.parametrize("flag", [["--format", "json"], ["-f", "json"], ["--format=json"]])
def test_input_errors_are_json_on_stdout_when_json_is_asked(capsys: pytest.CaptureFixture[str], flag: list[str]) -> None:
    code, out, err = run(capsys, "plan", "--env", "nope", *flag)
    assert code == 2
    error = json.loads(out)["error"]
    assert error["kind"] == "input" and error["exit_code"] == 2 and "no environment 'nope'" in error["message"]
    assert "no environment 'nope'" in err  # people still read stderr


def test_spec_errors_list_every_issue_in_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "    min_nodes: 0\n    max_nodes: 4\n    cluster: eks-prod-use1",
                       "    min_nodes: 5\n    max_nodes: 4\n    cluster: eks-prod-use1")
    code, out, _ = run(capsys, "validate", "--spec", str(path), "--format", "json")
    assert code == 2
    (issue,) = json.loads(out)["error"]["issues"]
    assert issue["path"] == "pools[1].min_nodes" and issue["file"] == str(path) and issue["line"] > 0


def test_usage_errors_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "--mip-gap", "5", "--format", "json")
    assert code == 2
    error = json.loads(out)["error"]
    assert error["kind"] == "usage" and "--mip-gap" in error["message"]
    code, out, _ = run(capsys, "plan", "--no-such-option", "--format", "json")
    assert code == 2 and json.loads(out)["error"]["message"] == "No such option: --no-such-option"


def test_failures_are_json_with_exit_1(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken():
        raise CatalogError("the price catalog cannot be read")

    monkeypatch.setattr("orchestrator.cli.validate.load_catalog", broken)
    code, out, _ = run(capsys, "validate", "--env", "local", "--format", "json")
    assert code == 1 and json.loads(out) == {"error": {"kind": "failure", "exit_code": 1, "message": "the price catalog cannot be read"}}
    code, out, err = run(capsys, "validate", "--env", "local")
    assert code == 1 and out == "" and "failed: the price catalog cannot be read" in err


def test_without_json_errors_stay_off_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "--env", "nope")
    assert code == 2 and out == "" and "no environment 'nope'" in err
    code, out, err = run(capsys, "plan", "--mip-gap", "5")
    assert code == 2 and out == "" and "--mip-gap" in err


def test_tables_are_not_cut_when_stdout_is_not_a_terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, _ = run(capsys, "validate", "--env", "hybrid")
    assert code == 0 and "…" not in out
    assert any("aws-use1-h100-spot" in line and "skypilot-catalog v8, as of" in line for line in out.splitlines())
    monkeypatch.setenv("COLUMNS", "80")  # an explicit width wins
    code, out, _ = run(capsys, "validate", "--env", "hybrid")
    assert code == 0 and "…" in out and max(map(len, out.splitlines())) <= 80


def test_rebalance_says_how_many_replicas_a_step_starts(capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.rebalance import _describe, render_move
    from orchestrator.providers.base import ReplicaSpec, ScaleDown, ScaleUp
    from orchestrator.rebalance import Fleet
    from orchestrator.rebalance.run import Move
    from tests.orchestrator.rebalance.test_steps import target

    spec = ReplicaSpec(source="s3://b/m/", served_name="m")
    steps = [ScaleUp(model="m", pool="a", count=2, replica=spec), ScaleDown(model="k", pool="a", count=0)]
    move = Move("t", Fleet({"a": 1}, {("m", "a"): 1, ("k", "a"): 3}), target({("m", "a"): 2}, {"a": 1}), steps, 1.0, 1.0, [])
    render_move(move)
    out = capsys.readouterr().out
    assert "1. start 1 × m in a (1 → 2)" in out and "2. stop 3 × k in a (3 → 0)" in out
    assert _describe(steps[0]) == "scale up m in a to 2 replicas"  # resumed from the journal: the count before is unknown


def test_down_takes_format_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "down", "--env", "local", "--format", "json")
    assert code == 0, err
    assert json.loads(out) == {"environment": "local", "stopped": True}
