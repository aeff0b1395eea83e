"""The spend summary of one environment over a window: what the dashboard, `spend report` and its JSON show.

One query groups the window's hourly entries (up to two days) or daily sums (beyond) by
bucket, pool and model; everything else (spend per provider over time, $/1M tokens, capacity
shares, utilization) is folded from those rows in Python, so the cost stays one scan of at
most a row per pool, model and day however many views are drawn. Savings
come from the recorded applies and their single-cloud baseline (a); planned vs billed from
the reconciliation.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from orchestrator.ledger.entries import refresh_entries
from orchestrator.ledger.rates import PoolRate, current_rates
from orchestrator.ledger.reconcile import ReconcileRow, reconcile
from orchestrator.ledger.tables import UNALLOCATED, BilledDay, LedgerApply, LedgerDay, LedgerEntry
from orchestrator.state import StateStore

HOURLY_UP_TO = dt.timedelta(days=2)  # longer windows are drawn per day


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Window(_Out):
    """[start, end), UTC; drawn per hour up to two days, per whole UTC day beyond."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def last_days(cls, days: float, now: dt.datetime) -> Window:
        return cls(start=now - dt.timedelta(days=days), end=now)

    @property
    def bucket(self) -> Literal["hour", "day"]:
        return "hour" if self.end - self.start <= HOURLY_UP_TO else "day"

    def buckets(self) -> list[dt.datetime]:
        """The start of every bucket in the window."""
        step = dt.timedelta(hours=1) if self.bucket == "hour" else dt.timedelta(days=1)
        at = self.start.replace(minute=0, second=0, microsecond=0)
        if self.bucket == "day":
            at = at.replace(hour=0)
        out = []
        while at < self.end:
            out.append(at)
            at += step
        return out


class SpendPoint(_Out):
    bucket: dt.datetime
    provider: str
    cost_usd: float


class TokenCost(_Out):
    """A model's cost and tokens on one provider; $/1M tokens counts prompt and generated tokens."""

    provider: str
    model: str
    cost_usd: float
    prompt_tokens: int
    generation_tokens: int
    usd_per_million_tokens: float | None


class CapacityShare(_Out):
    capacity: str
    cost_usd: float
    gpu_hours: float
    cost_share: float
    gpu_hour_share: float


class PoolUse(_Out):
    """GPU-hours a pool provisioned and how many of them its replicas held."""

    pool: str
    provider: str
    capacity: str
    cost_usd: float
    gpu_hours: float
    used_gpu_hours: float
    utilization: float


class ProviderBill(_Out):
    """Over the window: the ledger's cost, the bill tagged to this environment, and the bill tagged to none."""

    provider: str
    ledger_usd: float
    billed_usd: float
    untagged_usd: float


class Savings(_Out):
    """The placement against baseline (a), one cloud on-demand: now, and accrued over the window."""

    baseline_cost_per_hour: float | None
    planned_cost_per_hour: float
    current_cost_per_hour: float
    saving_ratio: float | None
    saved_usd: float
    detail: str


class SpendSummary(_Out):
    environment: str
    start: dt.datetime
    end: dt.datetime
    bucket: Literal["hour", "day"]
    buckets: list[dt.datetime]
    cost_usd: float
    prompt_tokens: int
    generation_tokens: int
    usd_per_million_tokens: float | None
    cost_per_hour_now: float
    over_time: list[SpendPoint]
    per_million_tokens: list[TokenCost]
    billed: list[ProviderBill]
    reconciliation: list[ReconcileRow]
    capacity: list[CapacityShare]
    savings: Savings | None
    utilization: list[PoolUse]
    pools_now: list[PoolRate]


def spend_summary(store: StateStore, environment: str, window: Window, now: dt.datetime, tolerance: float) -> SpendSummary:
    """Bring the entries up to `now`, then summarize the window (a day-bucketed window starts at its first midnight)."""
    refresh_entries(store, environment, now)
    buckets = window.buckets()
    start, end_day = buckets[0], _end_day(window)
    if window.bucket == "hour":
        table, column, where = LedgerEntry, LedgerEntry.hour, (LedgerEntry.hour >= start, LedgerEntry.hour < window.end)
    else:
        table, column, where = LedgerDay, LedgerDay.day, (LedgerDay.day >= start.date(), LedgerDay.day < end_day)
    with store.session() as session:
        rows = session.execute(
            select(column, table.provider, table.pool, table.model, table.capacity,
                   func.sum(table.cost_usd), func.sum(table.gpu_hours), func.sum(table.used_gpu_hours),
                   func.sum(table.prompt_tokens), func.sum(table.generation_tokens))
            .where(table.environment == environment, *where)
            .group_by(column, table.provider, table.pool, table.model, table.capacity)).all()
        untagged = dict(session.execute(
            select(BilledDay.provider, func.sum(BilledDay.billed_cost))
            .where(BilledDay.environment == environment, BilledDay.env_tag == "", BilledDay.currency == "USD",
                   BilledDay.day >= start.date(), BilledDay.day < end_day)
            .group_by(BilledDay.provider)).all())
        applies = session.scalars(select(LedgerApply).where(LedgerApply.environment == environment, LedgerApply.at < window.end)
                                  .order_by(LedgerApply.at, LedgerApply.id)).all()
    reconciliation = reconcile(store, environment, start.date(), end_day, tolerance)
    pools_now = current_rates(store, environment, min(now, window.end))
    rate_now = sum(p.cost_per_hour for p in pools_now)

    over_time: dict[tuple[dt.datetime, str], float] = defaultdict(float)
    tokens: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0, 0])
    capacity: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    used_by_pool: dict[str, list] = {}
    for bucket, provider, pool, model, cap, cost, gpu_hours, used, prompt, generation in rows:
        over_time[(_as_time(bucket), provider)] += cost
        if model != UNALLOCATED:
            t = tokens[(provider, model)]
            t[0] += cost
            t[1] += int(prompt)
            t[2] += int(generation)
        capacity[cap][0] += cost
        capacity[cap][1] += gpu_hours
        u = used_by_pool.setdefault(pool, [provider, cap, 0.0, 0.0, 0.0])
        u[2] += cost
        u[3] += gpu_hours
        u[4] += used
    total = sum(c for c, _ in capacity.values())
    gpu_total = sum(g for _, g in capacity.values())
    prompt_total = sum(int(r[8]) for r in rows)
    generation_total = sum(int(r[9]) for r in rows)
    billed = _billed(reconciliation, untagged)
    return SpendSummary(
        environment=environment, start=start, end=window.end, bucket=window.bucket, buckets=buckets,
        cost_usd=total, prompt_tokens=prompt_total, generation_tokens=generation_total,
        usd_per_million_tokens=_per_million(total, prompt_total + generation_total),
        cost_per_hour_now=rate_now,
        over_time=[SpendPoint(bucket=b, provider=p, cost_usd=c) for (b, p), c in sorted(over_time.items())],
        per_million_tokens=sorted((TokenCost(provider=p, model=m, cost_usd=c, prompt_tokens=pt, generation_tokens=gt,
                                             usd_per_million_tokens=_per_million(c, pt + gt))
                                   for (p, m), (c, pt, gt) in tokens.items()), key=lambda t: (t.model, t.provider)),
        billed=billed, reconciliation=reconciliation,
        capacity=[CapacityShare(capacity=k, cost_usd=c, gpu_hours=g, cost_share=c / total if total else 0.0,
                                gpu_hour_share=g / gpu_total if gpu_total else 0.0) for k, (c, g) in sorted(capacity.items())],
        savings=_savings(applies, start, min(window.end, now), rate_now),
        utilization=sorted((PoolUse(pool=name, provider=prov, capacity=cap, cost_usd=c, gpu_hours=g, used_gpu_hours=u,
                                    utilization=min(1.0, u / g) if g else 0.0)
                            for name, (prov, cap, c, g, u) in used_by_pool.items()), key=lambda p: (-p.cost_usd, p.pool)),
        pools_now=pools_now,
    )


def _end_day(window: Window) -> dt.date:
    """The first day after the window (its last day is partial but counted)."""
    return (window.end - dt.timedelta(microseconds=1)).date() + dt.timedelta(days=1)


def _as_time(bucket: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(bucket, dt.datetime):
        return bucket
    return dt.datetime(bucket.year, bucket.month, bucket.day, tzinfo=dt.UTC)


def _per_million(cost: float, tokens: int) -> float | None:
    return cost / tokens * 1e6 if tokens else None


def _billed(reconciliation: list[ReconcileRow], untagged: dict[str, float]) -> list[ProviderBill]:
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in reconciliation:
        totals[row.provider][0] += row.ledger_usd
        totals[row.provider][1] += row.billed_usd or 0.0
    return [ProviderBill(provider=p, ledger_usd=totals[p][0], billed_usd=totals[p][1], untagged_usd=untagged.get(p, 0.0))
            for p in sorted(totals.keys() | untagged.keys())]


def _savings(applies: list[LedgerApply], start: dt.datetime, end: dt.datetime, current: float) -> Savings | None:
    """Baseline minus planned $/h, over the hours each apply was in force within [start, end)."""
    if not applies:
        return None
    saved = 0.0
    for apply, following in zip(applies, [*applies[1:], None], strict=True):
        began, until = max(apply.at, start), min(following.at if following else end, end)
        if apply.baseline_cost_per_hour is not None and until > began:
            saved += (apply.baseline_cost_per_hour - apply.cost_per_hour) * (until - began).total_seconds() / 3600
    latest = applies[-1]
    baseline = latest.baseline_cost_per_hour
    return Savings(baseline_cost_per_hour=baseline, planned_cost_per_hour=latest.cost_per_hour, current_cost_per_hour=current,
                   saving_ratio=1 - current / baseline if baseline else None, saved_usd=saved, detail=latest.baseline_detail)
