"""`orchestrator rollout` on the real local fleet under load: promoted, rolled back, and resumed after a crash.

One fleet (CPU vLLM replicas of the tiny model behind the real vllm-router, started by
`orchestrator up` in a fresh process) for the whole test, while 2 client threads keep
sending completions (~100-token prompts) through the gateway with its key and no retries:

a) v1 → v2 (another max_model_len, `--seed 7`) is promoted: every replica runs v2 and the
   traffic file sends it everything;
b) v2 → broken (max_model_len 64: vLLM answers the prompts 400) is rolled back at its first
   step (exit 1): v2 serves alone again, the canary is gone; the gateway sent the canary's
   failures again to v2, so no client saw one;
c) v2 → v3 is SIGKILLed at its first step with the canary serving; `rebalance` refuses
   (exit 1, naming the rollout) and the same rollout command resumes it and promotes v3.

No client request may fail in any part. All traffic stays on 127.0.0.1; `orchestrator down`
stops everything at the end, and every recorded process is checked gone.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from orchestrator.gateway.lanes import read_traffic_file
from tests.orchestrator.providers.local.test_local_fleet import Fleet, running_fleet
from tests.orchestrator.providers.local.test_supervisor_killed import until

pytestmark = pytest.mark.slow

MODEL = "tiny-llama"
PROMPT = "hello " * 33  # 100 tokens of the tiny model: within v1, v2 and v3's context, past broken's 64
ROLLOUT_TIMEOUT_S = 420
SETTLE_S = 240  # waits for a state, never a claim about speed: this box has 2 shared cores


def _versions(doc: dict) -> None:
    model = doc["models"][0]
    model["slo"] |= {"ttft_p95_ms": 30000, "tpot_p95_ms": 5000}  # judged by ratio; a noisy 2-core box
    model["versions"] = [{"name": "v2", "max_model_len": 256, "vllm_args": ["--seed", "7"]},
                         {"name": "broken", "max_model_len": 64},
                         {"name": "v3", "max_model_len": 384}]
    model["rollout"] = {"steps": [50, 100], "hold_s": 5, "min_requests": 5, "max_wait_s": 180,
                        "max_error_rate_increase": 0.05, "max_ttft_ratio": 50, "max_tpot_ratio": 50}


@dataclass(frozen=True)
class Answer:
    ended: float
    status: int | str
    body: str


class Load:
    """2 threads sending completions through the gateway one after another until stopped; every answer kept."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.answers: list[Answer] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(2)]

    def _client(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(120, connect=10)) as http:
            while not self.stopping.is_set():
                try:
                    response = http.post(f"{self.url}/v1/completions", headers={"Authorization": f"Bearer {self.key}"},
                                         json={"model": MODEL, "prompt": PROMPT, "max_tokens": 16})
                    self.answers.append(Answer(time.monotonic(), response.status_code, response.text[:300]))
                except httpx.HTTPError as exc:
                    self.answers.append(Answer(time.monotonic(), type(exc).__name__, str(exc)[:300]))
                time.sleep(0.1)

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in list(self.answers) if start <= a.ended <= end]


@contextmanager
def load(fleet: Fleet) -> Iterator[Load]:
    traffic = Load(fleet.status()["gateway"]["url"], fleet.key)
    for thread in traffic.threads:
        thread.start()
    try:
        yield traffic
    finally:
        traffic.stopping.set()
        for thread in traffic.threads:
            thread.join(timeout=150)


def _part(traffic: Load, start: float, name: str) -> int:
    """The answers since `start`, every one a 200 (the part's name in the failure)."""
    time.sleep(1)  # the requests under way as the part ended
    answers = traffic.between(start, time.monotonic())
    failed = [a for a in answers if a.status != 200]
    assert answers and not failed, f"{name}: {len(failed)} of {len(answers)} requests failed, e.g. {failed[:3]}"
    return len(answers)


def _rollout(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return fleet.cli("rollout", "--model", MODEL, *args, "--step-timeout-s", "300", "--format", "json",
                     timeout=ROLLOUT_TIMEOUT_S)


def _served(fleet: Fleet) -> list[tuple[str | None, bool, bool]]:
    """(version, canary, healthy) of each replica `status` lists."""
    return sorted((r["version"], r["canary"], r["healthy"]) for r in fleet.status()["replicas"])


def _weights(fleet: Fleet) -> dict:
    return read_traffic_file(fleet.home / "state" / "local" / "traffic.json").weights


def _canary_serving(db: Path, version: str) -> bool:
    """The rollout to `version` is recorded at its first step and a replica of `version` is ready."""
    with sqlite3.connect(db) as connection:
        rollout = connection.execute("SELECT step FROM rollouts WHERE status = 'running' AND to_version = ?",
                                     (version,)).fetchone()
        ready = connection.execute("SELECT count(*) FROM replicas WHERE version = ? AND status = 'ready'",
                                   (version,)).fetchone()[0]
    return rollout == (0,) and ready > 0


def test_rollout_promotes_rolls_back_and_resumes_under_load_without_a_failed_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with running_fleet(home, _versions, demo=False) as fleet, load(fleet) as traffic:
        until(lambda: traffic.answers, "a first answer through the gateway", SETTLE_S)
        seen: dict[str, str] = {}

        # a) v1 → v2: promoted
        start = time.monotonic()
        run = _rollout(fleet, "--to", "v2")
        assert run.returncode == 0, run.stderr[-3000:]
        report = json.loads(run.stdout)
        assert (report["from_version"], report["outcome"]) == ("v1", "promoted")
        assert [v["decision"] for v in report["verdicts"]] == ["pass", "pass"]
        assert _served(fleet) == [("v2", False, True)]
        assert _weights(fleet) == {MODEL: {"v2": 100.0}}
        seen["v1 → v2"] = f"{_part(traffic, start, 'v1 → v2')} requests in {time.monotonic() - start:.0f} s"

        # b) v2 → broken: rolled back at its first step
        start = time.monotonic()
        run = _rollout(fleet, "--to", "broken")
        assert run.returncode == 1, run.stderr[-3000:]
        report = json.loads(run.stdout)
        assert (report["from_version"], report["outcome"]) == ("v2", "rolled_back")
        assert [(v["step"], v["decision"]) for v in report["verdicts"]] == [(0, "fail")]
        assert "error rate" in report["reason"]
        assert _served(fleet) == [("v2", False, True)], "the canary of broken still runs after the rollback"
        assert _weights(fleet) == {MODEL: {"v2": 100.0}}
        seen["v2 → broken"] = f"{_part(traffic, start, 'v2 → broken')} requests in {time.monotonic() - start:.0f} s"

        # c) v2 → v3: killed at its first step, refused by rebalance, resumed by the same command
        start = time.monotonic()
        command = [sys.executable, "-m", "orchestrator", "rollout", "--model", MODEL, "--to", "v3",
                   "--step-timeout-s", "300", "--spec", str(fleet.spec)]
        crashed = subprocess.Popen(command, env=fleet.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            db = fleet.home / "state" / "local" / "state.db"
            until(lambda: _canary_serving(db, "v3") or crashed.poll() is not None, "the canary of v3 serving", SETTLE_S)
            assert crashed.poll() is None, f"the rollout ended by itself ({crashed.returncode}) before it was killed"
        finally:
            crashed.send_signal(signal.SIGKILL)
            crashed.wait()  # reaped: a dead holder of the environment's lock is one whose pid is gone
        refused = fleet.cli("rebalance", "--yes")
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert "rollout of tiny-llama from v2 to v3 is unfinished" in refused.stderr
        status = fleet.status()
        assert (status["rollout"]["to_version"], status["rollout"]["step"]) == ("v3", 1)
        run = _rollout(fleet, "--to", "v3")
        assert run.returncode == 0, run.stderr[-3000:]
        assert "resuming the rollout of tiny-llama to v3 at step 1" in run.stderr
        report = json.loads(run.stdout)
        assert (report["from_version"], report["outcome"]) == ("v2", "promoted")
        assert _served(fleet) == [("v3", False, True)]
        assert _weights(fleet) == {MODEL: {"v3": 100.0}}
        assert fleet.status()["rollout"] is None
        seen["v2 → v3, killed and resumed"] = f"{_part(traffic, start, 'v2 → v3')} requests in {time.monotonic() - start:.0f} s"
        with capsys.disabled():
            print(f"\nrequests answered (all 200) and wall time of each part: {seen}")
