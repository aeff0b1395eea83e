"""moto's server app (EKS, Auto Scaling, EC2) behind a fault-injecting front: a fake, for tests.

moto answers EKS and Auto Scaling calls as AWS documents them, but never throttles, never
fails, accepts a desired size beyond the group's max and enforces no quota. This front hands
every request to moto's own WSGI app (the one `moto_server` runs), unless a failure or a
delay is queued (`fail_next`, `delay_next`), and counts what it received. Query-protocol
calls (Auto Scaling: `POST /` with `Action=...` in the form) are recorded and matched as
`/Action` (`/SetDesiredCapacity`); rest-json calls (EKS) by their path.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock
from urllib.parse import parse_qs

import httpx

from werkzeug.wrappers import Request, Response

from tests.fakes.cloud_fake import FakeCloudApi

AUTOSCALING_NS = "https://autoscaling.amazonaws.com/doc/2011-01-01/"
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                   "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@contextmanager
def serving(front: FakeAwsFront) -> Iterator[str]:
    """Serve a moto front with fresh backends and test credentials in the environment; yields its URL."""
    with mock.patch.dict(os.environ, AWS_CREDENTIALS), front.serve() as url:
        httpx.post(f"{url}/moto-api/reset")  # moto's backends are process-wide
        yield url


def rest_json_error(code: str, message: str) -> dict:
    """An error of a rest-json service (EKS) as botocore reads it."""
    return {"__type": code, "message": message}


def query_error(code: str, message: str) -> str:
    """An error of a query-protocol service (Auto Scaling) as botocore reads it."""
    return (f'<ErrorResponse xmlns="{AUTOSCALING_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>fake</RequestId></ErrorResponse>")


class FakeAwsFront(FakeCloudApi):
    """moto's server app, with queued failures and delays answered first (see module docstring)."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        super().__init__()
        self._moto = DomainDispatcherApplication(create_backend_app)

    def call_path(self, request: Request) -> str:
        if request.path != "/" or request.method != "POST":
            return request.path
        body = request.get_data(cache=True)
        request.environ["wsgi.input"] = io.BytesIO(body)  # moto reads the form again
        action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
        return f"/{action}"

    def handle(self, request: Request) -> Response:
        return Response.from_app(self._moto, request.environ)
