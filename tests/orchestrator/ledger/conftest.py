"""A ledger database per test (SQLite; PostgreSQL too when GPUFLEET_TEST_POSTGRES_URL is set) and small placements."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from orchestrator.ledger import open_ledger
from orchestrator.planner.placement import Placement
from orchestrator.settings import load_settings

POSTGRES_URL = os.environ.get("GPUFLEET_TEST_POSTGRES_URL")
T0 = dt.datetime(2026, 11, 2, 0, 0, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    """T0 plus `hours`."""
    return T0 + dt.timedelta(hours=hours)


@pytest.fixture(params=["sqlite"] + (["postgresql"] if POSTGRES_URL else []))
def store(request):
    store = open_ledger(load_settings(), "test", POSTGRES_URL if request.param == "postgresql" else None)
    yield store
    if request.param == "postgresql":
        from orchestrator.state import Base

        Base.metadata.drop_all(store.engine)
    store.close()


def placement(pools: dict[str, tuple[str, str, int, float, int]], replicas: dict[tuple[str, str], int],
              gpus: dict[tuple[str, str], int] | None = None, environment: str = "test") -> Placement:
    """pools: name -> (provider, capacity, nodes, $/node-hour, GPUs per node); replicas: (model, pool) -> count."""
    gpus = gpus or {}
    pool_rows = [{"pool": name, "provider": provider, "region": f"{provider}-region", "gpu": "H100", "capacity": capacity,
                  "gpus_per_node": per_node, "min_nodes": 0, "max_nodes": 8, "cost_per_node_hour": price, "nodes": nodes,
                  "cost_per_hour": nodes * price}
                 for name, (provider, capacity, nodes, price, per_node) in pools.items()]
    models = sorted({m for m, _ in replicas} | {m for m, _ in gpus})
    return Placement.model_validate({
        "environment": environment, "cost_per_hour": sum(p["cost_per_hour"] for p in pool_rows), "lower_bound_per_hour": 0.0,
        "solver": {"status": "optimal", "seconds": 0.0},
        "models": [{"model": m, "min_replicas": 1, "max_rtt_ms": 100, "ttft_p95_ms": 1000, "tpot_p95_ms": 100} for m in models],
        "demand": [], "pools": pool_rows,
        "capacity": [{"model": m, "pool": p, "gpus_per_replica": gpus.get((m, p), 1), "rps_per_replica": 1.0}
                     for m in models for p in pools],
        "latency": [], "replicas": [{"model": m, "pool": p, "count": c} for (m, p), c in replicas.items()], "routes": [],
    })
