"""`orchestrator policy ...` as a user meets it: exit codes, messages, JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.conftest import run_cli as run

FIXTURES = Path(__file__).parents[2] / "policies" / "fixtures"
BAD = FIXTURES / "bad"
HYBRID = FIXTURES / "hybrid"


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """Policy paths are taken from where orchestrator runs: the repository."""
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("command", [["policy"], ["policy", "check"], ["policy", "test"], ["policy", "export"]])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "Usage" in out


def test_bad_environment_exits_1_naming_each_rule_and_resource(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "check", "--spec", str(BAD / "prod.yaml"), "--plan", str(BAD / "plan.json"), "--stacks", str(BAD / "stacks"))
    assert code == 1
    assert [line for line in out.splitlines() if line.startswith(("DENY", "WARN"))] == (BAD / "expected.txt").read_text().splitlines()
    assert "✗ blocked: 20 denials, 1 warnings over 3 documents of 'prod'." in out


def test_json_output_is_the_report_alone(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "check", "--spec", str(BAD / "prod.yaml"), "--plan", str(BAD / "plan.json"),
                       "--only", "placement", "--format", "json")
    assert code == 1
    payload = json.loads(out)
    assert payload["passed"] is False and payload["counts"]["deny"] == 8


def test_hybrid_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "check", "--env", "hybrid", "--plan", str(HYBRID / "plan.json"), "--stacks", str(HYBRID / "stacks"))
    assert code == 0
    assert "✓ passed: 0 denials, 0 warnings over 5 documents of 'hybrid'." in out


def test_missing_stacks_exit_2_with_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no cdktf.out, no stacks app here
    (tmp_path / "policies").symlink_to(REPO / "policies")
    code, _, err = run(capsys, "policy", "check", "--env", "hybrid", "--plan", str(HYBRID / "plan.json"))
    assert code == 2
    assert "no synthesized stacks of environment 'hybrid'" in err and "--only placement" in err


def test_unknown_policy_data_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "prod.yaml"
    spec.write_text((BAD / "prod.yaml").read_text().replace("    licences:", "    licenses:"))
    code, _, err = run(capsys, "policy", "check", "--spec", str(spec), "--only", "placement", "--plan", str(BAD / "plan.json"))
    assert code == 2
    assert "policies.data.licenses: unknown policy data key. Did you mean 'licences'?" in err


def test_rego_unit_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "test")
    assert code == 0
    assert " passed, 0 failed" in out


def test_rego_unit_tests_report_failures_and_untested_rules(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "terraform").mkdir()
    (tmp_path / "terraform" / "x.rego").write_text("package terraform.x\nimport rego.v1\ndeny contains \"x\" if input.x\n")
    (tmp_path / "terraform" / "x_test.rego").write_text("package terraform.x_test\nimport rego.v1\ntest_nothing if { false }\n")
    code, out, _ = run(capsys, "policy", "test", str(tmp_path))
    assert code == 1
    assert "FAIL" in out and "terraform.x_test.test_nothing" in out
    assert "x.rego: no test reaches it" in out


def test_export_writes_what_conftest_needs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "policy", "export", "--spec", str(BAD / "prod.yaml"), "--plan", str(BAD / "plan.json"), "--out", str(tmp_path))
    assert code == 0 and "wrote" in err
    data = json.loads((tmp_path / "data.json").read_text())
    assert data["gpufleet"]["environment"] == "prod" and "qwen-research" in data["gpufleet"]["licences"]
    placement = json.loads((tmp_path / "placement.json").read_text())
    assert {p["continent"] for p in placement["pools"]} == {"europe", "north-america"}


def test_rego_unit_tests_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "policy", "test", "--format", "json")
    payload = json.loads(out)
    assert code == 0 and payload["passed"] is True and payload["counts"]["failed"] == 0 and payload["counts"]["passed"] > 0
    (tmp_path / "terraform").mkdir()
    (tmp_path / "terraform" / "x.rego").write_text("package terraform.x\nimport rego.v1\ndeny contains \"x\" if input.x\n")
    (tmp_path / "terraform" / "x_test.rego").write_text("package terraform.x_test\nimport rego.v1\ntest_nothing if { false }\n")
    code, out, _ = run(capsys, "policy", "test", str(tmp_path), "--format", "json")
    payload = json.loads(out)
    assert code == 1 and payload["passed"] is False
    assert [t["test"] for t in payload["tests"] if not t["passed"]] == ["terraform.x_test.test_nothing"]
    assert [Path(f).name for f in payload["unreached"]] == ["x.rego"]


def test_export_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "policy", "export", "--spec", str(BAD / "prod.yaml"), "--plan", str(BAD / "plan.json"),
                         "--out", str(tmp_path), "--format", "json")
    assert code == 0 and err == ""
    assert json.loads(out) == {"data": str(tmp_path / "data.json"), "placement": str(tmp_path / "placement.json"),
                               "plan": str(BAD / "plan.json")}
