"""A fake of Azure Blob Storage's REST API: list a container, download a blob from an offset.

Enough for the real `azure.storage.blob.BlobServiceClient` (from a connection string whose
BlobEndpoint points here; SharedKey signatures are not checked) to list blobs under a
prefix and download one with `x-ms-range`. Blobs report Content-MD5 unless uploaded with
`md5=False` (as blocks uploaded in parts are); `corrupt` changes a blob's bytes but not its listed MD5.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import unquote
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from tests.fakes.http_fake import FakeHttpApi

ACCOUNT = "devaccount"
KEY = base64.b64encode(b"fake-account-key").decode()
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_HEADERS = {"x-ms-version": "2025-01-05", "x-ms-blob-type": "BlockBlob", "ETag": '"0x1"',
            "Last-Modified": "Mon, 23 Nov 2026 00:00:00 GMT"}


@dataclass
class FakeAzureBlob(FakeHttpApi):
    """Containers of blobs in memory under one account; `put` adds one."""

    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    listed_md5: dict[tuple[str, str], str] = field(default_factory=dict)

    def put(self, container: str, name: str, data: bytes, *, md5: bool = True) -> None:
        self.blobs[container, name] = data
        if md5:
            self.listed_md5[container, name] = base64.b64encode(hashlib.md5(data).digest()).decode()

    def corrupt(self, container: str, name: str) -> None:
        """Serve different bytes under the MD5 listed for the original (bit rot, a bad write)."""
        self.blobs[container, name] = self.blobs[container, name][::-1]

    def connection_string(self, base_url: str) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={base_url}/{ACCOUNT};")

    def _md5(self, container: str, name: str) -> str | None:
        return self.listed_md5.get((container, name))

    def handle(self, request: Request) -> Response:
        parts = unquote(request.path).lstrip("/").split("/", 2)
        if len(parts) == 2 and request.args.get("comp") == "list":
            return self._list(parts[1], request.args.get("prefix", ""))
        if len(parts) == 3 and (parts[1], parts[2]) in self.blobs:
            return self._download(parts[1], parts[2], request.headers.get("x-ms-range") or request.headers.get("Range"))
        return Response('<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code>'
                        "<Message>The specified blob does not exist.</Message></Error>", 404,
                        {"x-ms-error-code": "BlobNotFound"}, content_type="application/xml")

    def _list(self, container: str, prefix: str) -> Response:
        entries = []
        for (c, name), data in sorted(self.blobs.items()):
            if c != container or not name.startswith(prefix):
                continue
            md5 = self._md5(c, name)
            entries.append(
                f"<Blob><Name>{escape(name)}</Name><Properties><Last-Modified>{_HEADERS['Last-Modified']}</Last-Modified>"
                f"<Etag>0x1</Etag><Content-Length>{len(data)}</Content-Length>"
                f"<Content-Type>application/octet-stream</Content-Type>"
                + (f"<Content-MD5>{md5}</Content-MD5>" if md5 else "")
                + "<BlobType>BlockBlob</BlobType></Properties></Blob>")
        body = ('<?xml version="1.0" encoding="utf-8"?>'
                f'<EnumerationResults ServiceEndpoint="http://fake/{ACCOUNT}" ContainerName="{container}">'
                f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(entries)}</Blobs><NextMarker /></EnumerationResults>")
        return Response(body, 200, _HEADERS, content_type="application/xml")

    def _download(self, container: str, name: str, range_header: str | None) -> Response:
        data = self.blobs[container, name]
        headers = dict(_HEADERS)
        if md5 := self._md5(container, name):
            headers["x-ms-blob-content-md5"] = md5
        if not range_header:
            return Response(data, 200, headers, content_type="application/octet-stream")
        match = _RANGE.match(range_header)
        start = int(match[1])
        end = min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
        if start >= len(data):
            return Response(b"", 416, headers)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return Response(data[start:end + 1], 206, headers, content_type="application/octet-stream")
