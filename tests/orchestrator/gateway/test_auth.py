"""RequireApiKey: the key on every path but the open ones, over HTTP and WebSocket, on a small Starlette app."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from orchestrator.gateway.auth import GATEWAY_OPEN_PATHS, RequireApiKey

KEY = "gf-test-key"
PATHS = ("/health", "/metrics", "/v1/models", "/v1/chat/completions", "/invocations", "/tokenize", "/version",
         "/openapi.json", "/docs", "/no/such/path", "/health/", "//health", "/healthz")


async def ok(_request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("ok")
    await websocket.close()


def app(**middleware_kwargs) -> Starlette:
    routes = [Route(path, ok, methods=["GET", "POST"]) for path in PATHS] + [WebSocketRoute("/v1/realtime", echo)]
    application = Starlette(routes=routes)
    application.add_middleware(RequireApiKey, **middleware_kwargs)
    return application


@pytest.mark.parametrize("path", PATHS)
def test_every_path_but_health_and_metrics_needs_the_key_on_a_replica(monkeypatch, path):
    monkeypatch.setenv("VLLM_API_KEY", KEY)  # vLLM adds the middleware with no arguments: the key comes from here
    client = TestClient(app())
    open_ = path in ("/health", "/metrics")
    for method in ("GET", "POST"):
        keyless = client.request(method, path)
        assert keyless.status_code == (200 if open_ else 401), (method, path)
        if not open_:
            assert keyless.json() == {"error": {"message": keyless.json()["error"]["message"],
                                                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
            assert keyless.headers["www-authenticate"] == "Bearer"
        assert client.request(method, path, headers={"Authorization": f"Bearer {KEY}"}).status_code != 401


def test_on_the_gateway_only_health_is_open():
    client = TestClient(app(key=KEY, open_paths=GATEWAY_OPEN_PATHS))
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 401


@pytest.mark.parametrize("authorization", ["", KEY, f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}",
                                           "Bearer ", f"Token {KEY}"])
def test_anything_but_the_bearer_key_is_refused(authorization):
    client = TestClient(app(key=KEY))
    assert client.get("/v1/models", headers={"Authorization": authorization}).status_code == 401


def test_the_scheme_is_case_insensitive_as_rfc_7235_says():
    client = TestClient(app(key=KEY))
    assert client.get("/v1/models", headers={"Authorization": f"bearer {KEY}"}).status_code == 200


def test_a_websocket_without_the_key_is_closed_before_it_opens():
    client = TestClient(app(key=KEY))
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/v1/realtime"):
        pass
    assert refused.value.code == 1008
    with client.websocket_connect("/v1/realtime", headers={"Authorization": f"Bearer {KEY}"}) as ws:
        assert ws.receive_text() == "ok"


def test_no_key_at_all_is_an_error_not_an_open_door(monkeypatch):
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    with pytest.raises(ValueError, match="VLLM_API_KEY"):
        TestClient(app()).get("/health")
