"""Planned against billed: the ledger's cost per provider and day next to what the provider billed for it.

Billed means FOCUS `BilledCost` (in USD) of the rows tagged with this environment (`env`
tag, which every stack puts on its pools). Cloud provider-days the ledger has but no bill
covers yet are `unbilled` (exports lag a day or two); owned capacity has no bill and is left out
unless one was imported for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from orchestrator.ledger.tables import BilledDay, LedgerDay
from orchestrator.state import StateStore

BILLED_PROVIDERS = frozenset({"aws", "gcp", "azure"})
Status = Literal["ok", "over", "under", "unbilled", "unplanned"]


class ReconcileRow(BaseModel):
    """One provider-day: ledger vs billed, and whether they agree within the tolerance."""

    model_config = ConfigDict(frozen=True)

    provider: str
    day: dt.date
    ledger_usd: float
    billed_usd: float | None
    difference_usd: float | None
    status: Status


def reconcile(store: StateStore, environment: str, first_day: dt.date, end_day: dt.date, tolerance: float) -> list[ReconcileRow]:
    """Provider-days in [first_day, end_day) with ledger cost or billed cost, oldest first."""
    with store.session() as session:
        ledger = dict(((p, d), c) for p, d, c in session.execute(
            select(LedgerDay.provider, LedgerDay.day, func.sum(LedgerDay.cost_usd))
            .where(LedgerDay.environment == environment, LedgerDay.day >= first_day, LedgerDay.day < end_day)
            .group_by(LedgerDay.provider, LedgerDay.day)))
        billed = dict(((p, d), c) for p, d, c in session.execute(
            select(BilledDay.provider, BilledDay.day, func.sum(BilledDay.billed_cost))
            .where(BilledDay.environment == environment, BilledDay.env_tag == environment, BilledDay.currency == "USD",
                   BilledDay.day >= first_day, BilledDay.day < end_day)
            .group_by(BilledDay.provider, BilledDay.day)))
    rows = []
    for key in sorted(ledger.keys() | billed.keys(), key=lambda k: (k[1], k[0])):
        provider, day = key
        planned, bill = ledger.get(key, 0.0), billed.get(key)
        if bill is None and provider not in BILLED_PROVIDERS:
            continue
        rows.append(ReconcileRow(provider=provider, day=day, ledger_usd=planned, billed_usd=bill,
                                 difference_usd=None if bill is None else bill - planned,
                                 status=_status(planned, bill, tolerance)))
    return rows


def _status(planned: float, billed: float | None, tolerance: float) -> Status:
    if billed is None:
        return "unbilled"
    if planned == 0 and billed > 0:
        return "unplanned"
    if abs(billed - planned) <= tolerance * max(abs(planned), abs(billed)):
        return "ok"
    return "over" if billed > planned else "under"
