"""What the HTTP fakes share: a threaded server on 127.0.0.1, a log of requests, injected failures.

Each fake is a WSGI app on werkzeug (which moto's server mode brings along), so one
fake can also hand requests on to moto's own WSGI app.
"""

from __future__ import annotations

import json
import ssl
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class SeenRequest:
    """A request as the fake received it; `body` only where the fake keeps it (cloud fakes do, re-reading it for the app they hand on to)."""

    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class _Failure:
    status: int
    body: str
    headers: dict[str, str]


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without the access log line per request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeHttpApi(ABC):
    """Base of the fakes: records every request and answers queued failures before real answers."""

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """The fake service's answer to one request."""

    def fail_next(self, status: int, body: object, *, times: int = 1, content_type: str = "application/json") -> None:
        """Answer the next `times` requests with `status` and `body` (JSON-encoded unless a str).

        `Retry-After: 0` goes with it, so clients that honour the header retry at once.
        """
        text = body if isinstance(body, str) else json.dumps(body)
        failure = _Failure(status, text, {"Content-Type": content_type, "Retry-After": "0"})
        with self._lock:
            self._failures.extend([failure] * times)

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            self.requests.append(
                SeenRequest(request.method, request.path, dict(request.args), dict(request.headers))
            )
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            response = Response(failure.body, failure.status, failure.headers)
        else:
            response = self.handle(request)
        return response(environ, start_response)

    @contextmanager
    def serve(self, tls: ssl.SSLContext | None = None) -> Iterator[str]:
        """Serve on a free port of 127.0.0.1 for the block, over TLS when given; yields the base URL."""
        server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_QuietHandler, ssl_context=tls)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True)
        thread.start()
        try:
            yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join()


def json_response(body: object, status: int = 200, content_type: str = "application/json") -> Response:
    """A JSON answer, as every faked API gives."""
    return Response(json.dumps(body), status, content_type=content_type)
