"""Fuzzing FOCUS imports through `spend import`: hostile exports end in exit 0 or 2 (never a traceback), in
bounded time, with nothing of a refused file stored, and no NaN or Infinity in the ledger or the JSON."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from orchestrator.billing.focus import REQUIRED_COLUMNS
from orchestrator.ledger import open_ledger
from orchestrator.ledger.tables import BilledDay, BillingImport
from orchestrator.settings import load_settings
from tests.conftest import REPO
from tests.orchestrator.test_fuzz_spec import not_finite, run

HOSTILE_COSTS = ["NaN", "nan", "inf", "-Infinity", "1e400", "-1e400", "1e308", "", "NULL", "abc", "1,5", "0x10", "1e9", "-1e9"]
HOSTILE_TIMES = ["0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "-0001-06-01", "infinity", "-infinity", "2024-13-01",
                 "", "yesterday", "1969-12-31T23:59:59Z", "2199-12-31T23:00:00Z"]
FILE_NAMES = ["bill.csv", "*.csv", "b[1].csv", "?.csv", "bill.csv.gz", "bill.parquet", "bill.txt"]

NUMBERS, TIMES = ["BilledCost", "EffectiveCost", "ListCost"], ["ChargePeriodStart", "ChargePeriodEnd"]
sane_times = st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2199, 12, 31)).map(lambda d: d.isoformat() + "Z")
rows = st.fixed_dictionaries({
    **dict.fromkeys(NUMBERS, st.floats(-1e6, 1e6).map(repr)), **dict.fromkeys(TIMES, sane_times),
    "BillingCurrency": st.sampled_from(["USD", "EUR", "", "💸"]), "BillingAccountId": st.text(max_size=12),
    "ChargeCategory": st.just("Usage"), "ProviderName": st.sampled_from(["AWS", "Microsoft", "Google Cloud", "", "x" * 300]),
    "ServiceCategory": st.text(max_size=12),
    "Tags": st.one_of(st.just('{"env": "local"}'), st.text(max_size=30), st.just('{"env": ' * 50)),
})
# one cell of one row made hostile, or none
damage = st.one_of(st.none(), st.tuples(st.integers(0, 4), st.sampled_from(NUMBERS),
                                        st.one_of(st.floats().map(repr), st.sampled_from(HOSTILE_COSTS))),
                   st.tuples(st.integers(0, 4), st.sampled_from(TIMES),
                             st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), st.sampled_from(HOSTILE_TIMES))))


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.lists(rows, min_size=1, max_size=5), hurt=damage, name=st.sampled_from(FILE_NAMES), doubled=st.booleans())
def test_import_of_a_hostile_export_fails_cleanly_or_stores_finite_costs(data: list[dict], hurt: tuple | None, name: str,
                                                                        doubled: bool) -> None:
    if hurt is not None:
        row, column, value = hurt
        data[row % len(data)][column] = value
    with tempfile.TemporaryDirectory() as scratch, mock.patch.dict(os.environ, {"GPUFLEET_HOME": str(Path(scratch) / "home")}):
        bill = Path(scratch) / name
        header = [*REQUIRED_COLUMNS, "Tags", *(["billedcost"] if doubled else [])]
        with bill.open("w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([[row[c] for c in REQUIRED_COLUMNS] + [row["Tags"]] + (["0"] if doubled else []) for row in data])
        started = time.monotonic()
        code, out, err = run("spend", "import", str(bill), "--env", "local", "--format", "json")
        assert time.monotonic() - started < 10
        assert code in (0, 2), err
        assert "Traceback" not in err
        event(f"exit {code}")
        document = json.loads(out, parse_constant=not_finite)
        store = open_ledger(load_settings(), "local")
        try:
            with store.session() as session:
                imports = session.scalars(select(BillingImport)).all()
                days = session.scalars(select(BilledDay)).all()
        finally:
            store.close()
        if code:
            assert set(document) == {"error"} and imports == [] and days == []
        else:
            assert len(imports) == 1 and days
            assert all(math.isfinite(v) for d in days for v in (d.billed_cost, d.effective_cost, d.list_cost))
