"""The API key clients must present to a site's gateway.

From `GPUFLEET_API_KEY` when set; otherwise generated once per environment and kept in its
state directory, readable by the owner only (0600). `created` is True only on the call that
generated it, so the CLI shows it exactly once. The key is a `SecretStr`: it never reaches
logs, status output or reprs by accident.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from orchestrator.errors import GpufleetError
from orchestrator.settings import Settings

KEY_FILE = "gateway-api-key"
KEY_BYTES = 32


@dataclass(frozen=True)
class ApiKey:
    value: SecretStr
    source: str  # "GPUFLEET_API_KEY" or the key file's path
    created: bool


def gateway_api_key(settings: Settings, environment: str) -> ApiKey:
    """The environment's gateway key (see module docstring)."""
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return ApiKey(settings.api_key, "GPUFLEET_API_KEY", created=False)
    path = settings.state_dir(environment) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "gf-" + secrets.token_urlsafe(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return ApiKey(SecretStr(_read_key(path)), str(path), created=False)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return ApiKey(SecretStr(key), str(path), created=True)


def _read_key(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        raise GpufleetError(f"{path} is readable by others. To fix: chmod 600 {path}, or delete it to generate a new key")
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise GpufleetError(f"{path} is empty. To fix: delete it to generate a new key, or set GPUFLEET_API_KEY")
    return key
