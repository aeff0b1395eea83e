"""The gateway's API key: from GPUFLEET_API_KEY, else generated once, kept 0600, shown once, never in a repr."""

from __future__ import annotations

import stat

import pytest

from orchestrator.errors import GpufleetError
from orchestrator.gateway import gateway_api_key
from orchestrator.settings import Settings


def test_the_environment_variable_wins(monkeypatch):
    monkeypatch.setenv("GPUFLEET_API_KEY", "from-env")
    key = gateway_api_key(Settings(), "local")
    assert (key.value.get_secret_value(), key.source, key.created) == ("from-env", "GPUFLEET_API_KEY", False)


def test_a_generated_key_is_kept_owner_only_and_reported_created_once(gpufleet_home):
    first = gateway_api_key(Settings(), "local")
    second = gateway_api_key(Settings(), "local")
    path = gpufleet_home / "state" / "local" / "gateway-api-key"
    assert first.created and not second.created
    assert first.value.get_secret_value() == second.value.get_secret_value() == path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.value.get_secret_value() not in repr(first)


def test_a_key_file_readable_by_others_is_refused(gpufleet_home):
    gateway_api_key(Settings(), "local")
    path = gpufleet_home / "state" / "local" / "gateway-api-key"
    path.chmod(0o644)
    with pytest.raises(GpufleetError, match="readable by others. To fix: chmod 600"):
        gateway_api_key(Settings(), "local")
