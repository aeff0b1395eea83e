"""The gateway's OpenAI front, in-process, driven by the official `openai` client, in front of a fake router.

`FakeRouter` answers what the front asks of vllm-router (`/health`, `/workers`, the routed
POSTs) and of a worker (`/v1/models`, the model card): no model, no routing. The real
router and real replicas behind the front are tested in test_openai_local_fleet.py.
"""

from __future__ import annotations

import json
import time

import openai
import pytest
from starlette.testclient import TestClient
from werkzeug.wrappers import Request, Response

from orchestrator.gateway.front import MAX_BODY_BYTES, REFRESH_S, GatewayFront
from tests.fakes.http_fake import FakeHttpApi, json_response

KEY = "gf-front-key"


class FakeRouter(FakeHttpApi):
    """vllm-router's worker list and routed POSTs, and the one worker's model card, from one fake server."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.workers: list[dict] = []
        self.bodies: list[bytes] = []
        self.failures: list[Response] = []  # answers to the next routed POSTs (not to the front's own reads)

    def serve_worker(self, model: str, healthy: bool = True) -> None:
        self.workers.append({"url": self.url, "model_id": model, "is_healthy": healthy})

    def handle(self, request: Request) -> Response:
        if request.path == "/health":
            return Response("ok", 200)
        if request.path == "/workers":
            return json_response({"workers": self.workers})
        if request.path == "/v1/models":
            if request.headers.get("Authorization") != f"Bearer {KEY}":
                return json_response({"error": "Unauthorized"}, 401)
            return json_response({"object": "list", "data": [
                {"id": w["model_id"], "object": "model", "owned_by": "vllm", "max_model_len": 2048, "created": 1}
                for w in self.workers]})
        self.bodies.append(request.get_data())
        if self.failures:
            return self.failures.pop(0)
        body = json.loads(request.get_data())
        if body.get("stream"):
            events = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                       "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]} for word in ("a", "b")]
            lines = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
            return Response(iter(lines), 200, content_type="text/event-stream")
        return json_response({"id": "c", "object": "chat.completion", "created": 1, "model": body["model"],
                              "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                           "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


@pytest.fixture
def router():
    fake = FakeRouter()
    with fake.serve() as url:
        fake.url = url
        yield fake


@pytest.fixture
def http(router):
    with TestClient(GatewayFront(router.url, KEY).app, base_url="http://gateway.test") as client:
        yield client


def sdk(http: TestClient, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://gateway.test/v1", api_key=key, http_client=http, max_retries=0)


def listed_within_a_refresh(client: openai.OpenAI, models: set[str]) -> list:
    """`models.list()` once it lists `models`: the front reads the worker list every REFRESH_S in the background."""
    deadline = time.monotonic() + 10 * REFRESH_S
    while True:
        listed = client.models.list().data
        if {m.id for m in listed} == models:
            return listed
        assert time.monotonic() < deadline, f"the front did not list {models} (lists {listed})"
        time.sleep(REFRESH_S / 10)


def ask(client: openai.OpenAI, model: str = "m"):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def test_models_are_an_openai_list_of_the_replicas_own_cards(router, http):
    router.serve_worker("m")
    router.serve_worker("gone", healthy=False)
    client = sdk(http)
    models = listed_within_a_refresh(client, {"m"})
    assert [(m.id, m.object, m.owned_by, m.max_model_len) for m in models] == [("m", "model", "vllm", 2048)]
    assert http.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()["object"] == "list"
    assert client.models.retrieve("m").max_model_len == 2048
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    assert missing.value.code == "model_not_found"


def test_a_request_goes_through_byte_for_byte_and_streams(router, http):
    router.serve_worker("m")  # after the front started: the first request finds it without waiting for a refresh
    client = sdk(http)
    assert ask(client).choices[0].message.content == "hi"
    chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content for c in chunks) == "ab"
    raw = b'{"model": "m",   "messages": [{"role": "user", "content": "hi"}], "n": 2}'
    http.post("/v1/chat/completions", content=raw, headers={"Authorization": f"Bearer {KEY}"})
    assert router.bodies[-1] == raw


def test_an_unknown_model_is_404_and_a_model_without_a_replica_is_503_with_retry_after(router, http):
    client = sdk(http)
    with pytest.raises(openai.InternalServerError) as nothing_served:
        ask(client)
    assert nothing_served.value.status_code == 503 and nothing_served.value.response.headers["retry-after"] == "5"
    router.serve_worker("m")
    assert ask(client).choices
    with pytest.raises(openai.NotFoundError) as unknown:
        ask(client, "no-such-model")
    assert unknown.value.code == "model_not_found"
    router.workers.clear()
    router.serve_worker("other")
    listed_within_a_refresh(client, {"other"})
    with pytest.raises(openai.InternalServerError) as restarting:  # served before: it is coming back
        ask(client)
    assert restarting.value.code == "no_replica" and "retry-after" in restarting.value.response.headers


@pytest.mark.parametrize(("status", "error"), [(429, openai.RateLimitError), (503, openai.InternalServerError)])
def test_the_routers_plain_text_errors_become_openai_errors(router, http, status, error):
    router.serve_worker("m")
    router.failures.append(Response("No available workers (all circuits open or unhealthy)", status))
    with pytest.raises(error) as refused:
        ask(sdk(http))
    assert refused.value.body["message"] == "No available workers (all circuits open or unhealthy)"
    assert refused.value.response.headers["retry-after"] == "5"


def test_json_errors_from_the_replicas_pass_unchanged(router, http):
    router.serve_worker("m")
    body = {"error": {"message": "This model's maximum context length is 2048 tokens", "type": "BadRequestError",
                      "param": None, "code": 400}}
    router.failures.append(json_response(body, 400))
    response = http.post("/v1/chat/completions", json={"model": "m", "messages": []},
                         headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 400 and response.json() == body


def test_a_wrong_key_is_an_authentication_error_and_nothing_reaches_the_router(router, http):
    router.serve_worker("m")
    with pytest.raises(openai.AuthenticationError) as refused:
        ask(sdk(http, key="wrong"))
    assert refused.value.code == "invalid_api_key" and router.bodies == []
    assert http.get("/health").status_code == 200  # the one open path


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{not json", 400, "invalid_json"),
    (b'["m"]', 400, "invalid_request"),
    (b'{"messages": []}', 400, "invalid_request"),
    (b'{"model": "m", "prompt": "' + b"x" * MAX_BODY_BYTES + b'"}', 413, "request_too_large"),
])
def test_bad_bodies_get_openai_errors(router, http, body, status, code):
    router.serve_worker("m")
    response = http.post("/v1/completions", content=body, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert router.bodies == []


def test_the_worker_api_is_read_only_through_the_front(router, http):
    router.serve_worker("m")
    auth = {"Authorization": f"Bearer {KEY}"}
    assert http.get("/workers", headers=auth).json()["workers"][0]["model_id"] == "m"
    assert http.post("/workers", headers=auth, json={"url": "http://evil", "model_id": "m"}).status_code == 405
    assert http.delete(f"/workers/{router.url}", headers=auth).status_code == 404
    for path in ("/add_worker", "/remove_worker", "/flush_cache", "/tokenize", "/invocations"):
        response = http.post(path, headers=auth, json={})
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert [r.path for r in router.requests if r.method != "GET"] == []


def test_a_router_that_does_not_answer_is_503(router):
    with TestClient(GatewayFront("http://127.0.0.1:9", KEY).app, base_url="http://gateway.test") as http:
        assert http.get("/health").status_code == 503
        response = http.post("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 405
        with pytest.raises(openai.InternalServerError):
            ask(sdk(http))


def test_health_is_the_routers(router, http):
    assert http.get("/health").text == "ok"


def test_errors_in_other_shapes_are_made_openai_shaped(router, http):
    router.serve_worker("m")
    router.failures.append(json_response({"detail": "Not Found"}, 404))  # FastAPI's, for a route the model lacks
    with pytest.raises(openai.NotFoundError) as missing:
        sdk(http).embeddings.create(model="m", input="x")
    assert missing.value.body == {"message": "Not Found", "type": "invalid_request_error", "param": None,
                                  "code": "not_found"}
