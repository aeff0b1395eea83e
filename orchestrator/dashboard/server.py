"""`orchestrator dashboard`: the spend page, Prometheus metrics, and token collection on a schedule.

A standard-library HTTP server (the page is one document with no assets to serve):

    GET /         the spend page (reloads itself)
    GET /metrics  Prometheus text (see `metrics.py`)
    GET /healthz  200 "ok"

Bound to loopback it is open, like any local developer tool, to requests whose Host header
names loopback (`localhost`, `127.0.0.1`, `[::1]`): a web page that rebinds its own DNS name to
127.0.0.1 (DNS rebinding) sends its own name and gets 403. Bound elsewhere every request needs the token, as `?token=` or `Authorization: Bearer` (Prometheus' `authorization`
setting). While it runs, a thread scrapes the replicas' token counters into the ledger
every `spend_scrape_interval_s`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orchestrator.dashboard.metrics import dashboard_registry
from orchestrator.dashboard.page import CSP, render_page
from orchestrator.dashboard.serving import ServingMonitor
from orchestrator.ledger import Window, collect_tokens, spend_summary
from orchestrator.settings import Settings
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)

TOKEN_BYTES = 24


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(header: str | None) -> str | None:
    """The host of a Host header without its port ('[::1]:8765' -> '::1'); None when absent or malformed."""
    if not header:
        return None
    try:
        return urlsplit(f"//{header.strip()}").hostname
    except ValueError:
        return None


def dashboard_token(settings: Settings, host: str) -> tuple[str | None, bool]:
    """(the token requests must carry, whether it was generated now); no token on loopback."""
    if is_loopback(host):
        return None, False
    if settings.dashboard_token is not None and settings.dashboard_token.get_secret_value():
        return settings.dashboard_token.get_secret_value(), False
    return secrets.token_urlsafe(TOKEN_BYTES), True


@dataclass
class Dashboard:
    """What the server answers, built once: the environment's ledger, its window and its metrics."""

    store: StateStore
    environment: str
    window_days: float
    refresh_s: int
    tolerance: float
    token: str | None = None
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    serving: ServingMonitor | None = None  # the serving part of the page and its plan metrics; None: spend only

    def __post_init__(self) -> None:
        self.registry = dashboard_registry(self.store, self.environment, self.serving.latest_placement if self.serving else None)

    def page(self) -> str:
        now = self.now()
        summary = spend_summary(self.store, self.environment, Window.last_days(self.window_days, now), now, self.tolerance)
        return render_page(summary, self.refresh_s, self.serving.summary(now) if self.serving else None)

    def metrics(self) -> bytes:
        return generate_latest(self.registry)

    def allows(self, path: str, authorization: str | None) -> bool:
        if self.token is None:
            return True
        offered = parse_qs(urlsplit(path).query).get("token", [""])[0]
        if authorization and authorization.startswith("Bearer "):
            offered = authorization.removeprefix("Bearer ").strip()
        return hmac.compare_digest(offered.encode(), self.token.encode())


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "gpufleet-dashboard"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        dashboard = self.server.dashboard
        if not self.server.serves_host(self.headers.get("Host")):
            self._send(HTTPStatus.FORBIDDEN, b"Host not allowed: open the dashboard as http://127.0.0.1:PORT/ or "
                       b"http://localhost:PORT/\n", "text/plain")
            return
        if not dashboard.allows(self.path, self.headers.get("Authorization")):
            self._send(HTTPStatus.UNAUTHORIZED, b"token required: add ?token=... or Authorization: Bearer ...\n", "text/plain")
            return
        route = urlsplit(self.path).path
        try:
            if route == "/":
                self._send(HTTPStatus.OK, dashboard.page().encode(), "text/html; charset=utf-8")
            elif route == "/metrics":
                self._send(HTTPStatus.OK, dashboard.metrics(), CONTENT_TYPE_LATEST)
            elif route == "/healthz":
                self._send(HTTPStatus.OK, b"ok\n", "text/plain")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        except Exception:  # the edge of a request: log it, answer 500, keep serving
            logger.exception("dashboard: %s failed", route)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error (see the dashboard's log)\n", "text/plain")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the token may be in the URL
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's signature)
        logger.debug("dashboard: " + format, *args)


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        super().__init__(address, _Handler)

    def serves_host(self, header: str | None) -> bool:
        """On loopback, only a loopback Host (the DNS-rebinding defence); elsewhere the token guards every request."""
        bound = str(self.server_address[0])
        if not is_loopback(bound):
            return True
        return host_name(header) in LOOPBACK_NAMES | {bound}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class TokenCollector(threading.Thread):
    """Scrapes the environment's replicas into the ledger every `interval_s` until stopped."""

    def __init__(self, store: StateStore, environment: str, interval_s: float) -> None:
        super().__init__(name="token-collector", daemon=True)
        self.store = store
        self.environment = environment
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                collect_tokens(self.store, self.environment)
            except Exception:  # the edge of the loop: log, wait, try again
                logger.exception("token collection for %s failed; retrying in %.0fs", self.environment, self.interval_s)
            self.stopped.wait(self.interval_s)

    def stop(self) -> None:
        self.stopped.set()
