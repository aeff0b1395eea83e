"""Accrual: from what ran (spans), what it cost (price points) and what it served (tokens) to hourly rows.

Pure arithmetic over the ledger's facts, kept apart from the database so it can be checked
by hand. For each pool, time is cut wherever anything changes — a span starts or ends, a
price changes, an hour begins — and within each piece every quantity is constant:

    cost       = nodes x price in force x hours
    gpu_hours  = nodes x gpus_per_node x hours
    used       = sum over models of replicas x gpus_per_replica x hours

Each piece's cost and provisioned GPU-hours go to the models the pool hosts in proportion to
the GPUs their replicas hold (to model '' while it hosts none). Tokens are counted in the
hour they were scraped. Times are seconds since the epoch (UTC).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

HOUR_S = 3600.0


def hour_floor(t: float) -> float:
    return math.floor(t / HOUR_S) * HOUR_S


@dataclass(frozen=True)
class PoolFacts:
    """A pool as one span describes it (the shape of its nodes and their number)."""

    provider: str
    region: str
    capacity: str
    gpu: str
    gpus_per_node: int
    nodes: int


@dataclass(frozen=True)
class Span:
    """`value` holds from `start` until `end` (None: still holding)."""

    start: float
    end: float | None
    value: object


@dataclass
class PoolHistory:
    """Everything that happened to one pool: node spans (PoolFacts), replica spans per model ((count, gpus)), prices."""

    nodes: list[Span] = field(default_factory=list)
    replicas: dict[str, list[Span]] = field(default_factory=lambda: defaultdict(list))
    prices: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Accrual:
    """One (hour, pool, model) row of the ledger."""

    hour: float
    pool: str
    model: str
    facts: PoolFacts
    node_hours: float = 0.0
    gpu_hours: float = 0.0
    used_gpu_hours: float = 0.0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    generation_tokens: int = 0


@dataclass(frozen=True)
class TokenCount:
    hour: float
    pool: str
    model: str
    provider: str
    prompt_tokens: int
    generation_tokens: int


def accrue(pools: dict[str, PoolHistory], tokens: list[TokenCount], start: float, end: float) -> list[Accrual]:
    """The ledger rows of [start, end): one per hour, pool and model that had cost or tokens.

    `tokens` are the hourly counts within the window (the caller selects them).
    """
    rows: dict[tuple[float, str, str], Accrual] = {}
    for name, history in pools.items():
        _accrue_pool(name, history, start, end, rows)
    last_facts = {name: _last_facts(history) for name, history in pools.items()}
    for count in tokens:
        key = (count.hour, count.pool, count.model)
        row = rows.get(key)
        if row is None:  # served where the ledger has no cost this hour (replicas never recorded as applied)
            facts = last_facts.get(count.pool) or PoolFacts(count.provider, "", "", "", 0, 0)
            row = rows[key] = Accrual(count.hour, count.pool, count.model, facts)
        row.prompt_tokens += count.prompt_tokens
        row.generation_tokens += count.generation_tokens
    return sorted(rows.values(), key=lambda r: (r.hour, r.pool, r.model))


def _last_facts(history: PoolHistory) -> PoolFacts | None:
    return max(history.nodes, key=lambda s: s.start).value if history.nodes else None  # type: ignore[return-value]


def _events(history: PoolHistory) -> list[tuple[float, int, str, str | None, object]]:
    """(time, order, kind, model, value); at one time, ends (order 0) come before starts and prices (1)."""
    events: list[tuple[float, int, str, str | None, object]] = []
    for span in history.nodes:
        events.append((span.start, 1, "nodes", None, span.value))
        if span.end is not None:
            events.append((span.end, 0, "nodes", None, None))
    for model, spans in history.replicas.items():
        for span in spans:
            events.append((span.start, 1, "replicas", model, span.value))
            if span.end is not None:
                events.append((span.end, 0, "replicas", model, None))
    events.extend((t, 1, "price", None, price) for t, price in history.prices)
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def _accrue_pool(name: str, history: PoolHistory, start: float, end: float, rows: dict) -> None:
    facts: PoolFacts | None = None
    price = 0.0
    replicas: dict[str, tuple[int, int]] = {}
    at = start
    for t, _order, kind, model, value in _events(history):
        if t > at:
            if t >= end:
                break
            _piece(name, facts, price, replicas, at, t, rows)
            at = t
        if kind == "nodes":
            facts = value  # type: ignore[assignment]
        elif kind == "price":
            price = value  # type: ignore[assignment]
        elif value is None:
            replicas.pop(model, None)  # type: ignore[arg-type]
        else:
            replicas[model] = value  # type: ignore[index,assignment]
    if at < end:
        _piece(name, facts, price, replicas, at, end, rows)


def _piece(name: str, facts: PoolFacts | None, price: float, replicas: dict[str, tuple[int, int]],
           start: float, end: float, rows: dict) -> None:
    """Accrue [start, end), during which nothing changes, hour by hour."""
    if facts is None or facts.nodes == 0:
        return
    held = {model: count * gpus for model, (count, gpus) in replicas.items() if count * gpus > 0}
    total_held = sum(held.values())
    shares = {model: g / total_held for model, g in held.items()} if total_held else {"": 1.0}
    at = start
    while at < end:
        hour = hour_floor(at)
        until = min(end, hour + HOUR_S)
        hours = (until - at) / HOUR_S
        for model, share in shares.items():
            row = rows.get((hour, name, model))
            if row is None:
                row = rows[(hour, name, model)] = Accrual(hour, name, model, facts)
            row.facts = facts
            row.node_hours += facts.nodes * hours * share
            row.gpu_hours += facts.nodes * facts.gpus_per_node * hours * share
            row.used_gpu_hours += held.get(model, 0) * hours
            row.cost_usd += facts.nodes * price * hours * share
        at = until
