"""The local supervisor supervised: the real supervisor and gateway, started and stopped by the real CLI in
fresh processes, with a fake replica process (`tests/fakes/replica_process.py`: the entrypoint's process
tree without vLLM) so that killing and restarting takes seconds, not minutes.

After the supervisor is SIGKILLed, `up` and `rebalance --yes` must notice and start one (not report
success while starting nothing), and a replica killed after that is restarted; `down` stops everything
the environment started, including a replica's serving child whose entrypoint and supervisor are both
dead. `status` lists such strays while they run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from orchestrator.providers.local.processes import alive, tagged
from tests.conftest import REPO
from tests.orchestrator.providers.local.test_local_fleet import Fleet, running_fleet

pytestmark = pytest.mark.slow

SETTLE_S = 20


def _supervisor_pid(fleet: Fleet) -> int:
    with sqlite3.connect(fleet.home / "state" / "local" / "state.db") as db:
        [(pid,)] = db.execute("SELECT pid FROM local_supervisors").fetchall()
    return pid


def _tag(fleet: Fleet) -> str:
    return str((fleet.home / "state" / "local").resolve())


def _status(fleet: Fleet) -> tuple[dict, str]:
    run = fleet.cli("status", "--format", "json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), run.stderr


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def until(check, what: str, timeout_s: float = SETTLE_S):
    """`check()`'s first truthy answer, asked every 0.5 s; the test fails past `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    pytest.fail(f"not within {timeout_s:.0f} s: {what}")


def _serving(status: dict) -> dict | None:
    """The status when its one replica and the gateway are healthy, else None."""
    replicas = status["replicas"]
    return status if len(replicas) == 1 and replicas[0]["healthy"] and status["gateway"]["healthy"] else None


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    """One local fleet for the module, in order, its replicas the fake replica process (importable from the
    repository); stopped and every recorded process checked gone at the end."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GPUFLEET_LOCAL_REPLICA_COMMAND", f"{sys.executable} -m tests.fakes.replica_process")
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        with running_fleet(tmp_path_factory.mktemp("fleet-home"), demo=False) as fleet:
            yield fleet


def test_up_after_the_supervisor_was_killed_starts_one_that_restarts_replicas(fleet: Fleet) -> None:
    first, old_replica = _supervisor_pid(fleet), fleet.up["replicas"][0]["pid"]

    _kill(first)
    status, stderr = _status(fleet)
    assert not status["replicas"][0]["healthy"] and not status["gateway"]["healthy"]  # unsupervised: not in service
    strays = {p.pid for p in tagged(_tag(fleet))}
    assert old_replica in strays and all(f"stray pid {pid}:" in stderr for pid in strays)

    up = fleet.cli("up", "--no-demo", "--format", "json")  # notices, starts one, waits for its replica
    assert up.returncode == 0, up.stderr[-2000:]
    second = _supervisor_pid(fleet)
    assert second != first and alive(second) and not alive(old_replica)
    status, stderr = _status(fleet)
    assert _serving(status) and status["replicas"][0]["pid"] != old_replica and "stray" not in stderr

    victim = status["replicas"][0]["pid"]
    _kill(victim)  # a replica death after that is restarted
    back = until(lambda: (s := _serving(_status(fleet)[0])) and s["replicas"][0]["restarts"] >= 1 and s, "a restart")
    assert back["replicas"][0]["pid"] != victim


def test_rebalance_after_the_supervisor_was_killed_starts_one_and_down_stops_what_it_left(fleet: Fleet) -> None:
    first = _supervisor_pid(fleet)
    _kill(first)
    rebalance = fleet.cli("rebalance", "--yes")
    assert rebalance.returncode == 0, rebalance.stderr[-2000:]
    second = _supervisor_pid(fleet)
    status, _ = _status(fleet)
    assert second != first and alive(second) and _serving(status)

    entrypoint, url = status["replicas"][0]["pid"], status["replicas"][0]["url"]
    _kill(second)
    _kill(entrypoint)  # its serving child lives on, as vLLM does when its entrypoint is killed
    assert httpx.get(f"{url}/health", timeout=2).status_code == 200
    left = {p.pid: " ".join(p.cmdline()).strip() for p in tagged(_tag(fleet))}
    assert "FAKE::ReplicaServer" in left.values() and len(left) >= 2  # the renamed orphan and the gateway

    down = fleet.cli("down", "--format", "json", timeout=120)
    assert down.returncode == 0, down.stderr
    assert tagged(_tag(fleet)) == [] and not any(alive(pid) for pid in left)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=2)
    status, stderr = _status(fleet)
    assert status["replicas"] == [] and "stray" not in stderr
