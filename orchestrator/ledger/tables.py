"""The ledger's tables, on the state database's `Base`.

Facts, appended as they happen and never rewritten:
    ledger_applies        each placement applied: when, its planned $/h, the single-cloud baseline's
    ledger_pool_spans     nodes a pool ran, from when to when (open while `ended_at` is null)
    ledger_replica_spans  replicas of a model a pool ran, from when to when
    ledger_prices         a pool's price per node-hour from a moment on (the price in force)
    ledger_token_cursors  each replica's last scraped token counters (to turn counters into deltas)
    ledger_token_hours    tokens served per hour, model and pool
    ledger_counter_samples each replica's request and token counters at each scrape, kept 8 days
                          (what demand measured over a window reads: orchestrator/demand/measured.py)
    billed_days           FOCUS billing imports, summed per provider, account, day and tags
    billing_imports       which file each import came from

Derived, rebuilt from the facts whenever they change:
    ledger_entries        accrued cost, GPU-hours and tokens per hour, pool and model
    ledger_days           the same summed per UTC day (what windows longer than two days read)
    ledger_watermarks     up to when both are current, per environment

Times are stored as naive UTC (SQLite keeps no zone) and read back as aware UTC.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.state.tables import Base, UtcDateTime

ENV = String(63)
NAME = String(63)
UNALLOCATED = ""  # the model of an entry for a pool's cost while it hosts no replica


class LedgerApply(Base):
    """A placement applied to an environment (by rebalance, or `spend record` until it records itself)."""

    __tablename__ = "ledger_applies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(ENV, index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    placement_sha256: Mapped[str] = mapped_column(String(64), doc="Digest of the placement JSON: re-recording it is a no-op.")
    cost_per_hour: Mapped[float] = mapped_column(Float, doc="The placement's planned $/h.")
    baseline_cost_per_hour: Mapped[float | None] = mapped_column(Float, nullable=True, doc="Baseline (a), single cloud, $/h.")
    baseline_detail: Mapped[str] = mapped_column(Text, default="")


class PoolSpan(Base):
    """A pool running `nodes` nodes from `started_at` until `ended_at` (null: still running)."""

    __tablename__ = "ledger_pool_spans"
    __table_args__ = (Index("ix_ledger_pool_spans_open", "environment", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(ENV)
    pool: Mapped[str] = mapped_column(NAME)
    provider: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(NAME)
    capacity: Mapped[str] = mapped_column(String(16), doc="on_demand, spot, reserved or owned")
    gpu: Mapped[str] = mapped_column(NAME)
    gpus_per_node: Mapped[int] = mapped_column(Integer)
    nodes: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ReplicaSpan(Base):
    """`count` replicas of a model in a pool, each holding `gpus_per_replica` GPUs, over a span of time."""

    __tablename__ = "ledger_replica_spans"
    __table_args__ = (Index("ix_ledger_replica_spans_open", "environment", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(ENV)
    model: Mapped[str] = mapped_column(NAME)
    pool: Mapped[str] = mapped_column(NAME)
    count: Mapped[int] = mapped_column(Integer)
    gpus_per_replica: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class PricePoint(Base):
    """From `effective_from` on, one node-hour of the pool costs `cost_per_node_hour` USD (until the next point)."""

    __tablename__ = "ledger_prices"

    environment: Mapped[str] = mapped_column(ENV, primary_key=True)
    pool: Mapped[str] = mapped_column(NAME, primary_key=True)
    effective_from: Mapped[dt.datetime] = mapped_column(UtcDateTime, primary_key=True)
    cost_per_node_hour: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16), doc="plan (the placement's price) or catalog (re-priced later)")


class TokenCursor(Base):
    """A replica's token counters at its last scrape; the next scrape's delta is taken against these."""

    __tablename__ = "ledger_token_cursors"

    environment: Mapped[str] = mapped_column(ENV, primary_key=True)
    replica: Mapped[str] = mapped_column(String(255), primary_key=True, doc="URL, plus #pid where known (a restart resets counters).")
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    prompt_tokens_total: Mapped[float] = mapped_column(Float)
    generation_tokens_total: Mapped[float] = mapped_column(Float)


class TokenHour(Base):
    """Tokens a model's replicas in a pool served within one hour (deltas of vLLM's counters)."""

    __tablename__ = "ledger_token_hours"

    environment: Mapped[str] = mapped_column(ENV, primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(UtcDateTime, primary_key=True)
    model: Mapped[str] = mapped_column(NAME, primary_key=True)
    pool: Mapped[str] = mapped_column(NAME, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    generation_tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class CounterSample(Base):
    """One replica's vLLM counters (totals since it started) at one scrape: what a window's rates are taken from.

    Unlike the cursors (the last scrape only) and the token hours (hourly sums), samples keep their
    time, so requests and tokens over any recent window are differences between two samples.
    Samples older than `tokens.SAMPLE_RETENTION` are deleted as new ones are recorded.
    """

    __tablename__ = "ledger_counter_samples"
    __table_args__ = (Index("ix_ledger_counter_samples_at", "environment", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(ENV)
    replica: Mapped[str] = mapped_column(String(255), doc="URL, plus #pid where known (a restart resets counters).")
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    model: Mapped[str] = mapped_column(NAME)
    pool: Mapped[str] = mapped_column(NAME)
    requests_total: Mapped[float | None] = mapped_column(
        Float, nullable=True, doc="vllm:request_success_total (finished requests, all finish reasons); null if not exposed.")
    prompt_tokens_total: Mapped[float] = mapped_column(Float)
    generation_tokens_total: Mapped[float] = mapped_column(Float)
    requests_waiting: Mapped[float | None] = mapped_column(
        Float, nullable=True, doc="vllm:num_requests_waiting at the scrape (a gauge); null if not exposed.")


class LedgerEntry(Base):
    """One hour of one pool's cost attributed to one model (model '' while the pool hosts none).

    A pool's cost in a moment is nodes x price in force; it is split over the models it hosts
    by their share of the GPUs replicas hold, so idle GPUs of a shared pool are paid by the
    models using it (fully loaded cost per token).
    """

    __tablename__ = "ledger_entries"

    environment: Mapped[str] = mapped_column(ENV, primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(UtcDateTime, primary_key=True)
    pool: Mapped[str] = mapped_column(NAME, primary_key=True)
    model: Mapped[str] = mapped_column(NAME, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, doc="UTC day of `hour` (groups without dialect-specific date functions).")
    provider: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(NAME)
    capacity: Mapped[str] = mapped_column(String(16))
    gpu: Mapped[str] = mapped_column(NAME)
    node_hours: Mapped[float] = mapped_column(Float)
    gpu_hours: Mapped[float] = mapped_column(Float, doc="GPU-hours provisioned, this model's share.")
    used_gpu_hours: Mapped[float] = mapped_column(Float, doc="GPU-hours this model's replicas held.")
    cost_usd: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    generation_tokens: Mapped[int] = mapped_column(BigInteger)


class LedgerDay(Base):
    """`ledger_entries` summed per UTC day, pool and model: a year of a large fleet is 24 times fewer rows to scan."""

    __tablename__ = "ledger_days"

    environment: Mapped[str] = mapped_column(ENV, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    pool: Mapped[str] = mapped_column(NAME, primary_key=True)
    model: Mapped[str] = mapped_column(NAME, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(NAME)
    capacity: Mapped[str] = mapped_column(String(16))
    gpu: Mapped[str] = mapped_column(NAME)
    node_hours: Mapped[float] = mapped_column(Float)
    gpu_hours: Mapped[float] = mapped_column(Float)
    used_gpu_hours: Mapped[float] = mapped_column(Float)
    cost_usd: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    generation_tokens: Mapped[int] = mapped_column(BigInteger)


SUMMED = ("node_hours", "gpu_hours", "used_gpu_hours", "cost_usd", "prompt_tokens", "generation_tokens")


class LedgerWatermark(Base):
    """`ledger_entries` (and `ledger_days` for the days before it) of an environment are current before `valid_until`."""

    __tablename__ = "ledger_watermarks"

    environment: Mapped[str] = mapped_column(ENV, primary_key=True)
    valid_until: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class BillingImport(Base):
    """One FOCUS file imported: where from, its digest (re-importing it replaces it), what it held."""

    __tablename__ = "billing_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(ENV, index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    focus_version: Mapped[str] = mapped_column(String(8))
    rows: Mapped[int] = mapped_column(BigInteger)
    imported_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class BilledDay(Base):
    """Billed cost of one provider, billing account and UTC day, per gpufleet tags (`env`, `pool`) and currency.

    A later import covering the same provider, account and day replaces these rows
    (providers restate their exports as a month closes).
    """

    __tablename__ = "billed_days"
    __table_args__ = (Index("ix_billed_days_day", "environment", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(ENV, doc="The environment the file was imported into.")
    import_id: Mapped[int] = mapped_column(Integer, index=True)
    provider: Mapped[str] = mapped_column(String(32))
    billing_account: Mapped[str] = mapped_column(String(255))
    day: Mapped[dt.date] = mapped_column(Date)
    env_tag: Mapped[str] = mapped_column(String(255), doc="The row's `env` tag ('' untagged): which environment it bills.")
    pool_tag: Mapped[str] = mapped_column(String(255))
    service_category: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(8))
    billed_cost: Mapped[float] = mapped_column(Float)
    effective_cost: Mapped[float] = mapped_column(Float)
    list_cost: Mapped[float] = mapped_column(Float)
    rows: Mapped[int] = mapped_column(BigInteger)
