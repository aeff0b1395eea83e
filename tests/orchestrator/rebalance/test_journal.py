"""The journal and lock: a run that dies after any step is resumed to the target, once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from orchestrator.rebalance import Fleet, plan_steps
from orchestrator.rebalance.execute import execute
from orchestrator.rebalance.journal import LockHeld, environment_lock, journal_rows, open_run, start_run
from orchestrator.state import open_state
from tests.fakes.provider_fake import FakeProvider
from tests.orchestrator.rebalance.test_steps import SPEC, target

POSTGRES_URL = os.environ.get("GPUFLEET_TEST_POSTGRES_URL")
URLS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


class Crash(BaseException):
    """The process dying between two steps (not an error any code handles)."""


@pytest.fixture(params=URLS)
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = POSTGRES_URL
    store = open_state(url)
    yield store
    if request.param == "postgresql":
        from orchestrator.state import Base

        Base.metadata.drop_all(store.engine)
    store.close()


def moving_fleet():
    current = Fleet({"a": 1, "b": 0}, {("m", "a"): 2, ("k", "a"): 0})
    goal = target({("m", "b"): 2, ("k", "b"): 1}, {"a": 0, "b": 2})
    return current, goal


@pytest.mark.parametrize("crash_after", range(5))
def test_crash_after_any_step_resumes_to_target(store, crash_after: int) -> None:
    current, goal = moving_fleet()
    steps = plan_steps(current, goal, SPEC)
    assert len(steps) == 5 and crash_after < len(steps)
    provider = FakeProvider(dict(current.nodes), dict(current.replicas))
    run = start_run(store, "t", goal.model_dump_json(), steps)

    def die(seq, step):
        if seq == crash_after:
            raise Crash

    with pytest.raises(Crash):
        execute(store, "t", run, lambda step: provider, sleep=lambda s: None, on_step=die)
    resumed = open_run(store, "t")
    assert resumed is not None and [p.seq for p in resumed.remaining] == list(range(crash_after + 1, len(steps)))
    execute(store, "t", resumed, lambda step: provider, sleep=lambda s: None)

    assert provider.fleet() == Fleet({"a": 0, "b": 2}, {("m", "b"): 2, ("k", "b"): 1})
    assert len(provider.changes) == len(steps), "every change made exactly once"
    assert open_run(store, "t") is None
    assert all(row["state"] == "done" for row in journal_rows(store, run.id))
    # every state the fleet passed through, across the crash: m at its demand (2 req/s), replicas on nodes
    for fleet in [current] + provider.history:
        assert sum(v for (m, _), v in fleet.replicas.items() if m == "m") * 1.0 >= 2.0
        for pool, nodes in fleet.nodes.items():
            assert sum(v for (_, p), v in fleet.replicas.items() if p == pool) <= nodes * 2


def test_crash_inside_a_step_reruns_it_without_doubling(store) -> None:
    current, goal = moving_fleet()
    steps = plan_steps(current, goal, SPEC)
    provider = FakeProvider(dict(current.nodes), dict(current.replicas))
    run = start_run(store, "t", goal.model_dump_json(), steps)

    class DiesMidStep:
        def apply(self, step):
            provider.apply(step)
            if step.kind == "scale_up":
                raise Crash  # the provider did it, the journal never heard back

    with pytest.raises(Crash):
        execute(store, "t", run, lambda step: DiesMidStep(), sleep=lambda s: None)
    resumed = open_run(store, "t")
    assert resumed.remaining[0].step.kind == "scale_up"
    execute(store, "t", resumed, lambda step: provider, sleep=lambda s: None)
    assert provider.changes.count("scale_up m b 2") == 1


def test_second_rebalance_gets_the_lock_message(store) -> None:
    with environment_lock(store, "t"):
        with pytest.raises(LockHeld, match="another rebalance of 't' is running"):
            with environment_lock(store, "t"):
                pass
    with environment_lock(store, "t"):  # released after the first one
        pass


def test_lock_of_a_dead_process_is_taken_over(store) -> None:
    from orchestrator.rebalance.journal import EnvironmentLock
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    with store.session() as s:
        s.add(EnvironmentLock(environment="t", holder=f"{socket.gethostname()}:{dead}"))
    with environment_lock(store, "t"):
        pass
