"""Recording applies, prices and tokens, and the hourly entries accrued from them."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from orchestrator.errors import InputError
from orchestrator.ledger import ReplicaTokens, TokenScrape, record_placement, record_prices, record_tokens, refresh_entries
from orchestrator.ledger.tables import LedgerDay, LedgerEntry, PoolSpan, ReplicaSpan, TokenHour
from tests.orchestrator.ledger.conftest import at, placement

TWO_POOLS = {"a": ("aws", "on_demand", 1, 10.0, 8), "b": ("gcp", "spot", 2, 3.0, 4)}


def entries(store) -> dict[tuple[int, str, str], float]:
    with store.session() as session:
        rows = session.scalars(select(LedgerEntry).where(LedgerEntry.environment == "test")).all()
    return {(int((r.hour - at(0)).total_seconds() // 3600), r.pool, r.model): round(r.cost_usd, 6) for r in rows}


def open_spans(store, table) -> set[tuple]:
    with store.session() as session:
        spans = session.scalars(select(table).where(table.ended_at.is_(None))).all()
    if table is PoolSpan:
        return {(s.pool, s.nodes) for s in spans}
    return {(s.model, s.pool, s.count) for s in spans}


def test_an_apply_closes_what_changed_and_keeps_the_rest(store) -> None:
    first = placement(TWO_POOLS, {("m", "a"): 2, ("k", "a"): 1})
    assert record_placement(store, "test", first, at(0))
    moved = placement({**TWO_POOLS, "a": ("aws", "on_demand", 1, 10.0, 8)}, {("m", "b"): 2, ("k", "a"): 1})
    assert record_placement(store, "test", moved, at(1))
    assert open_spans(store, PoolSpan) == {("a", 1), ("b", 2)}
    assert open_spans(store, ReplicaSpan) == {("m", "b", 2), ("k", "a", 1)}
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(PoolSpan)) == 2  # neither pool changed: spans kept
        assert session.scalar(select(func.count()).select_from(ReplicaSpan)) == 3  # m@a ended, m@b began


def test_recording_the_same_placement_again_changes_nothing(store) -> None:
    p = placement(TWO_POOLS, {("m", "a"): 1})
    assert record_placement(store, "test", p, at(0))
    assert not record_placement(store, "test", p, at(5))


def test_an_apply_older_than_the_last_is_refused(store) -> None:
    record_placement(store, "test", placement(TWO_POOLS, {("m", "a"): 1}), at(2))
    with pytest.raises(InputError, match="in the order they happened"):
        record_placement(store, "test", placement(TWO_POOLS, {("m", "b"): 1}), at(1))


def test_entries_follow_replicas_moving_pools_and_a_price_change(store) -> None:
    gpus = {("k", "a"): 2}
    record_placement(store, "test", placement(TWO_POOLS, {("m", "a"): 2, ("k", "a"): 1}, gpus), at(0))
    record_placement(store, "test", placement(TWO_POOLS, {("m", "b"): 2, ("k", "a"): 1}, gpus), at(1))
    assert record_prices(store, "test", {"a": 10.0, "b": 5.0}, at(1.5)) == ["b"]  # a unchanged: nothing recorded
    refresh_entries(store, "test", at(2))
    assert entries(store) == pytest.approx({
        (0, "a", "m"): 5.0, (0, "a", "k"): 5.0, (0, "b", ""): 6.0,  # m: 2 x 1 GPU, k: 1 x 2 GPUs; b idle
        (1, "a", "k"): 10.0, (1, "b", "m"): 0.5 * 6 + 0.5 * 10,     # b (2 nodes) re-priced $3 -> $5 at 01:30
    })


def test_a_fact_dated_before_the_entries_moves_the_watermark_back(store) -> None:
    record_placement(store, "test", placement(TWO_POOLS, {("m", "a"): 1}), at(0))
    refresh_entries(store, "test", at(3))
    assert sum(v for k, v in entries(store).items() if k[0] == 1) == pytest.approx(16.0)
    record_prices(store, "test", {"a": 20.0}, at(1))  # a late price correction from 01:00
    assert refresh_entries(store, "test", at(3)) > 0
    assert entries(store)[(1, "a", "m")] == pytest.approx(20.0) and entries(store)[(2, "a", "m")] == pytest.approx(20.0)
    assert entries(store)[(0, "a", "m")] == pytest.approx(10.0)


def scrape(hours: float, *replicas: tuple[str, str, float, float]) -> TokenScrape:
    return TokenScrape(at=at(hours), replicas=[
        ReplicaTokens(replica=key, model="m", pool=pool, provider="aws", prompt_tokens_total=p, generation_tokens_total=g)
        for key, pool, p, g in replicas])


def token_hours(store) -> dict[int, tuple[int, int]]:
    with store.session() as session:
        rows = session.scalars(select(TokenHour)).all()
    return {int((r.hour - at(0)).total_seconds() // 3600): (r.prompt_tokens, r.generation_tokens) for r in rows}


def test_token_counters_become_deltas_and_a_restart_starts_over(store) -> None:
    record_tokens(store, "test", scrape(0.1, ("r1", "a", 100, 10)))   # first sight: all of it
    record_tokens(store, "test", scrape(0.5, ("r1", "a", 300, 40)))   # +200, +30
    record_tokens(store, "test", scrape(1.2, ("r1", "a", 50, 5)))     # went back: restarted, 50 and 5 are new
    assert token_hours(store) == {0: (300, 40), 1: (50, 5)}


def test_tokens_reach_the_entries_of_their_hour(store) -> None:
    record_placement(store, "test", placement(TWO_POOLS, {("m", "a"): 1}), at(0))
    record_tokens(store, "test", scrape(0.5, ("r1", "a", 1_000, 200), ("r2", "a", 500, 100)))
    refresh_entries(store, "test", at(1))
    with store.session() as session:
        row = session.get(LedgerEntry, ("test", at(0), "a", "m"))
    assert (row.prompt_tokens, row.generation_tokens, row.cost_usd) == (1_500, 300, pytest.approx(10.0))


def test_days_sum_their_hours_and_follow_a_late_correction(store) -> None:
    record_placement(store, "test", placement(TWO_POOLS, {("m", "a"): 1}), at(0))
    refresh_entries(store, "test", at(30))  # into the next day
    record_prices(store, "test", {"a": 12.0}, at(20))  # corrected later, from 20:00 of the first day

    def days():
        with store.session() as session:
            return {(d.day.day, d.pool): round(d.cost_usd, 6) for d in session.scalars(select(LedgerDay))}

    refresh_entries(store, "test", at(30))
    assert days() == {(2, "a"): 20 * 10 + 4 * 12, (2, "b"): 24 * 6, (3, "a"): 6 * 12, (3, "b"): 6 * 6}
