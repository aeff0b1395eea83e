"""vllm-router, the vLLM project's Rust gateway: its command line and its worker-list API.

The router runs in multi-model mode (`--enable-igw`): each worker is registered with the
model it serves and requests go to a worker of the model they name. Workers are added only
once ready and removed before they stop (the controller calls `add`/`remove`); the router's
own health checks and retries cover the moments in between.

What vllm-router does not do well enough as a public endpoint (no client key, a
non-OpenAI `/v1/models`, plain-text errors, the worker API on the serving port) the
gateway's front does in front of it (front.py); the router's own port stays on 127.0.0.1.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ProviderError

logger = logging.getLogger(__name__)

ADMIN_TIMEOUT_S = 5.0


class RouterError(ProviderError):
    """The router refused or failed a worker-list change."""


class GatewayWorker(BaseModel):
    """A replica as the gateway knows it: the shared model between controller and router."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str = Field(description="Base URL of the replica's OpenAI server.")
    model_id: str = Field(description="The served model name requests must ask for.")
    is_healthy: bool = True


def router_command(host: str, port: int, metrics_port: int, policy: str, log_dir: Path | None = None) -> list[str]:
    """The vllm-router command line for one site (no workers yet: they are added when ready)."""
    executable = shutil.which("vllm-router", path=str(Path(sys.executable).parent)) or shutil.which("vllm-router")
    if executable is None:
        raise ProviderError("vllm-router is not installed. To fix: run scripts/setup_vllm_cpu.sh (or pip install vllm-router)")
    command = [
        executable, "--host", host, "--port", str(port), "--enable-igw", "--policy", policy,
        "--prometheus-host", host, "--prometheus-port", str(metrics_port),
        "--health-check-interval-secs", "5", "--log-level", "warning",
    ]
    return command + (["--log-dir", str(log_dir)] if log_dir else [])


class RouterClient:
    """The router's worker-list API (an httpx client; pass `transport` in tests).

    `base_url` is the router's own port for changes; through the gateway's front (with
    `api_key`) only `healthy` and `workers` answer.
    """

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None, api_key: str | None = None) -> None:
        self.base_url = base_url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.Client(base_url=base_url, timeout=ADMIN_TIMEOUT_S, transport=transport, headers=headers)

    def close(self) -> None:
        self._http.close()

    def healthy(self) -> bool:
        try:
            return self._http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def workers(self) -> list[GatewayWorker]:
        return [GatewayWorker.model_validate(w) for w in self._call("GET", "/workers").json().get("workers", [])]

    def add(self, worker: GatewayWorker) -> None:
        """Route requests for `worker.model_id` to `worker.url` (idempotent)."""
        self._call("POST", "/workers", json={"url": worker.url, "model_id": worker.model_id})
        logger.info("gateway %s: added worker %s (%s)", self.base_url, worker.url, worker.model_id)

    def remove(self, url: str) -> None:
        """Stop routing to `url` (idempotent: an unknown worker is already removed)."""
        response = self._call("DELETE", f"/workers/{quote(url, safe='')}", allow=(400, 404))
        if response.status_code == 400 and "WORKER_NOT_FOUND" not in response.text:
            raise RouterError(f"gateway {self.base_url} refused to remove {url}: {response.text[:200]}")
        if response.status_code == 200:
            logger.info("gateway %s: removed worker %s", self.base_url, url)

    def _call(self, method: str, path: str, allow: tuple[int, ...] = (), **kwargs: object) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise RouterError(f"gateway {self.base_url} did not answer {method} {path}: {exc}") from exc
        if response.status_code >= 400 and response.status_code not in allow:
            raise RouterError(f"gateway {self.base_url} refused {method} {path}: {response.status_code} {response.text[:200]}")
        return response
