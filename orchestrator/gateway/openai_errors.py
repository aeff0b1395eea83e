"""Errors in the OpenAI API's shape: `{"error": {"message", "type", "param", "code"}}`.

The official SDKs pick the exception class from the status code and read `message` (and
`code`) from this body, so every error gpufleet's gateway and replicas make themselves uses
it, with the `type` and `code` OpenAI's own API sends for the same case.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

RETRY_AFTER_S = 5  # no replica now: replicas restart or start within seconds to a minute

TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
         405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
         429: "rate_limit_exceeded"}


def openai_error(status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error response; 429 and 503 carry `Retry-After` (the SDKs wait that long before retrying)."""
    body = {"error": {"message": message, "type": TYPES.get(status, "server_error"), "param": None, "code": code}}
    headers = dict(headers or {})
    if status in (429, 503):
        headers.setdefault("retry-after", str(RETRY_AFTER_S))
    return JSONResponse(body, status_code=status, headers=headers)
