"""Tables of the state database. Later layers (the rebalance journal, the ledger) add theirs on `Base`.

Rows are facts a provider recorded; whether a replica answers right now is asked of the
replica itself (`orchestrator status` probes), never assumed from a row.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import DateTime, Enum, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state database takes aware UTC times")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:  # noqa: ANN001
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base shared by every gpufleet table."""


class ReplicaStatus(str, enum.Enum):
    """A replica's life: starting → ready → draining → stopped; crashed when its process died unasked."""

    starting = "starting"
    ready = "ready"
    draining = "draining"
    stopped = "stopped"
    crashed = "crashed"


class DesiredReplicas(Base):
    """How many replicas of a model a pool should run, and what each runs (the provider's instructions)."""

    __tablename__ = "desired_replicas"

    environment: Mapped[str] = mapped_column(String(63), primary_key=True)
    model: Mapped[str] = mapped_column(String(63), primary_key=True)
    pool: Mapped[str] = mapped_column(String(63), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    replica_json: Mapped[str] = mapped_column(Text, doc="ReplicaSpec as JSON: source, served name, GPUs, context.")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CanaryReplicas(Base):
    """A rollout's new version beside a model's stable replicas in a pool (`SetCanary`); no row, no canary."""

    __tablename__ = "canary_replicas"

    environment: Mapped[str] = mapped_column(String(63), primary_key=True)
    model: Mapped[str] = mapped_column(String(63), primary_key=True)
    pool: Mapped[str] = mapped_column(String(63), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    replica_json: Mapped[str] = mapped_column(Text, doc="ReplicaSpec of the new version, as JSON.")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class TrafficWeights(Base):
    """How the local gateway splits a model's requests over its versions (`SetTraffic`); no row: by replica count."""

    __tablename__ = "traffic_weights"

    environment: Mapped[str] = mapped_column(String(63), primary_key=True)
    model: Mapped[str] = mapped_column(String(63), primary_key=True)
    weights_json: Mapped[str] = mapped_column(Text, doc='Version -> relative weight, e.g. {"v1": 95, "v2": 5}.')
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AsleepReplicas(Base):
    """A (model, pool) scaled to zero while idle: the supervisor stopped its replicas and starts them on demand."""

    __tablename__ = "asleep_replicas"

    environment: Mapped[str] = mapped_column(String(63), primary_key=True)
    model: Mapped[str] = mapped_column(String(63), primary_key=True)
    pool: Mapped[str] = mapped_column(String(63), primary_key=True)
    since: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class ReplicaRecord(Base):
    """One replica process (local) or pod (Kubernetes) as last seen by its provider."""

    __tablename__ = "replicas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(String(63), index=True)
    model: Mapped[str] = mapped_column(String(63))
    pool: Mapped[str] = mapped_column(String(63))
    provider: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True, doc="Local replicas only.")
    status: Mapped[ReplicaStatus] = mapped_column(Enum(ReplicaStatus, native_enum=False, length=16))
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    log_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    version: Mapped[str | None] = mapped_column(String(40), nullable=True, doc="The model release it runs.")


class GatewayRecord(Base):
    """The gateway (vllm-router) of one site of an environment. Its API key is never stored here."""

    __tablename__ = "gateways"

    environment: Mapped[str] = mapped_column(String(63), primary_key=True)
    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    url: Mapped[str] = mapped_column(String(255))
    metrics_url: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    running: Mapped[bool] = mapped_column(default=True)
    log_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SupervisorRecord(Base):
    """The local provider's supervisor process of an environment (it owns replicas and gateway)."""

    __tablename__ = "local_supervisors"

    environment: Mapped[str] = mapped_column(String(63), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    log_path: Mapped[str] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
