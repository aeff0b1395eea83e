"""The local fleet end to end: real CPU vLLM replicas of the tiny model behind the real vllm-router.

One fleet (two replicas and the gateway, started by `orchestrator up` in a fresh process)
serves every test in this module, in order; the last one stops it with `orchestrator down`.
All traffic stays on 127.0.0.1. Every process started is stopped at the end, and checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from orchestrator.gateway.metrics import GENERATION_TOKENS, PROMPT_TOKENS, scrape
from orchestrator.providers.local.processes import alive
from tests.conftest import ENVIRONMENTS

pytestmark = pytest.mark.slow

MODEL = "tiny-llama"
UP_TIMEOUT_S = 600
COMEBACK_TIMEOUT_S = 240
STREAMS = 16


@dataclass(frozen=True)
class Fleet:
    home: Path
    spec: Path
    env: dict[str, str]
    up: dict
    up_stderr: str

    @property
    def key(self) -> str:
        return (self.home / "state" / "local" / "gateway-api-key").read_text().strip()

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args, "--spec", str(self.spec)], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def status(self) -> dict:
        run = self.cli("status", "--format", "json")
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.status()['gateway']['url']}/v1", api_key=self.key, max_retries=0)


@contextmanager
def running_fleet(home: Path, edit: Callable[[dict], None] | None = None, demo: bool = True) -> Iterator[Fleet]:
    """The local environment (its spec changed by `edit`) up in `home` for the block, started by `orchestrator up`
    in a fresh process and stopped by `orchestrator down`, every recorded process checked gone."""
    doc = yaml.safe_load((ENVIRONMENTS / "local.yaml").read_text())
    doc["models"][0]["source"] = "${GPUFLEET_HOME}/models/tiny-llama"
    if edit:
        edit(doc)
    spec = home / "local.yaml"
    spec.write_text(yaml.safe_dump(doc))
    env = {k: v for k, v in os.environ.items() if k != "GPUFLEET_API_KEY"}
    env |= {"GPUFLEET_HOME": str(home), "GPUFLEET_ENVIRONMENTS_DIR": str(ENVIRONMENTS),
            "GPUFLEET_REPLICA_DRAIN_TIMEOUT_S": "30", "HF_HUB_OFFLINE": "1"}
    up = [sys.executable, "-m", "orchestrator", "up", "--spec", str(spec), "--format", "json"] + ([] if demo else ["--no-demo"])
    run = subprocess.run(up, env=env, capture_output=True, text=True, timeout=UP_TIMEOUT_S, check=False)
    fleet = Fleet(home, spec, env, json.loads(run.stdout) if run.returncode == 0 else {}, run.stderr)
    try:
        assert run.returncode == 0, run.stderr[-3000:]
        yield fleet
    finally:
        pids = _recorded_pids(home)
        fleet.cli("down", timeout=120)
        deadline = time.monotonic() + 30
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [p for p in pids if alive(p)], "processes left running"


def _two_replicas(doc: dict) -> None:
    doc["models"][0]["min_replicas"] = 2  # two replicas: one may die while the other serves


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("fleet-home"), _two_replicas) as fleet:
        yield fleet


def _recorded_pids(home: Path) -> list[int]:
    import sqlite3

    with sqlite3.connect(home / "state" / "local" / "state.db") as db:
        rows = db.execute("SELECT pid FROM replicas UNION SELECT pid FROM gateways UNION SELECT pid FROM local_supervisors")
        return [pid for (pid,) in rows if pid]


def test_up_answers_through_the_gateway_and_shows_the_new_key_once(fleet):
    answers = fleet.up["answers"]
    urls = {r["url"] for r in fleet.up["replicas"]}
    assert len(answers) == 4 and all(a["completion_tokens"] > 0 and a["cost_usd"] > 0 for a in answers)
    assert {a["replica_url"] for a in answers} <= urls and len({a["replica_url"] for a in answers}) == 2
    assert fleet.up_stderr.count("shown once") == 1 and fleet.key in fleet.up_stderr
    key_file = fleet.home / "state" / "local" / "gateway-api-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_status_from_a_fresh_process_follows_the_contract_without_the_key(fleet):
    run = fleet.cli("status", "--format", "json")
    status = json.loads(run.stdout)
    assert set(status) >= {"environment", "cost_per_hour", "gateway", "pools", "replicas", "drift"}
    assert status["environment"] == "local" and status["cost_per_hour"] == pytest.approx(0.05)
    assert status["gateway"]["healthy"] and status["gateway"]["url"].startswith("http://127.0.0.1:")
    assert status["pools"] == [{"pool": "local", "nodes": 1, "healthy_nodes": 1, "requested": None}]
    assert len(status["replicas"]) == 2 and all(r["healthy"] and alive(r["pid"]) for r in status["replicas"])
    assert status["drift"] == []
    table = fleet.cli("status")
    logs = "".join(p.read_text(errors="replace") for p in (fleet.home / "state" / "local" / "logs").glob("*.log"))
    for text in (run.stdout, run.stderr, table.stdout, logs):
        assert fleet.key not in text


def _token_totals(fleet: Fleet, status: dict) -> tuple[float, float]:
    with httpx.Client(timeout=5) as http:
        samples = [scrape(http, r["url"], MODEL) for r in status["replicas"]]
    return sum(s.get(PROMPT_TOKENS, 0) for s in samples), sum(s.get(GENERATION_TOKENS, 0) for s in samples)


def test_completions_and_chat_streamed_or_not_and_vllm_counts_the_same_tokens(fleet):
    status = fleet.status()
    client = fleet.openai()
    before = _token_totals(fleet, status)
    usages = [
        client.completions.create(model=MODEL, prompt="The cheapest GPU is", max_tokens=8).usage,
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=8).usage,
    ]
    stream = client.completions.create(model=MODEL, prompt="Stream me", max_tokens=8, stream=True,
                                       stream_options={"include_usage": True})
    chunks = list(stream)
    assert sum(1 for c in chunks if c.choices) >= 1
    usages.append(chunks[-1].usage)
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "stream"}], max_tokens=8,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    usages.append(chunks[-1].usage)
    expected = (sum(u.prompt_tokens for u in usages), sum(u.completion_tokens for u in usages))
    assert expected[1] == 4 * 8
    deadline = time.monotonic() + 10
    while True:  # vLLM updates its counters as each request finishes: allow a moment
        after = _token_totals(fleet, status)
        delta = (after[0] - before[0], after[1] - before[1])
        if delta == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert delta == expected


def test_bad_requests_get_openai_errors_and_the_gateway_stays_up(fleet):
    client = fleet.openai()
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="no-such-model", prompt="x", max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model=MODEL, prompt="tokens " * 3000, max_tokens=4)
    keyless = openai.OpenAI(base_url=client.base_url, api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        keyless.completions.create(model=MODEL, prompt="x", max_tokens=4)
    gateway = fleet.status()["gateway"]["url"]
    response = httpx.post(f"{gateway}/v1/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 4})
    assert response.status_code == 401 and "error" in response.json()
    assert httpx.get(f"{gateway}/health").status_code == 200
    assert client.completions.create(model=MODEL, prompt="still here", max_tokens=4).usage.completion_tokens == 4


async def _stream(http: httpx.AsyncClient, url: str, key: str, i: int, tokens: int, started: asyncio.Event,
                  attempts: list[int]) -> int:
    """One streaming completion's generated tokens (from its usage chunk); a stream cut by a dying replica
    is sent again, as a client with retries does."""
    body = {"model": MODEL, "prompt": f"request {i}", "max_tokens": tokens, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}
    for attempt in range(1, 4):
        attempts[i] = attempt
        received, done = 0, False
        try:
            async with http.stream("POST", f"{url}/v1/completions", json=body,
                                   headers={"Authorization": f"Bearer {key}"}) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line == "data: [DONE]":
                        done = True
                    elif line.startswith("data: "):
                        started.set()
                        if usage := json.loads(line[6:]).get("usage"):
                            received = usage["completion_tokens"]
        except httpx.TransportError:
            continue
        if done:
            return received
    raise AssertionError(f"request {i} failed after {attempts[i]} attempts")


def test_a_replica_killed_during_16_streams_fails_no_request_and_comes_back(fleet):
    status = fleet.status()
    victim = status["replicas"][0]
    url, key = status["gateway"]["url"], fleet.key

    async def run() -> tuple[list[int], list[int], list[int], list[int]]:
        attempts = [0] * STREAMS
        async with httpx.AsyncClient(timeout=120) as http:
            started = asyncio.Event()
            streams = [asyncio.create_task(_stream(http, url, key, i, 64, started, attempts)) for i in range(STREAMS)]
            await asyncio.wait_for(started.wait(), 60)
            os.kill(victim["pid"], signal.SIGKILL)
            tokens = await asyncio.gather(*streams)
            later = [0] * 8
            after = await asyncio.gather(*(_stream(http, url, key, i, 16, asyncio.Event(), later) for i in range(8)))
        return tokens, attempts, after, later

    tokens, attempts, after, later = asyncio.run(run())
    assert all(t == 64 for t in tokens) and all(t == 16 for t in after)
    assert later == [1] * 8  # once the dead replica is out of the gateway, nothing needs a retry
    assert sum(a > 1 for a in attempts) <= STREAMS // 2 + 1  # only streams cut on the killed replica were re-sent
    deadline = time.monotonic() + COMEBACK_TIMEOUT_S
    while time.monotonic() < deadline:
        replicas = fleet.status()["replicas"]
        back = [r for r in replicas if r["healthy"] and r["pid"] != victim["pid"] and r["restarts"] >= 1]
        if len(replicas) == 2 and all(r["healthy"] for r in replicas) and back:
            break
        time.sleep(2)
    else:
        pytest.fail(f"the killed replica did not come back: {replicas}")


def test_profile_measures_capacity_and_the_planner_prefers_it(fleet):
    run = fleet.cli("profile", "--model", MODEL, "--pool", "local", "--rates", "1,2", "--seconds-per-rate", "4",
                    "--format", "json", timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    profile = result["profile"]
    assert profile["gpu"] == "CPU" and profile["mix"] == {"input_tokens": 128.0, "output_tokens": 32.0}
    assert profile["rps"] in (0.0, 1.0, 2.0) and profile["tool"].startswith("vllm bench serve")
    assert [s["rate"] for s in result["steps"]][0] == 1.0 and Path(result["path"]).parent == fleet.home / "profiles"
    validate = fleet.cli("validate", "--format", "json")
    capacity = next(c for c in json.loads(validate.stdout)["inputs"]["capacity"] if c["model"] == MODEL)
    assert capacity["source"] == "measured" and capacity["rps_per_replica"] == pytest.approx(profile["rps"])


def test_down_lets_in_flight_streams_finish_then_stops_everything(fleet):
    status = fleet.status()
    url, key = status["gateway"]["url"], fleet.key
    pids = [r["pid"] for r in status["replicas"]]

    async def run() -> tuple[list[int], list[int]]:
        attempts = [0] * 4
        async with httpx.AsyncClient(timeout=120) as http:
            started = asyncio.Event()
            streams = [asyncio.create_task(_stream(http, url, key, i, 200, started, attempts)) for i in range(4)]
            await asyncio.wait_for(started.wait(), 60)
            down = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "orchestrator", "down", "--spec", str(fleet.spec), env=fleet.env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            tokens = await asyncio.gather(*streams)
            assert await asyncio.wait_for(down.wait(), 120) == 0
        return tokens, attempts

    tokens, attempts = asyncio.run(run())
    assert tokens == [200] * 4 and attempts == [1] * 4  # drained, not cut
    after = fleet.status()
    assert after["replicas"] == [] and not after["gateway"]["healthy"] and after["cost_per_hour"] == 0
    assert not any(alive(p) for p in pids)
