"""`orchestrator spend` and `orchestrator dashboard` as a user meets them: exit codes, messages, files, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli as run


@pytest.fixture
def planned(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "--env", "local", "--no-baselines")
    assert code == 0, err


@pytest.mark.parametrize("command", [["spend"], ["spend", "record"], ["spend", "import"], ["spend", "export"],
                                     ["spend", "report"], ["dashboard"]])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "Usage" in out


def test_record_takes_the_latest_plan_once(capsys: pytest.CaptureFixture[str], planned: None) -> None:
    code, out, err = run(capsys, "spend", "record", "--env", "local", "--format", "json", "--no-tokens")
    assert code == 0, err
    first = json.loads(out)
    assert first["placement"]["recorded"] and first["placement"]["cost_per_hour"] == pytest.approx(0.05)
    assert first["placement"]["baseline_cost_per_hour"] is None  # users on this machine: no single cloud to compare
    code, out, _ = run(capsys, "spend", "record", "--env", "local", "--no-tokens")
    assert code == 0 and "unchanged since" in out


def test_record_without_a_plan_says_what_to_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spend", "record", "--env", "local")
    assert code == 2 and "no stored plan for local" in err and "orchestrator plan --env local" in err


def test_record_reads_the_baseline_a_plan_file_carries(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "plan", "--env", "local", "--format", "json", "--no-save")
    document = json.loads(out)
    document["baselines"] = [{"name": "single_cloud", "cost_per_hour": 0.2, "serves_all": True, "detail": "a test cloud"}]
    (tmp_path / "plan.json").write_text(json.dumps(document))
    code, out, err = run(capsys, "spend", "record", "--env", "local", "--placement", str(tmp_path / "plan.json"), "--no-tokens")
    assert code == 0, err
    assert "one cloud: $0.20/h, 75.0% less" in out


def test_import_reports_and_a_broken_file_exits_2(capsys: pytest.CaptureFixture[str], focus_sample: Path, tmp_path: Path) -> None:
    code, out, err = run(capsys, "spend", "import", str(focus_sample), "--env", "local")
    assert code == 0, err
    assert "FOCUS 1.0, 1,000 rows" in out and "no row is tagged env=local" in out
    broken = tmp_path / "broken.csv"
    broken.write_text(focus_sample.read_text().replace('"BilledCost"', '"Billed"', 1))
    code, out, err = run(capsys, "spend", "import", str(broken), "--env", "local")
    assert code == 2 and f"{broken}: missing FOCUS column BilledCost" in err and "Traceback" not in err


def test_export_and_report(capsys: pytest.CaptureFixture[str], planned: None, tmp_path: Path) -> None:
    assert run(capsys, "spend", "record", "--env", "local", "--no-tokens")[0] == 0
    code, out, err = run(capsys, "spend", "export", "--env", "local", "--format", "focus")
    assert code == 0, err
    assert out.startswith("AvailabilityZone,BilledCost,") and len(out.splitlines()) >= 2
    code, _, err = run(capsys, "spend", "export", "--env", "local", "--out", str(tmp_path / "ledger.parquet"))
    assert code == 0 and (tmp_path / "ledger.parquet").stat().st_size > 0 and "FOCUS rows of local" in err
    code, out, err = run(capsys, "spend", "report", "--env", "local", "--days", "1", "--html", str(tmp_path / "r.html"),
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)["environment"] == "local" and json.loads(out)["bucket"] == "hour"
    assert (tmp_path / "r.html").read_text().count("data-chart=") == 6
    code, out, _ = run(capsys, "spend", "report", "--env", "local")
    assert code == 0 and "running now $0.05/h" in out


def test_an_empty_window_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spend", "report", "--env", "local", "--since", "2026-11-05", "--until", "2026-11-01")
    assert code == 2 and "the window is empty" in err
