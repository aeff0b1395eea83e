"""Serving against the SLO, for the dashboard: each replica's and pool's latency, queue, KV cache and request rate,
beside the plan's SLO targets and promised rate, and the latest replays.

Live figures come from the replicas' vLLM `/metrics` (`vllm_serving`), scraped when the page is
drawn. A `ServingMonitor` keeps the scrapes of the last `window_s` seconds (and, per replica, the
newest older one while there is none since), so latency quantiles and request rates are over the
window between the oldest kept scrape and now (as PromQL's `increase` over a range); on the
first scrape they are since each replica started and there is no rate yet. Pool rows add their replicas' histograms and rates (`sum by (le, pool)`); queue is
summed, KV-cache use averaged. Replays are read from the state database's `replay_runs`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from pydantic import ValidationError
from sqlalchemy import select

from orchestrator.dashboard.vllm_serving import Histogram, ReplicaServing, parse_serving
from orchestrator.errors import InputError
from orchestrator.ledger.tokens import SCRAPE_TIMEOUT_S, ReplicaTarget, replica_targets
from orchestrator.planner.placement import Placement
from orchestrator.replay.report import ReplayReport
from orchestrator.replay.tables import ReplayRun
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)

WINDOW_S = 300.0  # the live window: five minutes, long enough for a p95 of a few requests a second
RECENT_REPLAYS = 5


@dataclass(frozen=True)
class Scrape:
    """One replica's serving figures at one time."""

    at: dt.datetime
    target: ReplicaTarget
    serving: ReplicaServing


@dataclass(frozen=True)
class ServingRow:
    """Serving of one replica, or of one (model, pool) when `replica` is None, over `window_s` (None: since start)."""

    model: str
    pool: str
    replica: str | None
    replicas: int
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tpot_p50_ms: float | None
    tpot_p95_ms: float | None
    requests_per_s: float | None
    waiting: float
    running: float
    kv_cache_use: float
    window_s: float | None


@dataclass(frozen=True)
class SloTarget:
    model: str
    ttft_p95_ms: float
    tpot_p95_ms: float


@dataclass(frozen=True)
class PoolPromise:
    """What the plan routes to one (model, pool) and what its replicas there sustain within the SLO."""

    model: str
    pool: str
    planned_rps: float
    capacity_rps: float


@dataclass(frozen=True)
class ReplayView:
    """A stored replay: when, what, and its report."""

    started_at: dt.datetime
    trace: str
    report: ReplayReport


@dataclass(frozen=True)
class ServingSummary:
    at: dt.datetime
    rows: list[ServingRow]
    targets: list[SloTarget]
    promises: list[PoolPromise]
    replays: list[ReplayView]
    unreachable: list[str] = field(default_factory=list)
    replicas_known: int = 0


def aggregate(latest: list[Scrape], earliest: dict[str, Scrape]) -> list[ServingRow]:
    """Rows per (model, pool) — the pool row first, then its replicas — from each replica's latest scrape and
    its earliest kept one (`earliest[replica]`; the same scrape or none: since the replica started, no rate)."""
    by_pool: dict[tuple[str, str], list[ServingRow]] = {}
    histograms: dict[tuple[str, str], tuple[Histogram, Histogram]] = {}
    for scrape in sorted(latest, key=lambda s: (s.target.model, s.target.pool, s.target.replica)):
        t = scrape.target
        first = earliest.get(t.replica)
        window = (scrape.at - first.at).total_seconds() if first is not None and first.at < scrape.at else None
        ttft, tpot, finished = scrape.serving.ttft, scrape.serving.tpot, scrape.serving.finished
        rate = None
        if window is not None:
            ttft, tpot = ttft.since(first.serving.ttft), tpot.since(first.serving.tpot)
            done = finished - first.serving.finished
            rate = (done if done >= 0 else finished) / window  # a counter that went back: the replica restarted
        at_scrape = scrape.serving
        by_pool.setdefault((t.model, t.pool), []).append(
            _row(t.model, t.pool, t.replica, 1, ttft, tpot, rate, (at_scrape.waiting, at_scrape.running, at_scrape.kv_cache_use), window))
        ttft_sum, tpot_sum = histograms.get((t.model, t.pool), (Histogram(), Histogram()))
        histograms[(t.model, t.pool)] = (ttft_sum + ttft, tpot_sum + tpot)
    rows: list[ServingRow] = []
    for (model, pool), replicas in by_pool.items():
        rates = [r.requests_per_s for r in replicas]
        windows = [r.window_s for r in replicas if r.window_s is not None]
        gauges = (sum(r.waiting for r in replicas), sum(r.running for r in replicas),
                  sum(r.kv_cache_use for r in replicas) / len(replicas))
        rows.append(_row(model, pool, None, len(replicas), *histograms[(model, pool)],
                         None if None in rates else sum(r for r in rates if r is not None), gauges,
                         max(windows) if len(windows) == len(replicas) else None))
        rows.extend(replicas)
    return rows


def _row(model: str, pool: str, replica: str | None, replicas: int, ttft: Histogram, tpot: Histogram, rate: float | None,
         gauges: tuple[float, float, float], window_s: float | None) -> ServingRow:
    """A row from its histograms, rate and (waiting, running, KV-cache use)."""
    def ms(h: Histogram, q: float) -> float | None:
        value = h.quantile(q)
        return None if value is None else value * 1000

    return ServingRow(model=model, pool=pool, replica=replica, replicas=replicas, ttft_p50_ms=ms(ttft, 0.5),
                      ttft_p95_ms=ms(ttft, 0.95), tpot_p50_ms=ms(tpot, 0.5), tpot_p95_ms=ms(tpot, 0.95), requests_per_s=rate,
                      waiting=gauges[0], running=gauges[1], kv_cache_use=gauges[2], window_s=window_s)


def slo_targets(placement: Placement | None) -> list[SloTarget]:
    """Each model's SLO as the plan carries it."""
    if placement is None:
        return []
    return [SloTarget(m.model, m.ttft_p95_ms, m.tpot_p95_ms) for m in placement.models]


def pool_promises(placement: Placement | None) -> list[PoolPromise]:
    """Per (model, pool) the plan runs replicas in: the req/s routed there (its size buckets' planned rates, or its
    share of the served demand x peak factor) and the replicas' capacity (count x req/s per replica)."""
    if placement is None:
        return []
    demand = {(d.model, d.region): d.rps * d.peak_factor for d in placement.demand}
    for u in placement.unserved:
        if u.region is not None and (u.model, u.region) in demand:
            demand[(u.model, u.region)] = max(0.0, demand[(u.model, u.region)] - u.rps)
    planned: dict[tuple[str, str], float] = {}
    for r in placement.routes:
        routed = sum(r.bucket_rps) if r.bucket_rps else r.share * demand.get((r.model, r.region), 0.0)
        planned[(r.model, r.pool)] = planned.get((r.model, r.pool), 0.0) + routed
    per_replica = {(c.model, c.pool): c.rps_per_replica for c in placement.capacity}
    return [PoolPromise(r.model, r.pool, planned.get((r.model, r.pool), 0.0), r.count * per_replica.get((r.model, r.pool), 0.0))
            for r in sorted(placement.replicas, key=lambda r: (r.model, r.pool)) if r.count > 0]


def recent_replays(store: StateStore, environment: str, limit: int = RECENT_REPLAYS) -> list[ReplayView]:
    """The environment's latest stored replays, newest first; a report this version cannot read is skipped (logged)."""
    with store.session() as session:
        rows = session.execute(select(ReplayRun.id, ReplayRun.started_at, ReplayRun.trace, ReplayRun.report_json)
                               .where(ReplayRun.environment == environment)
                               .order_by(ReplayRun.started_at.desc(), ReplayRun.id.desc()).limit(limit)).all()
    views = []
    for run_id, started_at, trace, report_json in rows:
        try:
            views.append(ReplayView(started_at, trace, ReplayReport.model_validate_json(report_json)))
        except ValidationError as exc:
            logger.warning("replay run %s of %s: its stored report is not one this version reads (%s); left out",
                           run_id, environment, exc.errors()[0]["msg"])
    return views


class ServingMonitor:
    """Scrapes the environment's ready replicas on demand and keeps the last `window_s` seconds of scrapes."""

    def __init__(self, store: StateStore, environment: str, placement: Callable[[], Placement | None],
                 window_s: float = WINDOW_S, http: httpx.Client | None = None) -> None:
        self.store = store
        self.environment = environment
        self.placement = placement
        self.window_s = window_s
        self.http = http or httpx.Client(timeout=SCRAPE_TIMEOUT_S)
        self.kept: deque[Scrape] = deque()
        self.lock = threading.Lock()  # the server draws pages on several threads

    def observe(self, now: dt.datetime) -> tuple[list[Scrape], list[str]]:
        """Scrape every ready replica now; returns the scrapes and the URLs that did not answer."""
        targets = replica_targets(self.store, self.environment)

        def one(target: ReplicaTarget) -> Scrape | None:
            try:
                response = self.http.get(f"{target.url}/metrics")
                response.raise_for_status()
                return Scrape(now, target, parse_serving(response.text, target.model))
            except (httpx.HTTPError, ValueError) as exc:
                logger.warning("serving scrape of %s (%s@%s) failed: %s", target.url, target.model, target.pool, exc)
                return None

        with ThreadPoolExecutor(max_workers=8) as workers:
            found = list(workers.map(one, targets))
        scrapes = [s for s in found if s is not None]
        self._forget(now)
        self.kept.extend(scrapes)
        return scrapes, [t.url for t, s in zip(targets, found, strict=True) if s is None]

    def _forget(self, now: dt.datetime) -> None:
        """Drop scrapes older than the window, but each replica's newest such one while it has no later one: a page
        not viewed for longer than the window then shows the time since it was last viewed."""
        newest_old: dict[str, Scrape] = {}
        for scrape in self.kept:
            if (now - scrape.at).total_seconds() > self.window_s:
                newest_old[scrape.target.replica] = scrape
        self.kept = deque(s for s in self.kept if newest_old.get(s.target.replica, s) is s)

    def summary(self, now: dt.datetime) -> ServingSummary:
        """Scrape now and summarize the window, beside the plan's targets and promise and the latest replays."""
        with self.lock:
            latest, unreachable = self.observe(now)
            earliest: dict[str, Scrape] = {}
            for scrape in self.kept:
                earliest.setdefault(scrape.target.replica, scrape)
        placement = self.latest_placement()
        return ServingSummary(at=now, rows=aggregate(latest, earliest), targets=slo_targets(placement),
                              promises=pool_promises(placement), replays=recent_replays(self.store, self.environment),
                              unreachable=unreachable, replicas_known=len(latest) + len(unreachable))

    def latest_placement(self) -> Placement | None:
        """The plan the SLO lines and promised rates come from; None (logged) when it cannot be read."""
        try:
            return self.placement()
        except InputError as exc:
            logger.warning("serving: the latest plan of %s cannot be read: %s", self.environment, exc)
            return None

    def close(self) -> None:
        self.http.close()
