"""`orchestrator rollout` and its spec fields from the command line: bad input is exit 2 naming what to fix, and an
unfinished rollout holds `rebalance` (exit 1) and shows in `status`. No fleet runs: the local provider observes none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from orchestrator.rollout import journal
from orchestrator.rollout.plan import PoolRollout, RolloutPlan
from orchestrator.state import open_state
from tests.conftest import ENVIRONMENTS, REPO, run_cli


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # policies are read from where orchestrator runs


def write_spec(tmp_path: Path, **model: object) -> Path:
    """environments/local.yaml with tiny-llama's versions v2 and v3 (and `model`'s fields over them)."""
    doc = yaml.safe_load((ENVIRONMENTS / "local.yaml").read_text())
    doc["models"][0] |= {"versions": [{"name": "v2", "max_model_len": 256}, {"name": "v3"}],
                         "rollout": {"steps": [50, 100], "hold_s": 5, "min_requests": 5}} | model
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def rollout_in_flight(gpufleet_home: Path) -> int:
    """A rollout of tiny-llama from v1 to v2 recorded at its first step, as one that died there leaves it."""
    (gpufleet_home / "state" / "local").mkdir(parents=True, exist_ok=True)
    store = open_state(f"sqlite:///{gpufleet_home / 'state' / 'local' / 'state.db'}")
    plan = RolloutPlan(model="tiny-llama", from_version="v1", to_version="v2", steps=[50, 100],
                       pools=[PoolRollout(pool="local", stable=1, gpus_per_replica=1, canary=[1, 1], nodes=1)], replica={})
    rollout_id = journal.start(store, "local", "tiny-llama", "v1", "v2", plan.model_dump_json())
    journal.record_step(store, rollout_id, 0, 50.0)
    store.close()
    return rollout_id


@pytest.mark.parametrize(("model", "field", "message"), [
    ({"versions": [{"name": "v1"}]}, "models[0]", "version names repeat (v1, v1)"),
    ({"versions": [{"name": "v2"}, {"name": "v2"}]}, "models[0]", "version names repeat (v1, v2, v2)"),
    ({"versions": [{"name": "V2 final"}]}, "models[0].versions[0].name", "String should match pattern"),
    ({"rollout": {"steps": [50, 25, 100]}}, "models[0].rollout.steps", "is not a ladder of traffic percentages"),
    ({"rollout": {"steps": [50, 90]}}, "models[0].rollout.steps", "ending at 100"),
    ({"rollout": {"steps": [0, 100]}}, "models[0].rollout.steps", "increasing numbers in (0, 100]"),
    ({"rollout": {"steps": []}}, "models[0].rollout.steps", "at least 1 item"),
    ({"rollout": {"max_ttft_ratio": 0.5}}, "models[0].rollout.max_ttft_ratio", "greater than or equal to 1"),
    ({"scale_to_zero": {"idle_after_s": 60}}, "models[0]", "scale_to_zero with min_replicas 1; allowed: min_replicas: 0"),
])
def test_validate_refuses_bad_versions_rollouts_and_scale_to_zero_naming_file_and_field(
        capsys, tmp_path: Path, model: dict, field: str, message: str) -> None:
    spec = write_spec(tmp_path, **model)
    code, _out, err = run_cli(capsys, "validate", "--spec", str(spec))
    assert code == 2 and "Traceback" not in err
    assert f"{spec}:" in err and f" {field}: " in err and message in err, err


def test_validate_accepts_versions_and_scale_to_zero_with_min_replicas_0(capsys, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, min_replicas=0, scale_to_zero={"idle_after_s": 60, "hold_s": 30})
    code, _out, err = run_cli(capsys, "validate", "--spec", str(spec))
    assert code == 0, err


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "nope", "--to", "v2"], "no model named 'nope'. To fix: use one of tiny-llama"),
    (["--model", "tiny-llama", "--to", "v9"], "models[tiny-llama] has no version 'v9'. To fix: use one of v1, v2, v3"),
    (["--model", "tiny-llama", "--to", "v2", "--abort"], "give --to VERSION to roll out, or --abort"),
    (["--model", "tiny-llama"], "give --to VERSION to roll out, or --abort"),
    (["--model", "tiny-llama", "--abort"], "no rollout of tiny-llama is unfinished in local: nothing to abort"),
    (["--model", "tiny-llama", "--to", "v2"], "local has no applied plan. To fix: run `orchestrator up`"),
])
def test_rollout_bad_input_is_exit_2_naming_what_to_fix(capsys, tmp_path: Path, args: list[str], message: str) -> None:
    code, _out, err = run_cli(capsys, "rollout", "--spec", str(write_spec(tmp_path)), *args)
    assert code == 2 and "Traceback" not in err
    assert message in " ".join(err.split()), err


def test_rollout_to_the_version_running_changes_nothing(capsys, tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "rollout", "--spec", str(write_spec(tmp_path)), "--model", "tiny-llama", "--to", "v1",
                             "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["outcome"], report["reason"], report["plan"]) == ("unchanged", "tiny-llama already runs v1", None)


def test_an_unfinished_rollout_holds_rebalance_and_other_rollouts_and_shows_in_status(
        capsys, tmp_path: Path, gpufleet_home: Path) -> None:
    spec = str(write_spec(tmp_path))
    rollout_in_flight(gpufleet_home)
    code, _out, err = run_cli(capsys, "rebalance", "--spec", spec, "--yes")
    assert code == 1 and "Traceback" not in err
    err = " ".join(err.split())
    assert "a rollout of tiny-llama from v1 to v2 is unfinished (step 1, 50 % on v2)" in err
    assert f"orchestrator rollout --spec {spec} --model tiny-llama --to v2" in err
    code, _out, err = run_cli(capsys, "rebalance", "--spec", spec, "--dry-run")  # a preview changes nothing: allowed
    assert code == 0, err

    code, _out, err = run_cli(capsys, "rollout", "--spec", spec, "--model", "tiny-llama", "--to", "v3")
    assert code == 1 and "a rollout of tiny-llama from v1 to v2 is unfinished" in " ".join(err.split())
    code, out, err = run_cli(capsys, "rollout", "--spec", spec, "--model", "tiny-llama", "--to", "v3", "--dry-run",
                             "--format", "json")
    assert code == 0, err
    preview = json.loads(out)
    assert (preview["outcome"], preview["to_version"], preview["reason"]) == ("planned", "v2", "resumes at step 1")

    code, out, err = run_cli(capsys, "status", "--spec", spec, "--format", "json")
    assert code == 0, err
    rollout = json.loads(out)["rollout"]
    assert {k: rollout[k] for k in ("model", "from_version", "to_version", "step", "steps", "percent")} == {
        "model": "tiny-llama", "from_version": "v1", "to_version": "v2", "step": 1, "steps": 2, "percent": 50.0}
