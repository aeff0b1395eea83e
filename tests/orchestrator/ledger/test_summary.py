"""The spend summary on a hand-checked fleet: two pools, one move, tokens, a baseline and a small bill.

a: AWS on-demand, 1 node x 8 GPUs at $10/h.  b: on-prem owned, 1 node x 4 GPUs at $2/h.
00:00  4 replicas of m in a, 2 in b (1 GPU each); baseline (a) $20/h
02:00  a drained (0 nodes); 4 replicas of m in b
Window 00:00-04:00: a $20, b $8; 1M tokens served in each pool.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orchestrator.billing import import_focus
from orchestrator.ledger import ReplicaTokens, TokenScrape, Window, record_placement, record_tokens, spend_summary
from tests.orchestrator.ledger.conftest import at, placement

BILL = """BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ProviderName,ServiceCategory,Tags
25.0,25.0,25.0,USD,111,2026-11-02T00:00:00Z,2026-11-02T01:00:00Z,Usage,AWS,Compute,"{""env"": ""test"", ""pool"": ""a""}"
3.0,3.0,3.0,USD,222,2026-11-02T00:00:00Z,2026-11-02T01:00:00Z,Usage,Google Cloud,Compute,"{""env"": ""test""}"
7.0,7.0,7.0,USD,111,2026-11-02T00:00:00Z,2026-11-02T01:00:00Z,Usage,AWS,Storage,
"""


@pytest.fixture
def summary(store, tmp_path: Path):
    pools = {"a": ("aws", "on_demand", 1, 10.0, 8), "b": ("onprem", "owned", 1, 2.0, 4)}
    record_placement(store, "test", placement(pools, {("m", "a"): 4, ("m", "b"): 2}), at(0), baseline_cost_per_hour=20.0,
                     baseline_detail="aws H100, on-demand")
    drained = {**pools, "a": ("aws", "on_demand", 0, 10.0, 8)}
    record_placement(store, "test", placement(drained, {("m", "b"): 4}), at(2), baseline_cost_per_hour=20.0)
    for hours, key, pool, provider in ((0.5, "r1", "a", "aws"), (2.5, "r2", "b", "onprem")):
        record_tokens(store, "test", TokenScrape(at=at(hours), replicas=[ReplicaTokens(
            replica=key, model="m", pool=pool, provider=provider, prompt_tokens_total=800_000, generation_tokens_total=200_000)]))
    (tmp_path / "bill.csv").write_text(BILL)
    import_focus(store, "test", tmp_path / "bill.csv")
    return spend_summary(store, "test", Window(start=at(0), end=at(4)), at(4), tolerance=0.05)


def test_totals_and_spend_over_time(summary) -> None:
    assert summary.cost_usd == pytest.approx(28.0)
    assert summary.bucket == "hour" and len(summary.buckets) == 4
    by = {(p.bucket, p.provider): p.cost_usd for p in summary.over_time}
    assert [by.get((at(h), "aws"), 0.0) for h in range(4)] == pytest.approx([10, 10, 0, 0])
    assert [by[(at(h), "onprem")] for h in range(4)] == pytest.approx([2, 2, 2, 2])
    assert summary.cost_per_hour_now == pytest.approx(2.0)


def test_cost_per_million_tokens_by_provider_and_model(summary) -> None:
    rates = {(t.provider, t.model): t.usd_per_million_tokens for t in summary.per_million_tokens}
    assert rates == pytest.approx({("aws", "m"): 20.0, ("onprem", "m"): 8.0})
    assert summary.usd_per_million_tokens == pytest.approx(14.0)


def test_capacity_shares_and_utilization(summary) -> None:
    shares = {c.capacity: (c.cost_share, c.gpu_hour_share) for c in summary.capacity}
    assert shares["on_demand"] == pytest.approx((20 / 28, 0.5)) and shares["owned"] == pytest.approx((8 / 28, 0.5))
    use = {p.pool: p.utilization for p in summary.utilization}
    assert use == pytest.approx({"a": 4 / 8, "b": (2 * 2 + 4 * 2) / 16})


def test_savings_against_the_baseline_accrue_per_apply(summary) -> None:
    savings = summary.savings
    assert savings.saved_usd == pytest.approx((20 - 12) * 2 + (20 - 2) * 2)
    assert savings.saving_ratio == pytest.approx(0.9) and savings.baseline_cost_per_hour == 20.0


def test_planned_vs_billed_per_provider_and_day(summary) -> None:
    status = {r.provider: (r.status, r.billed_usd) for r in summary.reconciliation}
    assert status == {"aws": ("over", 25.0), "gcp": ("unplanned", 3.0)}  # on-prem has no bill: left out
    billed = {b.provider: (b.ledger_usd, b.billed_usd, b.untagged_usd) for b in summary.billed}
    assert billed == {"aws": (pytest.approx(20.0), 25.0, 7.0), "gcp": (0.0, 3.0, 0.0)}


def test_a_window_of_days_is_drawn_per_day(store) -> None:
    now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    summary = spend_summary(store, "test", Window.last_days(30, now), now, 0.05)
    assert summary.bucket == "day" and len(summary.buckets) == 31 and summary.cost_usd == 0 and summary.savings is None
