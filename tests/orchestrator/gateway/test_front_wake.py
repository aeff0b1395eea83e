"""The gateway front holds a request for a model that scales to zero while it wakes, in front of a fake router.

The traffic file gives the model's hold time; the fake router has no worker for it until the
test adds one (as the supervisor does once a replica is ready). What the supervisor reads to
wake it, `waiting` and `last_request_at` in `GET /gateway/lanes`, is checked while the
request is held.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from orchestrator.gateway.front import GatewayFront
from orchestrator.gateway.lanes import Traffic
from tests.orchestrator.gateway.test_front import KEY, FakeRouter, router  # noqa: F401 (the fixture)

AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def front(router: FakeRouter, tmp_path: Path, hold: dict[str, float]) -> TestClient:
    traffic = tmp_path / "traffic.json"
    traffic.write_text(Traffic({}, hold).text())
    return TestClient(GatewayFront(router.url, KEY, traffic_file=traffic).app, base_url="http://gateway.test")


def lanes(http: TestClient) -> dict:
    return http.get("/gateway/lanes", headers=AUTH).json()


def test_a_request_for_a_sleeping_model_waits_while_it_wakes_and_is_answered(router, tmp_path):
    router.serve_worker("other")  # the gateway serves something: without the hold this would be a 404
    with front(router, tmp_path, {"m": 30.0}) as http:
        answers: list = []
        started = time.monotonic()
        asking = threading.Thread(target=lambda: answers.append(http.post("/v1/chat/completions", json=BODY, headers=AUTH)))
        asking.start()
        deadline = time.monotonic() + 10
        while lanes(http)["models"].get("m", {}).get("waiting") != 1:  # what the supervisor reads to wake it
            assert time.monotonic() < deadline, lanes(http)
            time.sleep(0.05)
        activity = lanes(http)["models"]["m"]
        assert activity["last_request_at"] == pytest.approx(time.time(), abs=10)
        assert asking.is_alive() and not answers  # held, not refused
        router.serve_worker("m")  # a replica is ready and in the router
        asking.join(timeout=20)
        assert answers and answers[0].status_code == 200, answers and answers[0].text
        assert time.monotonic() - started >= 0.1
        assert lanes(http)["models"]["m"]["waiting"] == 0
        assert router.bodies, "the held request went on to the router once the model was served"


def test_a_sleeping_model_is_listed_and_retrievable(router, tmp_path):
    with front(router, tmp_path, {"m": 30.0}) as http:
        deadline = time.monotonic() + 10  # the front reads its traffic file within a refresh
        while not (listed := http.get("/v1/models", headers=AUTH).json())["data"]:
            assert time.monotonic() < deadline, listed
            time.sleep(0.05)
        card = http.get("/v1/models/m", headers=AUTH)
    assert [m["id"] for m in listed["data"]] == ["m"]
    assert card.status_code == 200 and card.json()["id"] == "m"


def test_past_the_hold_the_request_is_503_model_waking_with_retry_after(router, tmp_path):
    with front(router, tmp_path, {"m": 0.5}) as http:
        started = time.monotonic()
        answer = http.post("/v1/chat/completions", json=BODY, headers=AUTH)
        waited = time.monotonic() - started
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "model_waking"
    assert answer.headers["retry-after"] == "30"
    assert waited >= 0.5
    assert not router.bodies


def test_a_model_without_a_hold_is_refused_at_once_as_before(router, tmp_path):
    router.serve_worker("other")
    with front(router, tmp_path, {}) as http:
        started = time.monotonic()
        answer = http.post("/v1/chat/completions", json=BODY, headers=AUTH)
        assert time.monotonic() - started < 5
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "model_not_found"
