"""The rollouts of an environment in the state database (`rollout.journal`): in flight, promoted versions, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.rollout import journal
from orchestrator.rollout.plan import PoolRollout, RolloutPlan
from orchestrator.spec import load_spec
from orchestrator.state import open_state
from tests.conftest import ENVIRONMENTS

PLAN = RolloutPlan(model="m", from_version="v1", to_version="v2", steps=[25, 50, 100],
                   pools=[PoolRollout(pool="p", stable=2, gpus_per_replica=1, canary=[1, 1, 2], nodes=1)], replica={})


@pytest.fixture
def store(tmp_path: Path):
    store = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


def _row(store, rollout_id: int) -> journal.RolloutRecord:
    with store.session() as s:
        return s.get(journal.RolloutRecord, rollout_id)


def test_a_rollout_is_in_flight_from_its_start_to_its_finish_with_its_step(store) -> None:
    assert journal.in_flight(store, "e") is None
    rollout_id = journal.start(store, "e", "m", "v1", "v2", PLAN.model_dump_json())
    journal.record_step(store, rollout_id, 1, 50.0)
    journal.record_verdicts(store, rollout_id, json.dumps([{"step": 0, "decision": "pass"}]))
    row = journal.in_flight(store, "e")
    assert (row.id, row.model, row.step, row.percent, row.status) == (rollout_id, "m", 1, 50.0, "running")
    assert json.loads(row.verdicts_json) == [{"step": 0, "decision": "pass"}]
    assert RolloutPlan.model_validate_json(row.plan_json) == PLAN
    assert journal.in_flight(store, "other") is None
    status = journal.rollout_status(store, "e")
    assert (status.model, status.from_version, status.to_version, status.step, status.steps, status.percent) == (
        "m", "v1", "v2", 2, 3, 50.0)
    assert status.started_at.endswith("+00:00")

    journal.finish(store, rollout_id, "rolled_back", "error rate 9 %")
    assert journal.in_flight(store, "e") is None and journal.rollout_status(store, "e") is None
    last = _row(store, rollout_id)
    assert (last.status, last.reason, last.percent) == ("rolled_back", "error rate 9 %", 0.0)
    assert last.finished_at is not None


def test_the_version_a_model_runs_is_its_last_promoted_rollouts(store) -> None:
    assert journal.running_versions(store, "e") == {}
    journal.finish(store, journal.start(store, "e", "m", "v1", "v2", "{}"), "promoted")
    journal.finish(store, journal.start(store, "e", "m", "v2", "bad", "{}"), "rolled_back", "slow")
    journal.start(store, "e", "m", "v2", "v3", "{}")  # in flight: not run yet
    journal.finish(store, journal.start(store, "e", "n", "v1", "v9", "{}"), "promoted")
    journal.finish(store, journal.start(store, "other", "m", "v1", "v7", "{}"), "promoted")
    assert journal.running_versions(store, "e") == {"m": "v2", "n": "v9"}
    promoted = journal.start(store, "e", "m", "v2", "v4", "{}")
    journal.finish(store, promoted, "promoted")
    assert journal.running_versions(store, "e")["m"] == "v4" and _row(store, promoted).percent == 100.0


def test_the_in_flight_message_says_how_to_finish_or_abort(store) -> None:
    rollout_id = journal.start(store, "e", "m", "v1", "v2", PLAN.model_dump_json())
    journal.record_step(store, rollout_id, 0, 25.0)
    message = journal.rollout_in_flight_message(journal.in_flight(store, "e"), Path("envs/e.yaml"))
    assert message.startswith("a rollout of m from v1 to v2 is unfinished (step 1, 25 % on v2)")
    assert "`orchestrator rollout --spec envs/e.yaml --model m --to v2`" in message
    assert "`orchestrator rollout --spec envs/e.yaml --model m --abort`" in message


def test_a_version_rolled_out_to_must_still_be_in_the_spec() -> None:
    spec = load_spec(ENVIRONMENTS / "local.yaml")
    spec = spec.model_copy(update={"models": [spec.models[0].model_copy(update={"versions": []})]})  # v1 alone
    assert journal.checked_versions(spec, {"tiny-llama": "v1", "gone-model": "v5"}) == {"tiny-llama": "v1", "gone-model": "v5"}
    with pytest.raises(InputError, match=r"models\[tiny-llama\]: it runs version v2 \(rolled out\), which the spec no "
                                         r"longer declares.*roll out to one of v1$"):
        journal.checked_versions(spec, {"tiny-llama": "v2"})


def test_a_resumed_rollout_keeps_the_verdicts_of_the_steps_before_its_own(store) -> None:
    figures = {"requests": 10, "failures": 0, "error_rate": 0.0, "ttft_p95_ms": 1.0, "tpot_p95_ms": 1.0}
    verdicts = [{"step": s, "percent": p, "decision": "pass", "reasons": ["ok"], "elapsed_s": 5.0, "new": figures,
                 "old": figures} for s, p in ((0, 25.0), (1, 50.0))]
    rollout_id = journal.start(store, "e", "m", "v1", "v2", PLAN.model_dump_json())
    journal.record_verdicts(store, rollout_id, json.dumps(verdicts))
    journal.record_step(store, rollout_id, 1, 50.0)  # died after judging step 2, before step 3 was recorded
    assert [(v.step, v.percent) for v in journal.judged_before(journal.in_flight(store, "e"))] == [(0, 25.0)]
