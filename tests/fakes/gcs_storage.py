"""A fake of Google Cloud Storage's JSON API: list objects, object metadata, ranged media downloads.

Enough of `storage/v1` for the real `google.cloud.storage.Client` (pointed here with
STORAGE_EMULATOR_HOST) to list a prefix and download objects from an offset. Objects carry
`md5Hash` and `crc32c` (base64) as GCS reports them; `composite=True` drops the md5, as GCS
does for composed objects.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

import google_crc32c
from werkzeug.wrappers import Request, Response

from tests.fakes.http_fake import FakeHttpApi, json_response

_BUCKET = re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)$")
_LIST = re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)/o$")
_OBJECT = re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$")
_MEDIA = re.compile(r"^/download/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class FakeGcs(FakeHttpApi):
    """Buckets of objects in memory; `put` adds one."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    composite: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        super().__init__()

    def put(self, bucket: str, name: str, data: bytes, *, composite: bool = False) -> None:
        self.objects[bucket, name] = data
        if composite:
            self.composite.add((bucket, name))

    def _resource(self, bucket: str, name: str) -> dict:
        data = self.objects[bucket, name]
        resource = {"kind": "storage#object", "bucket": bucket, "name": name, "size": str(len(data)),
                    "generation": "1", "crc32c": base64.b64encode(google_crc32c.Checksum(data).digest()).decode()}
        if (bucket, name) not in self.composite:
            resource["md5Hash"] = base64.b64encode(hashlib.md5(data).digest()).decode()
        return resource

    def handle(self, request: Request) -> Response:
        if match := _BUCKET.match(request.path):
            return json_response({"kind": "storage#bucket", "name": match["bucket"], "id": match["bucket"]})
        if match := _LIST.match(request.path):
            prefix = request.args.get("prefix", "")
            items = [self._resource(b, n) for (b, n) in sorted(self.objects) if b == match["bucket"] and n.startswith(prefix)]
            return json_response({"kind": "storage#objects", "items": items})
        for pattern in (_MEDIA, _OBJECT):
            if (match := pattern.match(request.path)) is None:
                continue
            key = (match["bucket"], unquote(match["name"]))
            if key not in self.objects:
                return json_response({"error": {"code": 404, "message": "No such object"}}, 404)
            if pattern is _OBJECT and request.args.get("alt") != "media":
                return json_response(self._resource(*key))
            return _media(self.objects[key], request.headers.get("Range"))
        return json_response({"error": {"code": 404, "message": f"no route {request.path}"}}, 404)


def _media(data: bytes, range_header: str | None) -> Response:
    if not range_header:
        return Response(data, 200, content_type="application/octet-stream")
    match = _RANGE.match(range_header)
    start = int(match[1])
    end = int(match[2]) if match[2] else len(data) - 1
    body = data[start:end + 1]
    return Response(body, 206, {"Content-Range": f"bytes {start}-{start + len(body) - 1}/{len(data)}"},
                    content_type="application/octet-stream")
