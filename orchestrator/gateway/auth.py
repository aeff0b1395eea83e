"""The API key on every path but a few open ones: one ASGI middleware for the gateway and every replica.

vLLM's own `VLLM_API_KEY` check guards only paths under `/v1`, `/v2`, `/inference` and
`/cohere`, so `/invocations`, `/tokenize`, `/pooling`, `/score`, `/version`, the OpenAPI
pages and the rest answer anyone. This middleware turns that around: a request needs
`Authorization: Bearer <key>` unless its path is on an allow-list, over HTTP and WebSocket
alike. Refusals are 401 in the OpenAI error shape (the SDKs raise `AuthenticationError`).

- Replicas load it through vLLM's extension point (`--middleware
  orchestrator.gateway.auth.RequireApiKey`, outermost, so it runs before vLLM's routes); the
  key is vLLM's `VLLM_API_KEY`. Open: `/health` (probes, the router's health checks) and
  `/metrics` (Prometheus counters, scraped by the autoscaler's adapter and the ledger).
- The gateway wraps its app in it with only `/health` open.

Keys are compared as SHA-256 digests with `secrets.compare_digest` (constant time).
"""

from __future__ import annotations

import hashlib
import os
import secrets

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.gateway.openai_errors import openai_error

KEY_ENV = "VLLM_API_KEY"
REPLICA_OPEN_PATHS = frozenset({"/health", "/metrics"})
GATEWAY_OPEN_PATHS = frozenset({"/health"})
POLICY_VIOLATION = 1008  # WebSocket close code for a refused handshake


class RequireApiKey:
    """Pure ASGI middleware; `key` defaults to `$VLLM_API_KEY` (vLLM builds it with no arguments)."""

    def __init__(self, app: ASGIApp, key: str | None = None, open_paths: frozenset[str] = REPLICA_OPEN_PATHS) -> None:
        key = key if key is not None else os.environ.get(KEY_ENV, "")
        if not key:
            raise ValueError(f"RequireApiKey needs a key: set {KEY_ENV} (an empty key would let everyone in)")
        self.app = app
        self._digest = hashlib.sha256(key.encode()).digest()
        self.open_paths = open_paths

    def authorized(self, scope: Scope) -> bool:
        path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
        if path in self.open_paths:
            return True
        scheme, _, token = (Headers(scope=scope).get("authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            hashlib.sha256(token.strip().encode()).digest(), self._digest)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.authorized(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        else:
            response = openai_error(401, "Missing or incorrect API key. Send it as `Authorization: Bearer <key>`.",
                                    code="invalid_api_key", headers={"www-authenticate": "Bearer"})
            await response(scope, receive, send)
