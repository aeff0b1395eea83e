"""Scale to zero on the real local fleet: an idle model's replica stops, the next request wakes it and is answered.

Real CPU vLLM replica of the tiny model behind the real gateway, driven by the real CLI
(`running_fleet`). The model has `min_replicas: 0` and `scale_to_zero: {idle_after_s: 10}`.
After its replica has been idle that long it must be stopped (process gone, `status` lists
the model asleep, not as drift), a `rebalance` must leave it asleep, and two requests sent to
the sleeping model must both be answered (the gateway holds them while a replica starts),
after which it runs again.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from orchestrator.providers.local.processes import alive
from tests.orchestrator.providers.local.test_local_fleet import running_fleet

pytestmark = pytest.mark.slow

MODEL = "tiny-llama"
IDLE_AFTER_S = 10
SETTLE_TIMEOUT_S = 300  # waits for a state, never a claim about speed: this box has 2 shared cores


def _scales_to_zero(doc: dict) -> None:
    doc["models"][0] |= {"min_replicas": 0, "scale_to_zero": {"idle_after_s": IDLE_AFTER_S, "hold_s": SETTLE_TIMEOUT_S}}


def _ask(url: str, key: str) -> tuple[int, float]:
    started = time.monotonic()
    answer = httpx.post(f"{url}/v1/completions", headers={"Authorization": f"Bearer {key}"}, timeout=SETTLE_TIMEOUT_S,
                        json={"model": MODEL, "prompt": "wake up", "max_tokens": 4})
    return answer.status_code, time.monotonic() - started


def test_an_idle_model_stops_and_the_next_request_wakes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with running_fleet(home, _scales_to_zero, demo=False) as fleet:
        status = fleet.status()
        (replica,) = [r for r in status["replicas"] if r["healthy"]]
        url = status["gateway"]["url"]
        assert _ask(url, fleet.key)[0] == 200

        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not (status := fleet.status())["asleep"] or alive(replica["pid"]):
            assert time.monotonic() < deadline, f"not asleep after {SETTLE_TIMEOUT_S} s: {status}"
            time.sleep(1)
        assert status["asleep"] == [{"model": MODEL, "pool": "local", "replicas": 1}]
        assert status["replicas"] == [] and status["drift"] == []

        moved = fleet.cli("rebalance", "--yes", "--format", "json")  # an asleep model is there, not missing
        assert moved.returncode == 0, moved.stderr[-3000:]
        assert not json.loads(moved.stdout)["applied"], moved.stdout
        assert fleet.status()["asleep"]

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _i: _ask(url, fleet.key), range(2)))
        assert [code for code, _ in answers] == [200, 200], answers
        woken = fleet.status()
        assert woken["asleep"] == [] and len([r for r in woken["replicas"] if r["healthy"]]) == 1
        with capsys.disabled():
            print(f"\nwake: the requests that woke the model were answered after "
                  f"{', '.join(f'{s:.1f}' for _, s in answers)} s; the next one after {_ask(url, fleet.key)[1]:.2f} s")
