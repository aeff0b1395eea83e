"""One planning path (`orchestrator.planning`): every command that plans makes the plan `plan` makes,
reads the placement JSON `plan --format json` writes, and prices baseline (a) as `plan` does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ENVIRONMENTS, REPO
from tests.conftest import run_cli as run
from tests.orchestrator.cli.test_plan_cli import hybrid_plan  # noqa: F401  (a fixture: the hybrid plan, once per module)

HYBRID_STACKS = REPO / "tests" / "policies" / "fixtures" / "hybrid" / "stacks"


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """Policy paths are taken from where orchestrator runs: the repository."""
    monkeypatch.chdir(REPO)


@pytest.fixture
def plan_file(hybrid_plan: dict, tmp_path: Path) -> Path:
    """`plan --env hybrid --format json` (baselines included; planned once per module) written to a file."""
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(hybrid_plan))
    return path


def single_cloud(plan: dict) -> float:
    return next(b["cost_per_hour"] for b in plan["baselines"] if b["name"] == "single_cloud")


def test_policy_check_on_a_fresh_home_plans_within_the_guardrails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "policy", "check", "--env", "hybrid", "--stacks", str(HYBRID_STACKS))
    assert code == 0, out + err
    assert "planned now (no stored plan)" in out and "✓ passed: 0 denials" in out


def test_a_plan_made_for_a_check_is_the_plan_plan_makes(capsys: pytest.CaptureFixture[str], plan_file: Path,
                                                        tmp_path: Path) -> None:
    code, _, err = run(capsys, "policy", "export", "--env", "hybrid", "--out", str(tmp_path))
    assert code == 0 and "plan: planned now" in err, err
    checked = json.loads((tmp_path / "placement.json").read_text())
    planned = json.loads(plan_file.read_text())
    assert checked["cost_per_hour"] == pytest.approx(planned["cost_per_hour"], abs=1e-6)
    assert checked["replicas"] == planned["replicas"]


def test_without_the_guardrails_the_plan_is_denied(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """What a check without the guardrails would have seen: the rules deny a plan made without them."""
    code, out, _ = run(capsys, "plan", "--env", "hybrid", "--format", "json", "--no-policy-rules", "--no-baselines", "--no-save")
    assert code == 0
    (tmp_path / "free.json").write_text(out)
    code, out, _ = run(capsys, "policy", "check", "--env", "hybrid", "--only", "placement", "--plan", str(tmp_path / "free.json"))
    assert code == 1 and "✗ blocked" in out
    # a fleet that opts out of the default guardrails (null deletes a key, {} replaces an object) passes
    spec = tmp_path / "hybrid.yaml"
    spec.write_text((ENVIRONMENTS / "hybrid.yaml").read_text().replace(
        "  paths: [policies]\n", "  paths: [policies]\n  data:\n    residency_areas: {}\n    max_spot_share: {default: null}\n"))
    code, out, _ = run(capsys, "policy", "check", "--spec", str(spec), "--only", "placement", "--plan", str(tmp_path / "free.json"))
    assert code == 0 and "✓ passed" in out, out


def test_the_placement_json_round_trips(capsys: pytest.CaptureFixture[str], plan_file: Path) -> None:
    planned = json.loads(plan_file.read_text())
    assert planned["baselines"], "the file carries the baselines"
    code, out, err = run(capsys, "policy", "check", "--env", "hybrid", "--only", "placement", "--plan", str(plan_file))
    assert code == 0, out + err
    code, out, err = run(capsys, "plan", "--env", "hybrid", "--current", str(plan_file), "--no-baselines", "--no-save",
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)["cost_per_hour"] == pytest.approx(planned["cost_per_hour"], abs=1e-6)
    code, out, err = run(capsys, "spend", "record", "--env", "hybrid", "--placement", str(plan_file), "--no-tokens")
    assert code == 0, err


def test_hand_written_placements_still_reject_unknown_fields(capsys: pytest.CaptureFixture[str], plan_file: Path,
                                                             tmp_path: Path) -> None:
    document = json.loads(plan_file.read_text())
    document["baseline"] = document.pop("baselines")  # a typo
    (tmp_path / "typo.json").write_text(json.dumps(document))
    code, _, err = run(capsys, "policy", "check", "--env", "hybrid", "--only", "placement", "--plan", str(tmp_path / "typo.json"))
    assert code == 2 and "baseline" in err and "Extra inputs are not permitted" in err


def test_spend_record_uses_the_baseline_plan_reports(capsys: pytest.CaptureFixture[str], plan_file: Path) -> None:
    planned = json.loads(plan_file.read_text())
    code, out, err = run(capsys, "spend", "record", "--env", "hybrid", "--placement", str(plan_file), "--no-tokens",
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)["placement"]["baseline_cost_per_hour"] == single_cloud(planned)


def test_spend_record_computes_the_baseline_as_plan_does(capsys: pytest.CaptureFixture[str], plan_file: Path) -> None:
    """A stored plan without baselines (`plan --no-baselines`): the ledger computes (a) with the same guardrails and options."""
    code, _, err = run(capsys, "plan", "--env", "hybrid", "--no-baselines")
    assert code == 0, err
    code, out, err = run(capsys, "spend", "record", "--env", "hybrid", "--no-tokens", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["placement"]["baseline_cost_per_hour"] == pytest.approx(single_cloud(json.loads(plan_file.read_text())), abs=1e-6)
    code, out, err = run(capsys, "spend", "report", "--env", "hybrid", "--format", "json", "--days", "1")
    assert code == 0, err
    assert json.loads(out)["savings"]["baseline_cost_per_hour"] == pytest.approx(single_cloud(json.loads(plan_file.read_text())), abs=1e-6)
