"""Opening an environment's local provider, the steps that bring it to a placement, applying them.

Until `rebalance` lands, `orchestrator up` uses these: the placement's replica counts for
the spec's local pools become `ScaleUp` then `ScaleDown` steps (up first, so serving
capacity never dips), each replica running the spec's model source under the model's name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import ProviderError
from orchestrator.planner import Placement
from orchestrator.providers.base import FleetState, Provider, ReplicaSpec, ScaleDown, ScaleUp, StepPending
from orchestrator.providers.local.provider import LocalProvider
from orchestrator.replica.tiny_model import ensure_tiny_model
from orchestrator.replica.weights import local_source
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec
from orchestrator.state import open_state, state_url

TINY_ARCHITECTURE = "tiny-llama"


def open_local_provider(spec: FleetSpec, environment: str, settings: Settings) -> LocalProvider:
    """The local provider of `environment`, on the spec's state database (default: SQLite in its state dir)."""
    url = state_url(settings, environment, spec.state.url)
    return LocalProvider(spec, environment, open_state(url), url, settings)


def build_missing_tiny_models(spec: FleetSpec, settings: Settings) -> list[Path]:
    """Build the random-weight tiny model wherever a `tiny-llama` model's local source lacks it."""
    built = []
    for model in spec.models:
        path = local_source(model.source, settings.home)
        if model.architecture == TINY_ARCHITECTURE and path is not None and ensure_tiny_model(path):
            built.append(path)
    return built


def placement_steps(spec: FleetSpec, placement: Placement) -> list[ScaleUp | ScaleDown]:
    """ScaleUp for every (model, local pool) the placement runs, then ScaleDown of every pair to its count (0 if none)."""
    local_pools = sorted(p.name for p in spec.pools if p.provider == "local")
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in placement.capacity}
    counts = {(r.model, r.pool): r.count for r in placement.replicas}
    ups, downs = [], []
    for model in spec.models:
        for pool in local_pools:
            count = counts.get((model.name, pool), 0)
            if count:
                replica = ReplicaSpec(source=model.source, served_name=model.name, max_model_len=model.max_model_len,
                                      tensor_parallel_size=gpus.get((model.name, pool), 1))
                ups.append(ScaleUp(model=model.name, pool=pool, count=count, replica=replica))
            downs.append(ScaleDown(model=model.name, pool=pool, count=count))
    return [*ups, *downs]


def apply_steps(provider: Provider, steps: list[ScaleUp | ScaleDown], timeout_s: float,
                on_pending: Callable[[FleetState], None] = lambda _state: None) -> FleetState:
    """Apply every ScaleUp, polling until all hold, then every ScaleDown; the state reached.

    `on_pending` sees each observation while waiting (progress bars). ProviderError when
    `timeout_s` passes first.
    """
    deadline = time.monotonic() + timeout_s
    for phase in ([s for s in steps if isinstance(s, ScaleUp)], [s for s in steps if isinstance(s, ScaleDown)]):
        pending = list(phase)
        while pending:
            waits = []
            for step in list(pending):
                try:
                    provider.apply(step)
                    pending.remove(step)
                except StepPending as exc:
                    waits.append(exc)
            if not waits:
                break
            if time.monotonic() > deadline:
                raise ProviderError(f"not done after {timeout_s:.0f}s: {'; '.join(map(str, waits))}. "
                                    "To fix: see the replica logs in the state directory, or raise "
                                    "GPUFLEET_REPLICA_READY_TIMEOUT_S")
            on_pending(provider.observe())
            time.sleep(min(w.retry_after_s for w in waits))
    return provider.observe()


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
