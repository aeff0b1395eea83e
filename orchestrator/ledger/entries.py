"""Keeping `ledger_entries` and `ledger_days` current: accrued from the facts, rebuilt from the watermark on.

Entries before an environment's watermark are final; from it on they are deleted and
accrued again up to now, and the days they fall in are summed again. The watermark then
moves to the start of the current hour, so the hour in progress is always recomputed and a
fact dated in the past (`record.invalidate`) moves it back. Refreshing is therefore cheap
(an hour or two of rows, a day of sums) and idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.ledger.accrual import Accrual, PoolFacts, PoolHistory, Span, TokenCount, accrue, hour_floor
from orchestrator.ledger.tables import SUMMED, LedgerDay, LedgerEntry, LedgerWatermark, PoolSpan, PricePoint, ReplicaSpan, TokenHour
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)


def _epoch(at: dt.datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def refresh_entries(store: StateStore, environment: str, until: dt.datetime) -> int:
    """Accrue the environment's entries up to `until` and sum their days; the number of entries written."""
    start = _watermark(store, environment)
    if start is None or start >= until:
        return 0
    with store.session() as session:
        pools, tokens = _facts(session, environment, start, until)
        rows = accrue(pools, tokens, start.timestamp(), until.timestamp())
        session.execute(delete(LedgerEntry).where(LedgerEntry.environment == environment, LedgerEntry.hour >= start))
        if rows:
            session.execute(insert(LedgerEntry.__table__), [_entry(environment, r) for r in rows])
        sum_days(session, environment, start.date())
        # optimistic: a fact recorded meanwhile lowered the watermark, and the next refresh redoes those hours
        session.execute(update(LedgerWatermark).where(LedgerWatermark.environment == environment, LedgerWatermark.valid_until == start)
                        .values(valid_until=_utc(hour_floor(until.timestamp()))))
    logger.debug("ledger %s: %d entries accrued from %s", environment, len(rows), start.isoformat())
    return len(rows)


def sum_days(session: Session, environment: str, first: dt.date) -> None:
    """Rebuild `ledger_days` from `first` on out of `ledger_entries` (one INSERT ... SELECT ... GROUP BY)."""
    session.execute(delete(LedgerDay).where(LedgerDay.environment == environment, LedgerDay.day >= first))
    keys = (LedgerEntry.environment, LedgerEntry.day, LedgerEntry.pool, LedgerEntry.model)
    shape = (func.max(LedgerEntry.provider), func.max(LedgerEntry.region), func.max(LedgerEntry.capacity), func.max(LedgerEntry.gpu))
    sums = tuple(func.sum(getattr(LedgerEntry, column)) for column in SUMMED)
    since = dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC)
    session.execute(insert(LedgerDay).from_select(
        ["environment", "day", "pool", "model", "provider", "region", "capacity", "gpu", *SUMMED],
        select(*keys, *shape, *sums).where(LedgerEntry.environment == environment, LedgerEntry.hour >= since).group_by(*keys)))


def _watermark(store: StateStore, environment: str) -> dt.datetime | None:
    """Where entries stop being final: the stored watermark, else the hour of the earliest fact (None: no facts)."""
    with store.session() as session:
        mark = session.get(LedgerWatermark, environment)
        if mark is not None:
            return mark.valid_until
        earliest = [t for t in (
            session.scalar(select(func.min(PoolSpan.started_at)).where(PoolSpan.environment == environment)),
            session.scalar(select(func.min(TokenHour.hour)).where(TokenHour.environment == environment)),
        ) if t is not None]
    if not earliest:
        return None
    start = _utc(hour_floor(min(earliest).timestamp()))
    try:
        with store.session() as session:
            session.add(LedgerWatermark(environment=environment, valid_until=start))
    except IntegrityError:  # another process started the watermark first
        with store.session() as session:
            return session.get(LedgerWatermark, environment).valid_until
    return start


def _facts(session: Session, environment: str, start: dt.datetime, until: dt.datetime) -> tuple[dict[str, PoolHistory], list[TokenCount]]:
    """Spans overlapping [start, until), every price point before `until`, and the window's token counts.

    Read as plain rows on the session's connection (no ORM objects): a week of a large fleet is a million values.
    """
    connection = session.connection()
    pools: dict[str, PoolHistory] = defaultdict(PoolHistory)
    for pool, provider, region, capacity, gpu, per_node, nodes, began, ended in connection.execute(select(
            PoolSpan.pool, PoolSpan.provider, PoolSpan.region, PoolSpan.capacity, PoolSpan.gpu, PoolSpan.gpus_per_node,
            PoolSpan.nodes, PoolSpan.started_at, PoolSpan.ended_at).where(
            PoolSpan.environment == environment, PoolSpan.started_at < until,
            or_(PoolSpan.ended_at.is_(None), PoolSpan.ended_at > start))):
        facts = PoolFacts(provider, region, capacity, gpu, per_node, nodes)
        pools[pool].nodes.append(Span(began.timestamp(), _epoch(ended), facts))
    for model, pool, count, gpus, began, ended in connection.execute(select(
            ReplicaSpan.model, ReplicaSpan.pool, ReplicaSpan.count, ReplicaSpan.gpus_per_replica, ReplicaSpan.started_at,
            ReplicaSpan.ended_at).where(
            ReplicaSpan.environment == environment, ReplicaSpan.started_at < until,
            or_(ReplicaSpan.ended_at.is_(None), ReplicaSpan.ended_at > start))):
        pools[pool].replicas[model].append(Span(began.timestamp(), _epoch(ended), (count, gpus)))
    for pool, effective, price in connection.execute(select(PricePoint.pool, PricePoint.effective_from, PricePoint.cost_per_node_hour)
                                                  .where(PricePoint.environment == environment, PricePoint.effective_from < until)):
        if pool in pools:
            pools[pool].prices.append((effective.timestamp(), price))
    tokens = [TokenCount(hour.timestamp(), pool, model, provider, prompt, generation)
              for hour, pool, model, provider, prompt, generation in connection.execute(select(
                  TokenHour.hour, TokenHour.pool, TokenHour.model, TokenHour.provider, TokenHour.prompt_tokens,
                  TokenHour.generation_tokens).where(
                  TokenHour.environment == environment, TokenHour.hour >= start, TokenHour.hour < until))]
    return pools, tokens


def _entry(environment: str, row: Accrual) -> dict:
    hour = _utc(row.hour)
    return {
        "environment": environment, "hour": hour, "day": hour.date(), "pool": row.pool, "model": row.model,
        "provider": row.facts.provider, "region": row.facts.region, "capacity": row.facts.capacity, "gpu": row.facts.gpu,
        "node_hours": row.node_hours, "gpu_hours": row.gpu_hours, "used_gpu_hours": row.used_gpu_hours,
        "cost_usd": row.cost_usd, "prompt_tokens": row.prompt_tokens, "generation_tokens": row.generation_tokens,
    }
