"""What the fleet costs right now: each running pool's nodes x price in force, split over its models.

The dashboard's headline, its Prometheus gauges and the savings against the baseline read
this; it looks only at open spans and the latest price points, so it is cheap at any ledger size.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from orchestrator.ledger.tables import UNALLOCATED, PoolSpan, PricePoint, ReplicaSpan
from orchestrator.state import StateStore


class PoolRate(BaseModel):
    """A running pool now: its size, what its replicas hold, and what it costs per hour (per model too)."""

    model_config = ConfigDict(frozen=True)

    pool: str
    provider: str
    region: str
    capacity: str
    gpu: str
    nodes: int
    gpus: int
    used_gpus: int
    cost_per_node_hour: float
    cost_per_hour: float
    model_cost_per_hour: dict[str, float]


def current_rates(store: StateStore, environment: str, at: dt.datetime) -> list[PoolRate]:
    """Every pool with nodes at `at`, by descending cost per hour."""
    with store.session() as session:
        spans = session.scalars(select(PoolSpan).where(
            PoolSpan.environment == environment, PoolSpan.started_at <= at,
            (PoolSpan.ended_at.is_(None)) | (PoolSpan.ended_at > at))).all()
        replicas = session.scalars(select(ReplicaSpan).where(
            ReplicaSpan.environment == environment, ReplicaSpan.started_at <= at,
            (ReplicaSpan.ended_at.is_(None)) | (ReplicaSpan.ended_at > at))).all()
        prices: dict[str, float] = {}
        for point in session.scalars(select(PricePoint).where(
                PricePoint.environment == environment, PricePoint.effective_from <= at).order_by(PricePoint.effective_from)):
            prices[point.pool] = point.cost_per_node_hour  # later points win
    held: dict[str, dict[str, int]] = defaultdict(dict)
    for r in replicas:
        held[r.pool][r.model] = r.count * r.gpus_per_replica
    rates = []
    for s in spans:
        price = prices.get(s.pool, 0.0)
        cost = s.nodes * price
        used = sum(held[s.pool].values())
        shares = {m: cost * g / used for m, g in held[s.pool].items()} if used else {UNALLOCATED: cost}
        rates.append(PoolRate(pool=s.pool, provider=s.provider, region=s.region, capacity=s.capacity, gpu=s.gpu, nodes=s.nodes,
                              gpus=s.nodes * s.gpus_per_node, used_gpus=used, cost_per_node_hour=price, cost_per_hour=cost,
                              model_cost_per_hour=shares))
    return sorted(rates, key=lambda r: (-r.cost_per_hour, r.pool))
