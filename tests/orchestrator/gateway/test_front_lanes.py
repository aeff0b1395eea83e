"""The gateway front's per-version lanes, in-process, in front of a fake router: the split by the traffic file's
weights, the body's `model` rewritten per lane, a failed request sent once more to the other lane and counted
in `GET /gateway/lanes`. The fake answers as each lane's replicas would; no model, no routing of its own."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from werkzeug.wrappers import Request, Response

from orchestrator.gateway.front import REFRESH_S, GatewayFront
from orchestrator.gateway.lanes import Traffic
from tests.fakes.http_fake import FakeHttpApi, json_response

KEY = "gf-lanes-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
REQUESTS = 60


class LaneRouter(FakeHttpApi):
    """vllm-router in multi-model mode: one healthy worker per lane (`m@v1`...), each answering with the status
    its lane is given (200: a completion whose text names the lane; else a vLLM-shaped error)."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.lanes: dict[str, int] = {}  # router model id -> the status its worker answers
        self.unhealthy: set[str] = set()
        self.routed: list[dict] = []  # the bodies of the routed POSTs, in order

    def handle(self, request: Request) -> Response:
        if request.path == "/health":
            return Response("ok", 200)
        if request.path == "/workers":
            return json_response({"workers": [{"url": f"{self.url}/{lane}", "model_id": lane,
                                               "is_healthy": lane not in self.unhealthy} for lane in self.lanes]})
        if request.path.endswith("/v1/models"):  # a worker's cards: it answers to the model and to its lane
            names = {name for lane in self.lanes for name in (lane, lane.partition("@")[0])}
            return json_response({"object": "list", "data": [{"id": n, "object": "model", "max_model_len": 64}
                                                             for n in sorted(names)]})
        body = json.loads(request.get_data())
        self.routed.append(body)
        status = self.lanes[body["model"]]
        if status != 200:
            return json_response({"error": {"message": f"{body['model']} refused it", "type": "BadRequestError",
                                             "code": status}}, status)
        return json_response({"id": "c", "object": "text_completion", "created": 1, "model": body["model"],
                              "choices": [{"index": 0, "text": body["model"], "finish_reason": "length"}],
                              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


@pytest.fixture
def router():
    fake = LaneRouter()
    with fake.serve() as url:
        fake.url = url
        yield fake


@pytest.fixture
def traffic_file(tmp_path: Path) -> Path:
    return tmp_path / "traffic.json"


@pytest.fixture
def http(router: LaneRouter, traffic_file: Path):
    front = GatewayFront(router.url, KEY, traffic_file=traffic_file, rng=random.Random(5))
    with TestClient(front.app, base_url="http://gateway.test") as client:
        yield client


def serve(router: LaneRouter, http: TestClient, traffic_file: Path, lanes: dict[str, int],
          weights: dict[str, float] | None = None) -> None:
    """The router serves `lanes` and the traffic file holds `weights` for `m`; until the front has read both."""
    router.lanes = lanes
    traffic_file.write_text(Traffic({"m": weights} if weights else {}).text())
    healthy = {lane.partition("@")[2] or None for lane in lanes if lane not in router.unhealthy}
    deadline = time.monotonic() + 10 * REFRESH_S
    while True:
        seen = http.get("/gateway/lanes", headers=AUTH).json()
        if seen["weights"].get("m") == weights and {r["version"] for r in seen["lanes"] if r["healthy_workers"]} == healthy:
            return
        assert time.monotonic() < deadline, f"the front did not take the lanes {lanes} and weights {weights}: {seen}"
        time.sleep(REFRESH_S / 10)


def ask(http: TestClient, n: int = REQUESTS) -> list:
    return [http.post("/v1/completions", headers=AUTH, json={"model": "m", "prompt": f"p{i} ü", "max_tokens": 3})
            for i in range(n)]


def counted(http: TestClient) -> dict[str | None, tuple[int, int]]:
    """Version -> (requests, failures), as `GET /gateway/lanes` reports them."""
    return {r["version"]: (r["requests"], r["failures"]) for r in http.get("/gateway/lanes", headers=AUTH).json()["lanes"]
            if r["model"] == "m"}


def test_requests_split_by_weight_each_body_rewritten_to_its_lane(router, http, traffic_file) -> None:
    serve(router, http, traffic_file, {"m@v1": 200, "m@v2": 200}, {"v1": 70, "v2": 30})
    answers = ask(http)
    assert all(a.status_code == 200 for a in answers)
    lanes = Counter(b["model"] for b in router.routed)
    assert set(lanes) == {"m@v1", "m@v2"} and 8 <= lanes["m@v2"] <= 30, lanes
    assert [a.json()["choices"][0]["text"] for a in answers] == [b["model"] for b in router.routed]
    assert [{**b, "model": "m"} for b in router.routed] == [
        {"model": "m", "prompt": f"p{i} ü", "max_tokens": 3} for i in range(REQUESTS)]  # only the model changes
    assert counted(http) == {"v1": (lanes["m@v1"], 0), "v2": (lanes["m@v2"], 0)}
    rows = http.get("/gateway/lanes", headers=AUTH).json()["lanes"]
    assert [(r["version"], r["weight"], r["healthy_workers"]) for r in rows] == [("v1", 70, 1), ("v2", 30, 1)]


def test_weights_that_change_move_the_traffic(router, http, traffic_file) -> None:
    serve(router, http, traffic_file, {"m@v1": 200, "m@v2": 200}, {"v1": 0, "v2": 100})
    ask(http, 10)
    serve(router, http, traffic_file, {"m@v1": 200, "m@v2": 200}, {"v1": 100})
    ask(http, 10)
    assert [b["model"] for b in router.routed] == ["m@v2"] * 10 + ["m@v1"] * 10


@pytest.mark.parametrize("status", [400, 500, 503])
def test_a_request_the_canary_fails_is_answered_by_the_other_lane_and_counted(router, http, traffic_file, status) -> None:
    serve(router, http, traffic_file, {"m@v1": 200, "m@v2": status}, {"v1": 50, "v2": 50})
    answers = ask(http)
    assert [(a.status_code, a.json()["choices"][0]["text"]) for a in answers] == [(200, "m@v1")] * REQUESTS
    failed = sum(b["model"] == "m@v2" for b in router.routed)
    assert 10 <= failed <= 50 and len(router.routed) == REQUESTS + failed  # each sent once more, no more
    assert counted(http) == {"v1": (REQUESTS, 0), "v2": (failed, failed)}


def test_the_old_lane_failing_is_retried_on_the_new_one(router, http, traffic_file) -> None:
    serve(router, http, traffic_file, {"m@v1": 500, "m@v2": 200}, {"v1": 90, "v2": 10})
    assert {a.json()["choices"][0]["text"] for a in ask(http, 20)} == {"m@v2"}
    assert counted(http)["v2"] == (20, 0)


def test_when_both_lanes_fail_the_client_sees_the_retrys_error_once(router, http, traffic_file) -> None:
    serve(router, http, traffic_file, {"m@v1": 500, "m@v2": 400}, {"v1": 50, "v2": 50})
    answers = ask(http, 20)
    assert len(router.routed) == 40
    assert [a.status_code for a in answers] == [400 if b["model"] == "m@v2" else 500 for b in router.routed[1::2]]
    requests = counted(http)
    assert requests["v1"][0] + requests["v2"][0] == 40 and all(r == f for r, f in requests.values())


@pytest.mark.parametrize("lanes", [{"m": 500}, {"m@v1": 500}, {"m@v1": 500, "m@v2": 200}])
def test_a_model_served_by_one_lane_is_never_retried(router, http, traffic_file, lanes) -> None:
    router.unhealthy = {"m@v2"}  # a second lane without a healthy worker is no lane to retry on
    serve(router, http, traffic_file, lanes, {"v1": 50, "v2": 50} if len(lanes) > 1 else None)
    answers = ask(http, 10)
    assert [a.status_code for a in answers] == [500] * 10 and len(router.routed) == 10
    version = next(iter(lanes)).partition("@")[2] or None
    assert counted(http)[version] == (10, 10)


def test_replicas_that_predate_versions_keep_their_share_and_take_the_canarys_failures(router, http, traffic_file) -> None:
    serve(router, http, traffic_file, {"m": 200, "m@v2": 500}, {"v1": 50, "v2": 50})
    answers = ask(http, 20)
    assert [a.status_code for a in answers] == [200] * 20
    assert sum(b["model"] == "m" for b in router.routed) >= 20
