"""rebalance end to end over a fake provider: observe → plan → gate → steps → journal → apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.inputs import load_inputs
from orchestrator.planner import PlanOptions
from orchestrator.rebalance.journal import environment_lock
from orchestrator.rebalance.run import apply, prepare, resume
from orchestrator.state import open_state
from tests.conftest import ENVIRONMENTS, REPO, run_cli
from tests.fakes.provider_fake import FakeProvider


@pytest.fixture
def local():
    return load_inputs(ENVIRONMENTS / "local.yaml", load_price_catalog())


def test_first_rebalance_starts_the_plan_and_the_second_has_nothing_to_do(local, tmp_path: Path) -> None:
    spec, inputs = local
    fake = FakeProvider({"local": 1})
    providers = {"local": fake}
    store = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    move = prepare(spec, inputs, load_price_catalog(), providers, PlanOptions(), REPO)
    assert [s.kind for s in move.steps] == ["scale_up"] and move.steps[0].count == 1
    assert move.steps[0].replica.served_name == "tiny-llama" and move.steps[0].replica.source == "${GPUFLEET_HOME}/models/tiny-llama"
    with environment_lock(store, inputs.environment):
        apply(store, move, providers, step_timeout_s=5)
    assert fake.replicas == {("tiny-llama", "local"): 1}
    again = prepare(spec, inputs, load_price_catalog(), providers, PlanOptions(), REPO)
    assert again.steps == [] and again.cost_before == again.cost_after == 0.05


def test_lost_replica_is_restored(local, tmp_path: Path) -> None:
    spec, inputs = local
    fake = FakeProvider({"local": 1}, {("tiny-llama", "local"): 1})
    fake.replicas[("tiny-llama", "local")] = 0  # crashed
    move = prepare(spec, inputs, load_price_catalog(), {"local": fake}, PlanOptions(), REPO)
    assert [(s.kind, s.count) for s in move.steps] == [("scale_up", 1)]


def test_resume_is_a_no_op_without_an_unfinished_run(tmp_path: Path) -> None:
    store = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    assert resume(store, "local", {}, step_timeout_s=1) is None


def test_cli_refuses_while_another_rebalance_holds_the_lock(capsys: pytest.CaptureFixture[str], gpufleet_home: Path) -> None:
    (gpufleet_home / "state" / "local").mkdir(parents=True)
    store = open_state(f"sqlite:///{gpufleet_home / 'state' / 'local' / 'state.db'}")
    with environment_lock(store, "local"):
        code, _, err = run_cli(capsys, "rebalance", "--env", "local", "--yes")
        assert code == 1 and "another rebalance of 'local' is running" in err
        code, _, err = run_cli(capsys, "rebalance", "--env", "local", "--dry-run")  # a preview takes no lock
        assert code == 0, err


def test_cli_dry_run_shows_the_diff_and_changes_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    code, out, err = run_cli(capsys, "rebalance", "--env", "local", "--dry-run", "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["applied"] is False and payload["cost_per_hour"]["after"] == 0.05
    assert any(s["kind"] == "scale_up" and s["model"] == "tiny-llama" for s in payload["steps"])


def test_cli_plans_for_a_traces_demand(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    monkeypatch.chdir(REPO)
    code, out, err = run_cli(capsys, "rebalance", "--env", "local", "--dry-run", "--format", "json")
    assert code == 0, err
    alone = json.loads(out)["replicas"][0]["after"]
    trace = tmp_path / "busy.jsonl"  # 600 req/s for 10 s: more than one tiny CPU replica sustains
    trace.write_text("".join(json.dumps({"timestamp": i * 10 // 6, "input_length": 100, "output_length": 20, "hash_ids": []}) + "\n"
                             for i in range(6000)))
    code, out, err = run_cli(capsys, "rebalance", "--env", "local", "--dry-run", "--format", "json",
                             "--trace", str(trace), "--window-s", "5")
    assert code == 0, err
    assert "demand:" in err and json.loads(out)["replicas"][0]["after"] > alone == 1
