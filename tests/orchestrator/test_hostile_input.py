"""Issue 16's defects that are not the spec reader's or the FOCUS import's own: a dry run writes nothing,
a resumed run reaches the ledger, JSON output is never NaN or Infinity."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from orchestrator.cli.common import print_json
from orchestrator.errors import GpufleetError
from orchestrator.ledger import open_ledger
from orchestrator.ledger.record import latest_apply, placement_digest
from orchestrator.planner import PlanOptions
from orchestrator.rebalance.journal import open_run, start_run
from orchestrator.rebalance.loop import rebalance_once
from orchestrator.settings import load_settings
from tests.conftest import ENVIRONMENTS, REPO, run_cli

LOCAL = ENVIRONMENTS / "local.yaml"


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # policies are read from where orchestrator runs


def dump(database: Path) -> list[str]:
    """Every row of every table, as SQL: what a write would change."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as con:
        return list(con.iterdump())


def interrupted_run(steps: bool):
    """A run of the local plan journaled and left `running`, as a killed rebalance leaves it; (store, target, run)."""
    move, _ = rebalance_once(LOCAL, load_settings(), PlanOptions(), decide=lambda m: False, step_timeout_s=5, dry_run=True)
    store = open_ledger(load_settings(), "local")
    run = start_run(store, "local", move.target.model_dump_json(), move.steps if steps else [])
    return store, move.target, run


def test_a_dry_run_after_an_interrupted_run_writes_nothing(gpufleet_home: Path) -> None:
    store, _, run = interrupted_run(steps=True)
    database = gpufleet_home / "state" / "local" / "state.db"
    before = dump(database)
    notes: list[str] = []
    from orchestrator.rebalance.loop import RebalanceUI

    move, applied = rebalance_once(LOCAL, load_settings(), PlanOptions(), decide=lambda m: True, step_timeout_s=5,
                                   ui=RebalanceUI(note=lambda text, kind: notes.append(text)), dry_run=True)
    assert applied is None and move.steps
    assert dump(database) == before  # no lock row, no journal step run, no ledger row
    assert len(open_run(store, "local").remaining) == len(run.remaining)
    assert not (gpufleet_home / "state" / "local" / "plans").exists()
    assert any(f"run {run.id} was interrupted" in n for n in notes)


def test_a_dry_run_of_a_new_environment_makes_no_file(gpufleet_home: Path) -> None:
    move, applied = rebalance_once(LOCAL, load_settings(), PlanOptions(), decide=lambda m: True, step_timeout_s=5,
                                   dry_run=True)
    assert applied is None and move.steps
    assert list(gpufleet_home.rglob("*")) == []


def test_a_resumed_run_is_stored_and_reaches_the_ledger(gpufleet_home: Path) -> None:
    store, target, _ = interrupted_run(steps=False)
    assert latest_apply(store, "local") is None
    rebalance_once(LOCAL, load_settings(), PlanOptions(), decide=lambda m: False, step_timeout_s=5, routes=False)
    assert latest_apply(store, "local").placement_sha256 == placement_digest(target)
    latest = json.loads((gpufleet_home / "state" / "local" / "plans" / "latest.json").read_text())
    assert latest["replicas"] == json.loads(target.model_dump_json())["replicas"]


def test_cli_dry_run_does_not_resume(capsys: pytest.CaptureFixture[str], gpufleet_home: Path) -> None:
    store, _, run = interrupted_run(steps=True)
    code, out, err = run_cli(capsys, "rebalance", "--env", "local", "--dry-run", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["applied"] is False
    assert len(open_run(store, "local").remaining) == len(run.remaining)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_json_output_never_holds_nan_or_infinity(number: float, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(GpufleetError, match="not finite"):
        print_json({"cost_per_hour": number})
    assert capsys.readouterr().out == ""
