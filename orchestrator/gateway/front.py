"""The gateway's front: the OpenAI API as clients expect it, in front of vllm-router.

vllm-router (0.1.17, multi-model mode) balances, retries and health-checks well, but as a
public endpoint it falls short: `GET /v1/models` answers `{"models": [...]}` instead of the
OpenAI list, `/v1/models/{id}` is a 405, a model no replica serves is sent to some other
model's replica, its own errors are plain text without `Retry-After`, it checks no client
key, and its worker API shares the serving port. This Starlette app (on uvicorn) fixes that
and nothing more:

- every path needs the key but `/health` (`auth.RequireApiKey`);
- `GET /v1/models` lists the models the router has a healthy worker for, each as its
  replica's own model card (`max_model_len` included); `GET /v1/models/{id}` is one card;
- `POST` chat completions, completions and embeddings go to the router, byte for byte,
  streamed both ways, once the body's `model` is known to be served: an unknown model is
  404 `model_not_found`; one the router served before, or any model while it has no healthy
  worker at all, is 503 with `Retry-After` (a replica is starting or restarting);
- every error is OpenAI-shaped: vLLM's pass unchanged; the router's plain text (429 queue
  full, 503 no worker) and FastAPI's `{"detail": ...}` are rewritten; 429 and 503 carry
  `Retry-After`;
- `GET /workers` (the router's worker list) is forwarded read-only; adding and removing
  workers is only possible on the router's own port, which listens on 127.0.0.1;
- a model served in several versions (a rollout) is split over them by the weights of the
  traffic file (lanes.py); a request a version fails (any status >= 400 or no answer, before
  a byte reached the client) is counted against that version and sent once more to the
  heaviest other version, so a bad canary costs its requests a retry, not an error.
  `GET /gateway/lanes` reports each version's workers, weight, requests and failures;
- a model that scales to zero (its hold time is in the traffic file) and has no healthy
  worker is woken, not refused: the request waits up to the hold time while the supervisor,
  which reads each model's `waiting` and `last_request_at` from `/gateway/lanes`, starts it;
  past the hold it is 503 `model_waking` with `Retry-After`.

What the router serves is read from its worker list every `REFRESH_S` in the background,
and once more before a request is refused, so a replica that just became ready is never
turned away. aiohttp is the upstream client: it adds about a third of what httpx does per
request (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from orchestrator.gateway.auth import GATEWAY_OPEN_PATHS, RequireApiKey
from orchestrator.gateway.lanes import (
    LANES_PATH, UNNAMED, lane_name, lane_weights, parse_lane, pick_lane, primary_lane, read_traffic_file,
)
from orchestrator.gateway.openai_errors import RETRY_AFTER_S, openai_error

logger = logging.getLogger(__name__)

REFRESH_S = 1.0
HOLD_POLL_S = 0.25
WAKE_RETRY_AFTER_S = 30  # past the hold a replica is still loading its weights
ADMIN_TIMEOUT_S = 5.0
MAX_BODY_BYTES = 32 * 1024 * 1024  # far above any context window's text; images travel as URLs or a few MB
ROUTED_POSTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                        "proxy-authorization", "proxy-authenticate", "host", "content-length"})


@dataclass
class Activity:
    """When a model was last asked for (epoch seconds) and how many requests wait for it to wake now."""

    last_request_at: float = 0.0
    waiting: int = 0


@dataclass
class Served:
    """What the router serves: each healthy worker's model card, the models served now and ever, and how many
    healthy workers each version of a model has (its lanes)."""

    cards: dict[str, dict] = field(default_factory=dict)  # worker URL -> its model card
    models: set[str] = field(default_factory=set)  # served by a healthy worker
    seen: set[str] = field(default_factory=set)
    workers: int = 0  # healthy ones
    lanes: dict[str, dict[str, int]] = field(default_factory=dict)  # model -> lane (version, "" unnamed) -> healthy workers

    def card(self, model: str) -> dict:
        bare = {"id": model, "object": "model", "owned_by": "vllm"}
        return next((card for card in self.cards.values() if card.get("id") == model), bare)


class GatewayFront:
    """The front app for one router (see module docstring); `app` is the ASGI application."""

    def __init__(self, router_url: str, key: str, traffic_file: Path | None = None,
                 rng: random.Random | None = None) -> None:
        self.router_url = router_url.rstrip("/")
        self.key = key
        self.served = Served()
        self.traffic_file = traffic_file
        self.weights: dict[str, dict[str, float]] = {}  # model -> version -> weight (traffic file)
        self.hold: dict[str, float] = {}  # model -> seconds a request waits for it to wake (traffic file)
        self.activity: dict[str, Activity] = {}  # model -> when it was last asked for, and requests held now
        self.tally: dict[tuple[str, str], list[int]] = {}  # (model, lane) -> [requests, failures]
        self._rng = rng or random.Random()
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self.app = Starlette(
            routes=[
                Route("/health", self.health, methods=["GET"]),
                Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/v1/models/{model:path}", self.retrieve_model, methods=["GET"]),
                Route("/workers", self.workers, methods=["GET"]),
                Route(LANES_PATH, self.list_lanes, methods=["GET"]),
                *(Route(path, self.forward, methods=["POST"]) for path in ROUTED_POSTS),
            ],
            middleware=[Middleware(RequireApiKey, key=key, open_paths=GATEWAY_OPEN_PATHS)],
            exception_handlers={HTTPException: self.http_error},
            lifespan=self.lifespan,
        )

    # --- life -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=ADMIN_TIMEOUT_S),
                                           connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
        task = asyncio.create_task(self._refresh_loop())
        try:
            yield
        finally:
            task.cancel()
            await self._http.close()

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                logger.warning("could not read the router's workers: %s", exc)
            await asyncio.sleep(REFRESH_S)

    async def refresh(self) -> None:
        """Read the router's worker list; fetch the model card of each healthy worker not known yet."""
        async with self._lock:
            if self.traffic_file is not None:
                traffic = read_traffic_file(self.traffic_file)
                self.weights, self.hold = traffic.weights, traffic.hold
            workers = (await self._get_json(f"{self.router_url}/workers")).get("workers", [])
            healthy = {w["url"]: parse_lane(w["model_id"]) for w in workers if w.get("is_healthy")}
            cards = {url: card for url, card in self.served.cards.items() if healthy.get(url, ("",))[0] == card.get("id")}
            lanes: dict[str, dict[str, int]] = {}
            for url, (model, version) in healthy.items():
                lanes.setdefault(model, {}).setdefault(version, 0)
                lanes[model][version] += 1
                if url not in cards and (card := await self._card(url, model)) is not None:
                    cards[url] = card
            self.served.cards = cards
            self.served.lanes = lanes
            self.served.models = set(lanes)
            self.served.seen |= {parse_lane(w["model_id"])[0] for w in workers}
            self.served.workers = len(healthy)

    async def _card(self, url: str, model: str) -> dict | None:
        """The worker's own OpenAI model card for `model` (vLLM's carries `max_model_len`); None if it will not say."""
        try:
            listed = await self._get_json(f"{url.rstrip('/')}/v1/models", {"authorization": f"Bearer {self.key}"})
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.warning("no model card from %s for %s: %s", url, model, exc)
            return None
        return next((card for card in listed.get("data", []) if card.get("id") == model), None)

    async def _get_json(self, url: str, headers: dict[str, str] | None = None) -> dict:
        async with self._session().get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_S)) as r:
            r.raise_for_status()
            return await r.json(content_type=None)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("the gateway front runs inside its app's lifespan")
        return self._http

    # --- routes -----------------------------------------------------------------------------

    async def health(self, _request: Request) -> Response:
        try:
            async with self._session().get(f"{self.router_url}/health",
                                           timeout=aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_S)) as r:
                return Response(await r.read(), status_code=r.status, media_type="text/plain")
        except (aiohttp.ClientError, TimeoutError):
            return Response("the router does not answer", status_code=503, media_type="text/plain")

    async def list_models(self, _request: Request) -> Response:
        """The models served now, and those asleep (scale to zero): a request wakes them."""
        models = sorted(self.served.models | self.hold.keys())
        return JSONResponse({"object": "list", "data": [self.served.card(m) for m in models]})

    async def retrieve_model(self, request: Request) -> Response:
        model = request.path_params["model"]
        if model in self.served.models or model in self.hold or await self._served_after_refresh(model):
            return JSONResponse(self.served.card(model))
        return self._missing(model)

    async def workers(self, _request: Request) -> Response:
        return await self._proxy("GET", "/workers", b"", {})

    async def forward(self, request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return openai_error(413, f"The request body is over {MAX_BODY_BYTES} bytes.", code="request_too_large")
        try:
            payload = json.loads(body)
        except ValueError:
            return openai_error(400, "The request body is not valid JSON.", code="invalid_json")
        model = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(model, str):
            return openai_error(400, "The request body must be a JSON object with a `model` (a string).",
                                code="invalid_request")
        activity = self.activity.setdefault(model, Activity()) if model in self.served.models or model in self.hold else None
        if activity is not None:
            activity.last_request_at = time.time()
        if model not in self.served.models and not await self._served_after_refresh(model):
            if activity is None or not await self._woken(model, activity):
                return self._missing(model)
        headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
        weights, lanes = self.weights.get(model), self.served.lanes.get(model, {})
        version = pick_lane(weights, lanes, self._rng)
        answer = await self._proxy("POST", request.url.path, self._for_lane(body, payload, model, version), headers)
        failed = answer.status_code >= 400
        self._count(model, version, failed)
        retry = primary_lane(weights, lanes, avoid=version) if failed and version is not None else None
        if retry is None:
            return answer
        logger.warning("%s@%s answered %d; sent again to %s@%s", model, version, answer.status_code, model, retry)
        answer = await self._proxy("POST", request.url.path, self._for_lane(body, payload, model, retry), headers)
        self._count(model, retry, answer.status_code >= 400)
        return answer

    def _for_lane(self, body: bytearray, payload: dict, model: str, version: str | None) -> bytes:  # None: no lane yet
        """The body as the router must see it to reach `version`'s workers (unchanged for an unversioned one)."""
        routed = lane_name(model, version)
        return bytes(body) if routed == model else json.dumps({**payload, "model": routed}, ensure_ascii=False).encode()

    def _count(self, model: str, version: str | None, failed: bool) -> None:
        tally = self.tally.setdefault((model, version or UNNAMED), [0, 0])
        tally[0] += 1
        tally[1] += failed

    async def _woken(self, model: str, activity: Activity) -> bool:
        """Hold the request while the model wakes (its supervisor sees `waiting` and starts it), up to its hold time."""
        activity.waiting += 1
        deadline = time.monotonic() + self.hold.get(model, 0.0)
        try:
            while model not in self.served.models and time.monotonic() < deadline:
                await asyncio.sleep(HOLD_POLL_S)
            return model in self.served.models
        finally:
            activity.waiting -= 1

    async def list_lanes(self, _request: Request) -> Response:
        """Each (model, version): healthy workers, weight, and requests and failures since the gateway started;
        each model: when it was last asked for and how many requests wait for it to wake."""
        keys = {(m, v) for m, lanes in self.served.lanes.items() for v in lanes} | set(self.tally)
        rows = [{"model": m, "version": v or None, "healthy_workers": self.served.lanes.get(m, {}).get(v, 0),
                 "weight": lane_weights(self.weights.get(m), self.served.lanes.get(m, {})).get(v),
                 "requests": self.tally.get((m, v), [0, 0])[0], "failures": self.tally.get((m, v), [0, 0])[1]}
                for m, v in sorted(keys)]
        models = {m: {"last_request_at": a.last_request_at, "waiting": a.waiting} for m, a in self.activity.items()}
        return JSONResponse({"lanes": rows, "weights": self.weights, "hold": self.hold, "models": models})

    async def http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return openai_error(status, f"{request.method} {request.url.path}: {getattr(exc, 'detail', exc)}",
                            code="not_found" if status == 404 else None)

    # --- helpers ----------------------------------------------------------------------------

    async def _served_after_refresh(self, model: str) -> bool:
        try:
            await self.refresh()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.warning("could not read the router's workers: %s", exc)
        return model in self.served.models

    def _missing(self, model: str) -> Response:
        if model in self.hold:
            return openai_error(503, f"`{model}` is starting after being idle; retry shortly.", code="model_waking",
                                headers={"retry-after": str(WAKE_RETRY_AFTER_S)})
        if model in self.served.seen or not self.served.workers:
            return openai_error(503, f"No replica of `{model}` can take the request now; retry shortly.",
                                code="no_replica")
        return openai_error(404, f"The model `{model}` does not exist. GET /v1/models lists the models served.",
                            code="model_not_found")

    async def _proxy(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Response:
        """Send to the router and stream its answer back; an error answer is read whole and made OpenAI-shaped."""
        try:
            upstream = await self._session().request(method, self.router_url + path, data=body, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("the router did not take %s %s: %s", method, path, exc)
            return openai_error(503, "The gateway's router does not answer; retry shortly.", code="router_unavailable")
        if upstream.status >= 400:
            try:
                return _as_openai_error(upstream.status, await upstream.read(), upstream.reason)
            finally:
                upstream.release()
        kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        if upstream.content_type != "text/event-stream":  # one JSON body: sent whole, without a stream's machinery
            try:
                return Response(await upstream.read(), status_code=upstream.status, headers=kept)
            finally:
                upstream.release()
        return StreamingResponse(_relay(upstream), status_code=upstream.status, headers=kept)


def _as_openai_error(status: int, raw: bytes, reason: str | None) -> Response:
    """An error body as it came when OpenAI-shaped (vLLM's are), else its message in that shape: the router's
    plain text ("No available workers"), FastAPI's `{"detail": ...}`, vLLM's flat `{"error": "Unauthorized"}`."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and "message" in body["error"]:
        headers = {"retry-after": str(RETRY_AFTER_S)} if status in (429, 503) else None
        return Response(raw, status_code=status, media_type="application/json", headers=headers)
    if isinstance(body, dict):
        message = body.get("detail") or body.get("error") or body.get("message")
    else:
        message = raw.decode(errors="replace").strip()
    code = {401: "invalid_api_key", 404: "not_found", 429: "rate_limit_exceeded", 503: "no_replica"}.get(status)
    return openai_error(status, str(message or reason or "error"), code=code)


async def _relay(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The router's body as it arrives; a client that goes away closes the upstream (the replica stops generating)."""
    finished = False
    try:
        async for chunk in upstream.content.iter_any():
            yield chunk
        finished = True
    finally:
        upstream.release() if finished else upstream.close()
