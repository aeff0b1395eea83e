"""`spend export --format focus`: FOCUS 1.0's columns, the ledger's totals, and a round trip that reconciles to zero."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from orchestrator.billing import export_focus, import_focus
from orchestrator.errors import InputError
from orchestrator.ledger import ReplicaTokens, TokenScrape, record_placement, record_tokens, refresh_entries
from orchestrator.ledger.reconcile import reconcile
from tests.orchestrator.ledger.conftest import at, placement

# FOCUS 1.0's columns as the FinOps sample has them (its `Id` is not a FOCUS column).
FOCUS_1_0 = {
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd",
    "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId",
    "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId",
    "SubAccountName", "Tags",
}


@pytest.fixture
def ledger(store):
    """Three pools over 26 hours (across a day boundary); 1,100 tokens in pool a."""
    pools = {"a": ("aws", "spot", 2, 1.5, 4), "b": ("azure", "on_demand", 1, 4.0, 8), "c": ("onprem", "owned", 1, 3.0, 8)}
    record_placement(store, "test", placement(pools, {("m", "a"): 8, ("m", "b"): 2}), at(0))
    record_tokens(store, "test", TokenScrape(at=at(1.5), replicas=[ReplicaTokens(
        replica="r", model="m", pool="a", provider="aws", prompt_tokens_total=1000, generation_tokens_total=100)]))
    refresh_entries(store, "test", at(26))
    return store


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_export_has_focus_columns_and_the_ledgers_totals(ledger, tmp_path: Path) -> None:
    count = export_focus(ledger, "test", tmp_path / "ledger.csv")
    rows = read_csv(tmp_path / "ledger.csv")
    assert FOCUS_1_0 <= set(rows[0]) and count == len(rows) == 26 * 3
    assert rows[0]["ChargePeriodStart"] == "2026-11-02T00:00:00Z" and rows[0]["ChargePeriodEnd"] == "2026-11-02T01:00:00Z"
    assert rows[0]["BillingPeriodStart"] == "2026-11-01T00:00:00Z" and rows[0]["BillingCurrency"] == "USD"
    by_pool: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_pool.setdefault(row["ResourceName"], []).append(row)
    assert sum(float(r["BilledCost"]) for r in by_pool["a"]) == pytest.approx(2 * 1.5 * 26)
    assert {r["PricingCategory"] for r in by_pool["a"]} == {"Dynamic"} and by_pool["c"][0]["PricingCategory"] == "Other"
    assert by_pool["b"][0]["ProviderName"] == "Microsoft" and float(by_pool["b"][0]["ListUnitPrice"]) == pytest.approx(4.0)
    assert json.loads(by_pool["a"][0]["Tags"]) == {"env": "test", "pool": "a", "model": "m", "managed-by": "gpufleet"}
    assert sum(int(r["x_PromptTokens"]) for r in by_pool["a"]) == 1000


def test_parquet_and_a_window(ledger, tmp_path: Path) -> None:
    assert export_focus(ledger, "test", tmp_path / "day.parquet", at(0), at(24)) == 24 * 3
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    kind, first, total = con.execute(f"SELECT typeof(ChargePeriodStart), CAST(min(ChargePeriodStart) AS VARCHAR), sum(BilledCost) "
                                     f"FROM '{tmp_path / 'day.parquet'}' GROUP BY 1").fetchone()
    assert (kind, first) == ("TIMESTAMP WITH TIME ZONE", "2026-11-02 00:00:00+00")
    assert total == pytest.approx(24 * (2 * 1.5 + 4.0 + 3.0))


def test_importing_the_export_back_reconciles_to_zero(ledger, tmp_path: Path) -> None:
    export_focus(ledger, "test", tmp_path / "ledger.csv.gz")
    result = import_focus(ledger, "test", tmp_path / "ledger.csv.gz")
    assert result.tagged_rows == result.rows
    rows = reconcile(ledger, "test", dt.date(2026, 11, 2), dt.date(2026, 11, 4), tolerance=1e-9)
    assert {(r.provider, r.day.day) for r in rows} == {(p, d) for p in ("aws", "azure", "onprem") for d in (2, 3)}
    assert all(r.status == "ok" and r.difference_usd == pytest.approx(0, abs=1e-9) for r in rows)


def test_an_unknown_suffix_is_refused(ledger, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"ledger\.xlsx: unknown export format"):
        export_focus(ledger, "test", tmp_path / "ledger.xlsx")
