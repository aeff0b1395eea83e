"""Tokens served, from vLLM's Prometheus counters (`vllm:prompt_tokens_total`, `vllm:generation_tokens_total`).

A scrape reads every ready replica's counters; recording it turns counters into deltas
against the replica's previous scrape and adds them to the hour of the scrape. A counter
lower than before means the replica restarted, so the whole value is new. A replica seen
for the first time counts everything since it started (vLLM's counters start at zero), so
no token is lost to the gap before the first scrape; it lands in that scrape's hour.

Each scrape is also kept as it was read — every replica's request and token counters (and
its waiting queue) at the scrape's time — for `SAMPLE_RETENTION`, so that demand can be
measured over a recent window as the difference of two samples (`counter_samples`,
orchestrator/demand/measured.py).

Scrapes run on a schedule in a running dashboard, in `spend record`, and wherever a caller
holds replica URLs (`status`, `rebalance`: `collect_tokens`).
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import httpx
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, insert, select

from orchestrator.gateway import metrics as vllm_metrics
from orchestrator.ledger.accrual import hour_floor
from orchestrator.ledger.record import invalidate
from orchestrator.ledger.tables import CounterSample, TokenCursor, TokenHour
from orchestrator.state import ReplicaRecord, ReplicaStatus, StateStore

logger = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 2.0
SAMPLE_RETENTION = dt.timedelta(days=8)  # counter samples are kept this long: the longest window demand can be measured over


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReplicaTarget(_Row):
    """A replica whose `/metrics` can be scraped."""

    model: str
    pool: str
    provider: str
    url: str
    replica: str = Field(description="Identity across scrapes: the URL, plus #pid where known.")


class ReplicaTokens(_Row):
    """One replica's token counters at one scrape (totals since it started)."""

    replica: str
    model: str
    pool: str
    provider: str
    prompt_tokens_total: float = Field(ge=0)
    generation_tokens_total: float = Field(ge=0)
    requests_total: float | None = Field(None, ge=0, description="Finished requests (vllm:request_success_total); "
                                         "None when the replica does not expose it.")
    requests_waiting: float | None = Field(None, ge=0, description="Requests queued at the scrape (vllm:num_requests_waiting).")


class ReplicaSample(_Row):
    """One replica's counters at one recorded scrape, as read back from `ledger_counter_samples`."""

    replica: str
    model: str
    pool: str
    at: dt.datetime
    requests_total: float | None
    prompt_tokens_total: float
    generation_tokens_total: float
    requests_waiting: float | None


class TokenScrape(_Row):
    at: dt.datetime
    replicas: list[ReplicaTokens]


def replica_targets(store: StateStore, environment: str) -> list[ReplicaTarget]:
    """The environment's ready replicas as providers recorded them (read-only)."""
    with store.session() as session:
        records = session.scalars(select(ReplicaRecord).where(
            ReplicaRecord.environment == environment, ReplicaRecord.status == ReplicaStatus.ready)).all()
        return [ReplicaTarget(model=r.model, pool=r.pool, provider=r.provider, url=r.url,
                              replica=f"{r.url}#{r.pid}" if r.pid else r.url) for r in records if r.url]


def scrape_tokens(targets: list[ReplicaTarget], at: dt.datetime, http: httpx.Client) -> TokenScrape:
    """Read every target's token counters; a replica that does not answer is left out (and logged)."""

    def one(target: ReplicaTarget) -> ReplicaTokens | None:
        try:
            values = vllm_metrics.scrape(http, target.url, target.model)
        except (httpx.HTTPError, ValueError) as exc:  # no answer, an error status, or not Prometheus text
            logger.warning("token scrape of %s (%s@%s) failed: %s", target.url, target.model, target.pool, exc)
            return None
        return ReplicaTokens(replica=target.replica, model=target.model, pool=target.pool, provider=target.provider,
                             prompt_tokens_total=values.get(vllm_metrics.PROMPT_TOKENS, 0.0),
                             generation_tokens_total=values.get(vllm_metrics.GENERATION_TOKENS, 0.0),
                             requests_total=values.get(vllm_metrics.REQUESTS_OK),
                             requests_waiting=values.get(vllm_metrics.WAITING))

    with ThreadPoolExecutor(max_workers=8) as workers:
        found = [r for r in workers.map(one, targets) if r is not None]
    return TokenScrape(at=at, replicas=found)


def record_tokens(store: StateStore, environment: str, scrape: TokenScrape) -> dict[tuple[str, str], tuple[int, int]]:
    """Add the tokens served since each replica's previous scrape to the scrape's hour, and keep the scrape's samples.

    Returns (model, pool) -> (prompt, generation) tokens added. Samples older than
    `SAMPLE_RETENTION` before the scrape are deleted.
    """
    hour = dt.datetime.fromtimestamp(hour_floor(scrape.at.timestamp()), dt.UTC)
    added: dict[tuple[str, str], tuple[int, int]] = {}
    with store.session() as session:
        cursors = {c.replica: c for c in session.scalars(select(TokenCursor).where(
            TokenCursor.environment == environment, TokenCursor.replica.in_([t.replica for t in scrape.replicas])))}
        hours = {(h.model, h.pool): h for h in session.scalars(select(TokenHour).where(
            TokenHour.environment == environment, TokenHour.hour == hour))}
        for tokens in scrape.replicas:
            cursor = cursors.get(tokens.replica)
            prompt = _delta(tokens.prompt_tokens_total, cursor.prompt_tokens_total if cursor else None)
            generation = _delta(tokens.generation_tokens_total, cursor.generation_tokens_total if cursor else None)
            if cursor is None:
                cursor = cursors[tokens.replica] = TokenCursor(environment=environment, replica=tokens.replica)
                session.add(cursor)
            cursor.at = scrape.at
            cursor.prompt_tokens_total = tokens.prompt_tokens_total
            cursor.generation_tokens_total = tokens.generation_tokens_total
            if not (prompt or generation):
                continue
            row = hours.get((tokens.model, tokens.pool))
            if row is None:
                row = hours[(tokens.model, tokens.pool)] = TokenHour(
                    environment=environment, hour=hour, model=tokens.model, pool=tokens.pool, provider=tokens.provider,
                    prompt_tokens=0, generation_tokens=0)
                session.add(row)
            row.prompt_tokens += prompt
            row.generation_tokens += generation
            before = added.get((tokens.model, tokens.pool), (0, 0))
            added[(tokens.model, tokens.pool)] = (before[0] + prompt, before[1] + generation)
        if added:
            invalidate(session, environment, scrape.at)
        if scrape.replicas:
            session.execute(insert(CounterSample.__table__), [
                {"environment": environment, "replica": t.replica, "at": scrape.at, "model": t.model, "pool": t.pool,
                 "requests_total": t.requests_total, "prompt_tokens_total": t.prompt_tokens_total,
                 "generation_tokens_total": t.generation_tokens_total, "requests_waiting": t.requests_waiting}
                for t in scrape.replicas])
        session.execute(delete(CounterSample).where(CounterSample.environment == environment,
                                                    CounterSample.at < scrape.at - SAMPLE_RETENTION))
    return added


def collect_tokens(store: StateStore, environment: str, http: httpx.Client | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """Scrape the environment's ready replicas now and record what they served since the last scrape."""
    targets = replica_targets(store, environment)
    if not targets:
        return {}
    with nullcontext(http) if http is not None else httpx.Client(timeout=SCRAPE_TIMEOUT_S) as client:
        scraped = scrape_tokens(targets, dt.datetime.now(dt.UTC), client)
    return record_tokens(store, environment, scraped)


def _delta(total: float, previous: float | None) -> int:
    """Tokens since the previous reading; the whole counter when there is none or it went back (a restart)."""
    if previous is None or total < previous:
        return round(total)
    return round(total - previous)


def counter_samples(store: StateStore, environment: str, since: dt.datetime, until: dt.datetime) -> list[ReplicaSample]:
    """The environment's recorded samples with `since <= at <= until`, by replica and time."""
    with store.session() as session:
        rows = session.execute(select(
            CounterSample.replica, CounterSample.model, CounterSample.pool, CounterSample.at, CounterSample.requests_total,
            CounterSample.prompt_tokens_total, CounterSample.generation_tokens_total, CounterSample.requests_waiting,
        ).where(CounterSample.environment == environment, CounterSample.at >= since, CounterSample.at <= until)
         .order_by(CounterSample.replica, CounterSample.at, CounterSample.id)).all()
    return [ReplicaSample(replica=r, model=m, pool=p, at=at, requests_total=n, prompt_tokens_total=pt,
                          generation_tokens_total=gt, requests_waiting=w) for r, m, p, at, n, pt, gt, w in rows]


def token_totals(store: StateStore, environment: str) -> list[tuple[str, str, str, int, int]]:
    """(model, pool, provider, prompt, generation) tokens served since the ledger began."""
    with store.session() as session:
        return [tuple(row) for row in session.execute(
            select(TokenHour.model, TokenHour.pool, TokenHour.provider,
                   func.sum(TokenHour.prompt_tokens), func.sum(TokenHour.generation_tokens))
            .where(TokenHour.environment == environment)
            .group_by(TokenHour.model, TokenHour.pool, TokenHour.provider))]
