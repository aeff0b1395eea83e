"""What the node-pool and Kubernetes fakes add to `http_fake`: aimed faults, slow answers, TLS, operations.

- every request is recorded with its body (`requests`), so a test can read what a client wrote;
- `FakeCloudApi.fail_next` and `delay_next` can aim at one call (method and path), so a
  test can fail any call of a resize, and can hold an answer past the client's timeout;
- `serve(tls=...)` serves over TLS with a certificate made by `self_signed_tls` (the Azure
  SDK will not send a bearer token over plain http);
- `FakeOperations` is the long-running operation every cloud answers a resize with: it
  runs for a while and then is done, or failed with the error queued for it.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import itertools
import json
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.http_fake import FakeHttpApi, SeenRequest, _Failure


class FakeCloudApi(FakeHttpApi):
    """A fake HTTP API whose failures and delays can target one call (method, path) and that serves TLS."""

    def __init__(self) -> None:
        super().__init__()
        self._faults: list[_Fault] = []

    def fail_next(self, status: int, body: object, *, times: int = 1, content_type: str = "application/json",
                  method: str | None = None, path: str = "") -> None:
        """Answer the next `times` requests of `method` (any when None) whose path contains `path` with `status`."""
        text = body if isinstance(body, str) else json.dumps(body)
        failure = _Failure(status, text, {"Content-Type": content_type, "Retry-After": "0"})
        with self._lock:
            self._faults.append(_Fault(method, path, times, failure=failure))

    def delay_next(self, seconds: float, *, times: int = 1, method: str | None = None, path: str = "") -> None:
        """Hold the next `times` matching requests for `seconds` (past a client's timeout), then drop them.

        A dropped request has no effect, so a late one never changes a later test's state.
        """
        with self._lock:
            self._faults.append(_Fault(method, path, times, delay_s=seconds))

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        path = self.call_path(request)
        body = request.get_data(cache=True)
        environ["wsgi.input"] = io.BytesIO(body)  # read again by an app the fake hands on to (moto)
        with self._lock:
            self.requests.append(SeenRequest(request.method, path, dict(request.args), dict(request.headers), body))
            fault = next((f for f in self._faults if f.matches(request.method, path)), None)
            if fault is not None:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
            response = Response("dropped by the fake after a delay", 504)
        elif fault is not None and fault.failure is not None:
            response = Response(fault.failure.body, fault.failure.status, fault.failure.headers)
        else:
            response = self.handle(request)
        return response(environ, start_response)

    def reset(self) -> None:
        """Forget the requests seen and the faults queued (a fake shared by several tests)."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()

    def call_path(self, request: Request) -> str:
        """The path a request is recorded and matched by (a fake of an RPC-style API names the call)."""
        return request.path

    def count(self, method: str | None = None, contains: str = "") -> int:
        """Requests received so far, of `method` (any when None) whose path contains `contains`."""
        return sum(1 for r in self.requests if (method is None or r.method == method) and contains in r.path)


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the certificate file a client must trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-tls.crt", directory / "fake-tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


@dataclass
class _Fault:
    """A failure or a delay for the next `times` requests of `method` whose path contains `path`."""

    method: str | None
    path: str
    times: int
    failure: _Failure | None = None
    delay_s: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or method == self.method) and self.path in path


@dataclass
class FakeOperation:
    """One long-running operation: running for `duration_s`, then done (or failed with `error`)."""

    id: str
    ends_at: float
    on_done: Callable[[], None]
    on_failed: Callable[[], None]
    error: Any = None
    done: bool = False

    def advance(self, now: float) -> bool:
        """Whether it is done by `now`, applying its outcome the first time it is."""
        if not self.done and now >= self.ends_at:
            self.done = True
            (self.on_done if self.error is None else self.on_failed)()
        return self.done


@dataclass
class FakeOperations:
    """The operations a fake started; each runs `duration_s`, failing with a queued error if any.

    Time, not looks, moves them (as a cloud works whether or not anyone polls): a fake
    calls `advance()` on every request it answers.
    """

    duration_s: float = 0.05
    started: dict[str, FakeOperation] = field(default_factory=dict)
    _errors: list[Any] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def fail_next(self, error: Any) -> None:
        """The next operation started ends failed with `error` (in the fake's own error shape)."""
        self._errors.append(error)

    def start(self, on_done: Callable[[], None], on_failed: Callable[[], None] = lambda: None) -> FakeOperation:
        operation = FakeOperation(f"operation-{next(self._ids)}", time.monotonic() + self.duration_s, on_done,
                                  on_failed, self._errors.pop(0) if self._errors else None)
        self.started[operation.id] = operation
        return operation

    def advance(self) -> None:
        now = time.monotonic()
        for operation in self.started.values():
            operation.advance(now)
