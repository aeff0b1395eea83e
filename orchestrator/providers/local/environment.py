"""Opening an environment's local provider, and the steps that bring it to a placement.

Until `rebalance` lands, `orchestrator up` uses these: the placement's replica counts for
the spec's local pools become `ScaleUp` then `ScaleDown` steps (up first, so serving
capacity never dips), each replica running the spec's model source under the model's name.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.planner import Placement
from orchestrator.providers.base import ReplicaSpec, ScaleDown, ScaleUp
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
    """ScaleUp for every (model, local pool) the placement runs, then ScaleDown to the same counts."""
    local_pools = {p.name for p in spec.pools if p.provider == "local"}
    models = {m.name: m for m in spec.models}
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in placement.capacity}
    counts = {(r.model, r.pool): r.count for r in placement.replicas if r.pool in local_pools}
    ups, downs = [], []
    for (model, pool), count in sorted(counts.items()):
        replica = ReplicaSpec(source=models[model].source, served_name=model,
                              tensor_parallel_size=gpus.get((model, pool), 1), max_model_len=models[model].max_model_len)
        ups.append(ScaleUp(model=model, pool=pool, count=count, replica=replica))
        downs.append(ScaleDown(model=model, pool=pool, count=count))
    return [*ups, *downs]
