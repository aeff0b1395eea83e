"""Recording what was applied and what it costs: spans of nodes and replicas, and the prices in force.

An applied placement closes the spans that changed and opens their successors at the same
moment, so the ledger always knows how many nodes and replicas ran where at any time.
Recording the same placement again is a no-op, so callers need not remember what they
recorded (rebalance after every apply, `spend record` on a schedule).

Recording a fact dated before what `ledger_entries` already covers moves the watermark back,
so the next refresh recomputes those hours (`entries.refresh_entries`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import InputError
from orchestrator.ledger.accrual import hour_floor
from orchestrator.ledger.tables import LedgerApply, LedgerWatermark, PoolSpan, PricePoint, ReplicaSpan
from orchestrator.state import StateStore

if TYPE_CHECKING:
    from orchestrator.planner.placement import Placement

logger = logging.getLogger(__name__)


def record_placement(store: StateStore, environment: str, placement: Placement, at: dt.datetime, *,
                     baseline_cost_per_hour: float | None = None, baseline_detail: str = "") -> bool:
    """Record `placement` as applied to `environment` at `at`; False when it is the one last recorded.

    Each pool's nodes and each (model, pool) replica count becomes a span from `at`; the spans
    they replace end at `at`. Each pool's price becomes the price in force where it differs.
    `baseline_cost_per_hour` is the single-cloud baseline's $/h, for the savings the dashboard shows.
    """
    digest = placement_digest(placement)
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in placement.capacity}
    with store.session() as session:
        last = _latest(session, environment)
        if last is not None and at < last.at:
            raise InputError(f"cannot record a placement of {environment} at {at.isoformat()}: the last one was "
                             f"recorded at {last.at.isoformat()}. To fix: record applies in the order they happened")
        if last is not None and last.placement_sha256 == digest:
            return False
        _set_prices(session, environment, {p.pool: p.cost_per_node_hour for p in placement.pools}, at, "plan")
        _replace_spans(session, PoolSpan, environment, at, {
            (p.pool,): dict(provider=p.provider, region=p.region, capacity=p.capacity, gpu=p.gpu,
                            gpus_per_node=p.gpus_per_node, nodes=p.nodes)
            for p in placement.pools if p.nodes > 0})
        _replace_spans(session, ReplicaSpan, environment, at, {
            (r.model, r.pool): dict(count=r.count, gpus_per_replica=gpus.get((r.model, r.pool), 1))
            for r in placement.replicas if r.count > 0})
        session.add(LedgerApply(environment=environment, at=at, placement_sha256=digest, cost_per_hour=placement.cost_per_hour,
                                baseline_cost_per_hour=baseline_cost_per_hour, baseline_detail=baseline_detail))
        invalidate(session, environment, at)
    logger.info("ledger %s: placement applied at %s, $%.2f/h", environment, at.isoformat(), placement.cost_per_hour)
    return True


def placement_digest(placement: Placement) -> str:
    """What identifies a placement in the ledger (the same plan recorded twice is one apply)."""
    return hashlib.sha256(placement.model_dump_json().encode()).hexdigest()


def latest_apply(store: StateStore, environment: str) -> LedgerApply | None:
    """The placement last recorded as applied (its digest, planned $/h and baseline), or None."""
    with store.session() as session:
        return _latest(session, environment)


def record_prices(store: StateStore, environment: str, prices: dict[str, float], at: dt.datetime) -> list[str]:
    """Make `prices` (pool -> USD per node-hour, e.g. from a refreshed catalog) the prices in force from `at`.

    Returns the pools whose price changed; unchanged ones record nothing.
    """
    with store.session() as session:
        changed = _set_prices(session, environment, prices, at, "catalog")
        if changed:
            invalidate(session, environment, at)
    for pool in changed:
        logger.info("ledger %s: pool %s re-priced at %s to $%.4f/node-hour", environment, pool, at.isoformat(), prices[pool])
    return changed


def price_in_force(session: Session, environment: str, pool: str, at: dt.datetime) -> float | None:
    """The pool's USD per node-hour at `at`, or None before its first price."""
    return session.scalars(select(PricePoint.cost_per_node_hour).where(
        PricePoint.environment == environment, PricePoint.pool == pool, PricePoint.effective_from <= at,
    ).order_by(PricePoint.effective_from.desc()).limit(1)).first()


def invalidate(session: Session, environment: str, at: dt.datetime) -> None:
    """Entries from the hour of `at` on must be recomputed (a fact about that time was recorded)."""
    mark = session.get(LedgerWatermark, environment)
    hour = dt.datetime.fromtimestamp(hour_floor(at.timestamp()), dt.UTC)
    if mark is not None and mark.valid_until > hour:
        mark.valid_until = hour


def _latest(session: Session, environment: str) -> LedgerApply | None:
    return session.scalars(select(LedgerApply).where(LedgerApply.environment == environment)
                           .order_by(LedgerApply.at.desc(), LedgerApply.id.desc()).limit(1)).first()


def _set_prices(session: Session, environment: str, prices: dict[str, float], at: dt.datetime, source: str) -> list[str]:
    changed = []
    for pool, price in sorted(prices.items()):
        if price_in_force(session, environment, pool, at) != price:
            session.merge(PricePoint(environment=environment, pool=pool, effective_from=at, cost_per_node_hour=price, source=source))
            changed.append(pool)
    return changed


def _replace_spans(session: Session, table: type[PoolSpan] | type[ReplicaSpan], environment: str, at: dt.datetime,
                   wanted: dict[tuple[str, ...], dict]) -> None:
    """End the open spans that differ from `wanted` (key -> values) at `at`, and open the new ones."""
    keys = ("pool",) if table is PoolSpan else ("model", "pool")
    open_spans = session.scalars(select(table).where(table.environment == environment, table.ended_at.is_(None))).all()
    kept = set()
    for span in open_spans:
        key = tuple(getattr(span, k) for k in keys)
        values = wanted.get(key)
        if values is not None and all(getattr(span, k) == v for k, v in values.items()):
            kept.add(key)
        else:
            span.ended_at = at
    for key, values in wanted.items():
        if key not in kept:
            session.add(table(environment=environment, started_at=at, **dict(zip(keys, key, strict=True)), **values))
