"""The replay results table, on the state database's `Base` (created when the database is opened).

One row per replay: what was replayed and the report as JSON (per-request results are not
kept: a report holds the per-model percentiles and counts the dashboard and calibration read).
New table only, so opening an older database adds it and touches nothing else.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.ledger.tables import ENV
from orchestrator.state.tables import UtcDateTime
from orchestrator.state.tables import Base


class ReplayRun(Base):
    """One `orchestrator replay`: when, which trace, and its report (ReplayReport as JSON)."""

    __tablename__ = "replay_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(ENV, index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    trace: Mapped[str] = mapped_column(Text)
    speed: Mapped[float] = mapped_column(Float)
    scale: Mapped[float] = mapped_column(Float)
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    all_met: Mapped[bool] = mapped_column(doc="Every model met its SLO.")
    report_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="done")
