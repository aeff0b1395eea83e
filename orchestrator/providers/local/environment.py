"""What `orchestrator up` and `down` add around rebalance: the tiny test model built where a spec
names it, and a provider released until it says it is done."""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator.errors import ProviderError
from orchestrator.providers.base import Provider, StepPending
from orchestrator.replica.tiny_model import ensure_tiny_model
from orchestrator.replica.weights import local_source
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec

TINY_ARCHITECTURE = "tiny-llama"


def build_missing_tiny_models(spec: FleetSpec, settings: Settings) -> list[Path]:
    """Build the random-weight tiny model wherever a `tiny-llama` model's local source lacks it."""
    built = []
    for model in spec.models:
        path = local_source(model.source, settings.home)
        if model.architecture == TINY_ARCHITECTURE and path is not None and ensure_tiny_model(path):
            built.append(path)
    return built


def release_all(provider: Provider, timeout_s: float) -> None:
    """Release until the provider says it is done; ProviderError past `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            provider.release()
            return
        except StepPending as exc:
            if time.monotonic() > deadline:
                raise ProviderError(f"still stopping after {timeout_s:.0f}s: {exc}") from exc
            time.sleep(exc.retry_after_s)
