"""The rollout controller (`rollout.run.Rollout`) over fake providers and scripted figures: the exact steps of a
promotion, of a rollback and of a resumed rollout, and what the journal holds after each. No fleet, no sleeping:
the clock advances by what the controller asks to sleep. And `rebalance` refuses while a rollout is unfinished."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from orchestrator.dashboard.vllm_serving import Histogram
from orchestrator.planner import PlanOptions
from orchestrator.providers.base import Promote, ReplicaSpec, ResizePool, SetCanary, SetTraffic, Step, StepPending
from orchestrator.rebalance.loop import rebalance_once
from orchestrator.rollout import journal
from orchestrator.rollout.gate import VersionFigures
from orchestrator.rollout.plan import PoolRollout, RolloutPlan
from orchestrator.rollout.run import Rollout, RolloutUI
from orchestrator.settings import load_settings
from orchestrator.spec.models import Model
from orchestrator.state import open_state
from tests.conftest import ENVIRONMENTS, REPO

PENDING = 2  # each change is under way this many times before it holds, as a replica loading is

MODEL = Model.model_validate({
    "name": "m", "architecture": "tiny-llama", "source": "/weights/m",
    "slo": {"ttft_p95_ms": 1000, "tpot_p95_ms": 100, "max_rtt_ms": 50},
    "versions": [{"name": "v2"}],
    "rollout": {"steps": [25, 100], "hold_s": 10, "min_requests": 20, "max_wait_s": 300},
})
V2 = ReplicaSpec(source="/weights/m", served_name="m", tensor_parallel_size=1, version="v2")
PLAN = RolloutPlan(model="m", from_version="v1", to_version="v2", steps=[25, 100], replica={"a": V2, "b": V2}, pools=[
    PoolRollout(pool="a", stable=4, gpus_per_replica=1, canary=[1, 4], nodes=1, grow_to=2),
    PoolRollout(pool="b", stable=1, gpus_per_replica=1, canary=[1, 1], nodes=1),
])


@dataclass
class FakeProvider:
    """Applies rollout steps: each is StepPending `PENDING` times, then holds; the steps that held, in order."""

    applied: list[str] = field(default_factory=list)
    asked: dict[str, int] = field(default_factory=dict)

    def apply(self, step: Step) -> None:
        text = describe(step)
        self.asked[text] = self.asked.get(text, 0) + 1
        if self.asked[text] <= PENDING:
            raise StepPending(f"{text} under way", retry_after_s=1)
        self.applied.append(text)


def _row(store, rollout_id: int) -> journal.RolloutRecord:
    with store.session() as s:
        return s.get(journal.RolloutRecord, rollout_id)


def describe(step: Step) -> str:
    if isinstance(step, ResizePool):
        return f"resize {step.pool} {step.nodes}"
    if isinstance(step, SetCanary):
        return f"canary {step.pool} {step.count} {step.replica.version}"
    if isinstance(step, Promote):
        return f"promote {step.pool} {step.replica.version}"
    if isinstance(step, SetTraffic):
        return f"traffic {step.pool} " + " ".join(f"{v}={w:g}" for v, w in step.weights.items())
    raise AssertionError(step)


def latency(seconds: float, n: int) -> Histogram:
    return Histogram((seconds / 2, seconds, math.inf), (0, n, n))


@dataclass
class Scripted:
    """Cumulative figures growing by `per_call` requests per version at each scrape, `failing` of v2's failing."""

    per_call: int = 10
    failing: int = 0
    calls: int = 0

    def __call__(self) -> dict[str, VersionFigures]:
        self.calls += 1
        n = self.calls * self.per_call
        return {"v1": VersionFigures(n, 0, latency(0.2, n), latency(0.02, n)),
                "v2": VersionFigures(n, self.calls * self.failing, latency(0.2, n), latency(0.02, n))}


@pytest.fixture
def store(tmp_path):
    store = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


def controller(store, figures, first: FakeProvider, second: FakeProvider | None = None) -> tuple[Rollout, int, list[float]]:
    """A Rollout of PLAN (pools a and b on `first`, or b on `second`); the journal row; the sleeps asked for."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    rollout_id = journal.start(store, "e", "m", "v1", "v2", PLAN.model_dump_json())
    providers = {"a": first, "b": second or first}
    return (Rollout("e", MODEL, PLAN, rollout_id, store, providers, figures, step_timeout_s=60, ui=RolloutUI(),
                    sleep=sleep, clock=lambda: now[0]), rollout_id, slept)


def test_a_passing_rollout_grows_steps_promotes_and_shrinks_in_that_order(store) -> None:
    fake = FakeProvider()
    rollout, rollout_id, slept = controller(store, Scripted(), fake)
    report = rollout.run(0)
    assert fake.applied == [
        "resize a 2",
        "canary a 1 v2", "canary b 1 v2", "traffic a v1=75 v2=25", "traffic b v1=75 v2=25",
        "canary a 4 v2", "canary b 1 v2", "traffic a v1=0 v2=100", "traffic b v1=0 v2=100",
        "promote a v2", "promote b v2", "traffic a v2=100", "traffic b v2=100",
        "resize a 1",
    ]
    # each asked again until it held, never after (a repeated target holds at once)
    assert fake.asked == {text: PENDING + fake.applied.count(text) for text in fake.applied}
    assert report.outcome == "promoted" and report.reason is None
    assert [(v.step, v.percent, v.decision) for v in report.verdicts] == [(0, 25, "pass"), (1, 100, "pass")]
    assert all(v.elapsed_s >= MODEL.rollout.hold_s and v.new.requests >= MODEL.rollout.min_requests for v in report.verdicts)
    assert 5.0 in slept  # it watched between scrapes
    row = _row(store, rollout_id)
    assert (row.id, row.status, row.step, row.percent) == (rollout_id, "promoted", 1, 100.0)
    assert journal.running_versions(store, "e") == {"m": "v2"}
    assert journal.in_flight(store, "e") is None


def test_each_pools_steps_go_to_its_own_provider(store) -> None:
    first, second = FakeProvider(), FakeProvider()
    controller(store, Scripted(), first, second)[0].run(0)
    assert second.applied == ["canary b 1 v2", "traffic b v1=75 v2=25", "canary b 1 v2", "traffic b v1=0 v2=100",
                              "promote b v2", "traffic b v2=100"]
    assert [a for a in first.applied if a.startswith(("canary", "promote"))] == [
        "canary a 1 v2", "canary a 4 v2", "promote a v2"]


def test_a_failing_step_stops_the_canary_then_weights_the_old_version_then_shrinks(store) -> None:
    """The canary stops first (it leaves the gateway, so its share falls to the old version at once: abdf562),
    then the old version is weighted 100 %, then the pool grown for the rollout shrinks back."""
    fake = FakeProvider()
    rollout, rollout_id, _slept = controller(store, Scripted(failing=5), fake)
    report = rollout.run(0)
    assert fake.applied == [
        "resize a 2",
        "canary a 1 v2", "canary b 1 v2", "traffic a v1=75 v2=25", "traffic b v1=75 v2=25",
        "canary a 0 v2", "canary b 0 v2",
        "traffic a v1=100", "traffic b v1=100",
        "resize a 1",
    ]
    assert report.outcome == "rolled_back" and report.reason.startswith("error rate 50.0% (5 of 10)")
    assert [(v.step, v.decision) for v in report.verdicts] == [(0, "fail")]
    row = _row(store, rollout_id)
    assert (row.id, row.status, row.percent, row.reason) == (rollout_id, "rolled_back", 0.0, report.reason)
    assert journal.running_versions(store, "e") == {} and journal.in_flight(store, "e") is None


def test_a_resumed_rollout_starts_at_its_recorded_step(store) -> None:
    fake = FakeProvider()
    rollout, rollout_id, _slept = controller(store, Scripted(), fake)
    journal.record_step(store, rollout_id, 1, 100.0)  # it died during its second step
    resumed = journal.in_flight(store, "e")
    report = rollout.run(resumed.step)
    assert fake.applied == ["resize a 2", "canary a 4 v2", "canary b 1 v2", "traffic a v1=0 v2=100",
                            "traffic b v1=0 v2=100", "promote a v2", "promote b v2", "traffic a v2=100",
                            "traffic b v2=100", "resize a 1"]
    assert report.outcome == "promoted" and [v.step for v in report.verdicts] == [1]


def test_abort_rolls_back_without_judging(store) -> None:
    fake = FakeProvider()
    rollout, _rollout_id, _slept = controller(store, Scripted(), fake)
    report = rollout.roll_back("aborted by `orchestrator rollout --abort`")
    assert fake.applied == ["canary a 0 v2", "canary b 0 v2", "traffic a v1=100", "traffic b v1=100", "resize a 1"]
    assert (report.outcome, report.verdicts) == ("rolled_back", [])


def test_a_step_without_enough_traffic_rolls_back_past_max_wait_s(store) -> None:
    fake = FakeProvider()
    figures = Scripted(per_call=0)
    report = controller(store, figures, fake)[0].run(0)
    assert report.outcome == "rolled_back" and "rollout.min_requests" in report.reason
    assert report.verdicts[0].elapsed_s >= MODEL.rollout.max_wait_s and figures.calls > 2


def test_rebalance_refuses_while_a_rollout_is_in_flight(gpufleet_home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # policies are read from where orchestrator runs
    (gpufleet_home / "state" / "local").mkdir(parents=True)
    store = open_state(f"sqlite:///{gpufleet_home / 'state' / 'local' / 'state.db'}")
    rollout_id = journal.start(store, "local", "tiny-llama", "v1", "v2", PLAN.model_dump_json())
    decided = []
    with pytest.raises(journal.RolloutInFlight, match="a rollout of tiny-llama from v1 to v2 is unfinished"):
        rebalance_once(ENVIRONMENTS / "local.yaml", load_settings(), PlanOptions(), decide=decided.append,
                       step_timeout_s=5, routes=False)
    assert decided == []  # refused before planning anything
    journal.finish(store, rollout_id, "rolled_back", "aborted")
    move, _run = rebalance_once(ENVIRONMENTS / "local.yaml", load_settings(), PlanOptions(), decide=lambda m: False,
                                step_timeout_s=5, routes=False)
    assert move.steps  # finished: rebalance plans again
    store.close()
