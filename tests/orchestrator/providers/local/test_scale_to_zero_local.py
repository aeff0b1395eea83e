"""Scale to zero on the real local fleet: an idle model's replica stops, the next request wakes it and is answered.

Real CPU vLLM replica of the tiny model behind the real gateway, driven by the real CLI. The
model has `min_replicas: 0` and `scale_to_zero: {idle_after_s: 10}`. After its replica has
been idle that long it must be stopped (process gone, `status` lists the model asleep, not as
drift), a `rebalance` must leave it asleep, and two requests sent to the sleeping model must
both be answered (the gateway holds them while a replica starts), after which it runs again.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from orchestrator.providers.local.processes import alive
from tests.conftest import ENVIRONMENTS, run_cli
from tests.orchestrator.providers.local.test_local_fleet import _recorded_pids

pytestmark = pytest.mark.slow

MODEL = "tiny-llama"
IDLE_AFTER_S = 10
SETTLE_TIMEOUT_S = 300  # waits for a state, never a claim about speed: this box has 2 shared cores


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run_cli(capsys, *argv, "--format", "json")
    assert code == 0, err[-3000:]
    return json.loads(out)


def _ask(url: str, key: str) -> tuple[int, float]:
    started = time.monotonic()
    answer = httpx.post(f"{url}/v1/completions", headers={"Authorization": f"Bearer {key}"}, timeout=SETTLE_TIMEOUT_S,
                        json={"model": MODEL, "prompt": "wake up", "max_tokens": 4})
    return answer.status_code, time.monotonic() - started


def test_an_idle_model_stops_and_the_next_request_wakes_it(capsys, gpufleet_home: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPUFLEET_API_KEY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = tmp_path / "local.yaml"
    doc = yaml.safe_load((ENVIRONMENTS / "local.yaml").read_text())
    doc["models"][0] |= {"source": "${GPUFLEET_HOME}/models/tiny-llama", "min_replicas": 0,
                         "scale_to_zero": {"idle_after_s": IDLE_AFTER_S, "hold_s": SETTLE_TIMEOUT_S}}
    spec.write_text(yaml.safe_dump(doc))
    try:
        _cli_json(capsys, "up", "--spec", str(spec), "--no-demo")
        status = _cli_json(capsys, "status", "--spec", str(spec))
        (replica,) = [r for r in status["replicas"] if r["healthy"]]
        url = status["gateway"]["url"]
        key = (gpufleet_home / "state" / "local" / "gateway-api-key").read_text().strip()
        assert _ask(url, key)[0] == 200

        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not (status := _cli_json(capsys, "status", "--spec", str(spec)))["asleep"] or alive(replica["pid"]):
            assert time.monotonic() < deadline, f"not asleep after {SETTLE_TIMEOUT_S} s: {status}"
            time.sleep(1)
        assert status["asleep"] == [{"model": MODEL, "pool": "local", "replicas": 1}]
        assert status["replicas"] == [] and status["drift"] == []

        moved = _cli_json(capsys, "rebalance", "--spec", str(spec), "--yes")  # an asleep model is there, not missing
        assert not moved["applied"], moved
        assert _cli_json(capsys, "status", "--spec", str(spec))["asleep"]

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _i: _ask(url, key), range(2)))
        assert [code for code, _ in answers] == [200, 200], answers
        woken = _cli_json(capsys, "status", "--spec", str(spec))
        assert woken["asleep"] == [] and len([r for r in woken["replicas"] if r["healthy"]]) == 1
        with capsys.disabled():
            print(f"\nwake: the requests that woke the model were answered after "
                  f"{', '.join(f'{s:.1f}' for _, s in answers)} s; the next one after {_ask(url, key)[1]:.2f} s")
    finally:
        pids = _recorded_pids(gpufleet_home) if (gpufleet_home / "state" / "local" / "state.db").exists() else []
        code, _out, err = run_cli(capsys, "down", "--spec", str(spec))
        deadline = time.monotonic() + 60
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert code == 0, err[-2000:]
