"""`orchestrator rebalance` on the local environment under load: 1 → 2 → 1 replicas, no request lost.

Real CPU vLLM replicas of the tiny model behind the real vllm-router, moved by the real CLI
(`orchestrator up`, then `rebalance --spec … --yes` twice, then `down`), while 16 client
threads keep streaming chat completions through the gateway with the gateway's key, without
retries. Demand in a temporary copy of environments/local.yaml is raised above what one
replica sustains (the plan's own capacity figure), then lowered back: the churn-aware
planner must add the second replica, then remove it (stopping a replica costs no churn).
All traffic stays on 127.0.0.1; every process started is stopped at the end, and checked.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from orchestrator.gateway.metrics import REQUESTS_OK, scrape
from orchestrator.providers.local.processes import alive
from tests.conftest import ENVIRONMENTS, run_cli
from tests.orchestrator.providers.local.test_local_fleet import _recorded_pids

pytestmark = pytest.mark.slow

MODEL = "tiny-llama"
STREAMS = 16
MAX_TOKENS = 8
SETTLE_TIMEOUT_S = 300  # waits for a state, never a claim about speed: this box has 2 shared cores


@dataclass(frozen=True)
class Request:
    client: int
    started: float
    ended: float
    error: str | None
    tokens: int


class Traffic:
    """`STREAMS` threads, each sending streaming chat completions through the gateway one after another until stopped."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.done: list[Request] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(STREAMS)]

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=180)

    def ok_between(self, start: float, end: float) -> int:
        return sum(1 for r in list(self.done) if r.error is None and start <= r.ended <= end)

    def wait_for_every_client(self, after: float = 0.0) -> None:
        """Until each client has had an answer that ended after `after` (monotonic time)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while len({r.client for r in list(self.done) if r.error is None and r.ended > after}) < STREAMS:
            assert time.monotonic() < deadline, f"not every client got an answer: {self.failures()[:3]}"
            time.sleep(0.5)

    def failures(self) -> list[Request]:
        return [r for r in list(self.done) if r.error is not None]

    def _client(self, i: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(timeout=httpx.Timeout(120, connect=10)) as http:
            n = 0
            while not self.stopping.is_set():
                body = {"model": MODEL, "messages": [{"role": "user", "content": f"stream {i}.{n}"}],
                        "max_tokens": MAX_TOKENS, "stream": True, "stream_options": {"include_usage": True}}
                started, error, tokens, finished = time.monotonic(), None, 0, False
                try:
                    with http.stream("POST", f"{self.url}/v1/chat/completions", json=body, headers=headers) as response:
                        if response.status_code != 200:
                            error = f"HTTP {response.status_code}: {response.read()[:300]!r}"
                        else:
                            for line in response.iter_lines():
                                if line == "data: [DONE]":
                                    finished = True
                                elif line.startswith("data: "):
                                    chunk = json.loads(line[6:])
                                    if "error" in chunk:
                                        error = f"error in stream: {chunk['error']}"
                                    elif chunk.get("usage"):
                                        tokens = chunk["usage"]["completion_tokens"]
                except (httpx.HTTPError, json.JSONDecodeError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                if error is None and not (finished and tokens > 0):
                    error = f"stream ended early ([DONE] {finished}, {tokens} tokens)"
                self.done.append(Request(i, started, time.monotonic(), error, tokens))
                n += 1


def _running(pid: int) -> bool:
    """Whether `pid` still runs; the supervisor `up` started from this process is our child: reap it once it exits."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not ours (or already reaped)
        pass
    return alive(pid)


def _write_spec(path: Path, rps: float) -> None:
    doc = yaml.safe_load((ENVIRONMENTS / "local.yaml").read_text())
    doc["models"][0]["source"] = "${GPUFLEET_HOME}/models/tiny-llama"
    doc["demand"][0]["requests_per_second"] = rps
    path.write_text(yaml.safe_dump(doc))


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run_cli(capsys, *argv, "--format", "json")
    assert code == 0, err[-3000:]
    return json.loads(out)


def _healthy(status: dict) -> list[dict]:
    return [r for r in status["replicas"] if r["model"] == MODEL and r["healthy"]]


def test_rebalance_1_to_2_and_back_under_16_streams_fails_no_request(capsys, gpufleet_home: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPUFLEET_API_KEY", raising=False)  # the key the fleet makes, kept in its state dir
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = tmp_path / "local.yaml"
    _write_spec(spec, 0.5)
    one = _cli_json(capsys, "plan", "--spec", str(spec))
    per_replica = next(c["rps_per_replica"] for c in one["capacity"] if c["model"] == MODEL)
    assert [r["count"] for r in one["replicas"]] == [1]

    try:
        _cli_json(capsys, "up", "--spec", str(spec), "--no-demo")
        status = _cli_json(capsys, "status", "--spec", str(spec))
        assert len(_healthy(status)) == 1
        first = _healthy(status)[0]
        key = (gpufleet_home / "state" / "local" / "gateway-api-key").read_text().strip()

        with Traffic(status["gateway"]["url"], key) as traffic:
            traffic.wait_for_every_client()  # every client is under way before anything moves

            _write_spec(spec, 1.5 * per_replica)  # more than one replica sustains, well within two
            grow_started = time.monotonic()
            grown = _cli_json(capsys, "rebalance", "--spec", str(spec), "--yes")
            grow_ended = time.monotonic()
            assert grown["applied"] and [(r["before"], r["after"]) for r in grown["replicas"]] == [(1, 2)]
            status = _cli_json(capsys, "status", "--spec", str(spec))
            assert len(_healthy(status)) == 2
            second = next(r for r in _healthy(status) if r["url"] != first["url"])
            with httpx.Client(timeout=5) as http:  # the gateway sends the new replica its share
                deadline = time.monotonic() + SETTLE_TIMEOUT_S
                while scrape(http, second["url"], MODEL).get(REQUESTS_OK, 0.0) < 1:
                    assert time.monotonic() < deadline, "the new replica got no request through the gateway"
                    time.sleep(0.5)

            _write_spec(spec, 0.5)
            shrink_started = time.monotonic()
            shrunk = _cli_json(capsys, "rebalance", "--spec", str(spec), "--yes")
            assert shrunk["applied"] and [(r["before"], r["after"]) for r in shrunk["replicas"]] == [(2, 1)]
            staying = {r["url"] for r in _healthy(_cli_json(capsys, "status", "--spec", str(spec)))}
            leaving = [r for r in status["replicas"] if r["url"] not in staying]
            assert len(leaving) == 1
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while alive(leaving[0]["pid"]):  # the move ends when the drained replica has exited
                assert time.monotonic() < deadline, f"replica {leaving[0]} still running"
                time.sleep(0.5)
            shrink_ended = time.monotonic()
            after = _cli_json(capsys, "status", "--spec", str(spec))
            assert len(after["replicas"]) == 1 and len(_healthy(after)) == 1
            traffic.wait_for_every_client(after=shrink_ended)  # and the one left serves every client

        failures = traffic.failures()
        assert not failures, (f"{len(failures)} of {len(traffic.done)} requests failed, e.g. {failures[:3]}; "
                              f"1→2 ran {grow_started:.1f}–{grow_ended:.1f}, 2→1 {shrink_started:.1f}–{shrink_ended:.1f}")
        assert traffic.ok_between(grow_started, grow_ended) > 0
        assert traffic.ok_between(shrink_started, shrink_ended) > 0
        with capsys.disabled():
            print(f"\n{len(traffic.done)} requests, none failed; answered during 1→2: "
                  f"{traffic.ok_between(grow_started, grow_ended)} in {grow_ended - grow_started:.0f} s, during 2→1: "
                  f"{traffic.ok_between(shrink_started, shrink_ended)} in {shrink_ended - shrink_started:.0f} s")
    finally:
        pids = _recorded_pids(gpufleet_home) if (gpufleet_home / "state" / "local" / "state.db").exists() else []
        code, _out, err = run_cli(capsys, "down", "--spec", str(spec))
        deadline = time.monotonic() + 60
        while any(_running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert code == 0, err[-2000:]
        assert not [p for p in pids if _running(p)], "processes left running"
