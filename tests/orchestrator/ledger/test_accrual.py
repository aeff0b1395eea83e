"""Ledger arithmetic on cases checked by hand: hours cut at boundaries, prices changing, replicas moving."""

from __future__ import annotations

import pytest

from orchestrator.ledger.accrual import HOUR_S, PoolFacts, PoolHistory, Span, TokenCount, accrue

H = HOUR_S


def pool(nodes: int, gpus_per_node: int = 8, capacity: str = "on_demand", provider: str = "aws") -> PoolFacts:
    return PoolFacts(provider, "us-east-1", capacity, "H100", gpus_per_node, nodes)


def by_key(rows) -> dict[tuple[float, str, str], object]:
    return {(r.hour / H, r.pool, r.model): r for r in rows}


def test_a_span_across_hours_is_cut_at_each_hour() -> None:
    # 2 nodes at $10/node-hour from 10:30 to 12:15: $10, $20, $5
    history = PoolHistory(nodes=[Span(10.5 * H, 12.25 * H, pool(2))], prices=[(0.0, 10.0)])
    rows = by_key(accrue({"a": history}, [], 0.0, 24 * H))
    assert {k: r.cost_usd for k, r in rows.items()} == pytest.approx({(10, "a", ""): 10.0, (11, "a", ""): 20.0, (12, "a", ""): 5.0})
    assert rows[(11, "a", "")].node_hours == pytest.approx(2.0)
    assert rows[(12, "a", "")].gpu_hours == pytest.approx(2 * 8 * 0.25)


def test_a_price_change_mid_interval_splits_the_hour() -> None:
    # 1 node, 00:00-03:00; $4 until 01:30, then $6: $4 + (0.5*4 + 0.5*6) + $6 = $15
    history = PoolHistory(nodes=[Span(0.0, 3 * H, pool(1))], prices=[(-5 * H, 4.0), (1.5 * H, 6.0)])
    rows = by_key(accrue({"a": history}, [], 0.0, 3 * H))
    assert [rows[(h, "a", "")].cost_usd for h in (0, 1, 2)] == pytest.approx([4.0, 5.0, 6.0])


def test_the_price_in_force_before_the_window_applies() -> None:
    history = PoolHistory(nodes=[Span(-10 * H, None, pool(3))], prices=[(-20 * H, 2.0), (5 * H, 1.0)])
    rows = accrue({"a": history}, [], 0.0, 2 * H)
    assert [r.cost_usd for r in rows] == pytest.approx([6.0, 6.0])


def test_a_model_moving_pools_takes_its_cost_along_and_leaves_the_old_pool_to_the_others() -> None:
    # pool a: 1 node x 8 GPUs at $10; pool b: 2 nodes x 4 GPUs at $3 (=$6/h)
    # m: 2 replicas x 2 GPUs in a for hour 0, then in b for hour 1; k: 1 replica x 4 GPUs in a throughout
    a = PoolHistory(nodes=[Span(0.0, None, pool(1))], prices=[(0.0, 10.0)])
    a.replicas["m"].append(Span(0.0, 1 * H, (2, 2)))
    a.replicas["k"].append(Span(0.0, None, (1, 4)))
    b = PoolHistory(nodes=[Span(0.0, None, pool(2, gpus_per_node=4, provider="gcp"))], prices=[(0.0, 3.0)])
    b.replicas["m"].append(Span(1 * H, None, (2, 2)))
    rows = by_key(accrue({"a": a, "b": b}, [], 0.0, 2 * H))
    assert {k: r.cost_usd for k, r in rows.items()} == pytest.approx({
        (0, "a", "m"): 5.0, (0, "a", "k"): 5.0, (0, "b", ""): 6.0,   # hour 0: a split 4:4 GPUs, b idle
        (1, "a", "k"): 10.0, (1, "b", "m"): 6.0,                      # hour 1: k alone in a pays all of it
    })
    assert rows[(0, "a", "m")].used_gpu_hours == pytest.approx(4.0)
    assert rows[(0, "a", "m")].gpu_hours == pytest.approx(4.0)  # half the pool's 8 GPU-hours
    assert rows[(0, "b", "")].used_gpu_hours == 0.0 and rows[(0, "b", "")].gpu_hours == pytest.approx(8.0)
    assert rows[(1, "b", "m")].facts.provider == "gcp"
    assert sum(r.cost_usd for r in rows.values()) == pytest.approx(10 * 2 + 6 * 2)


def test_cost_is_shared_by_gpus_held_not_by_replica_count() -> None:
    # 3 replicas x 1 GPU and 1 replica x 4 GPUs share $14/h: 3/7 and 4/7
    a = PoolHistory(nodes=[Span(0.0, None, pool(1))], prices=[(0.0, 14.0)])
    a.replicas["small"].append(Span(0.0, None, (3, 1)))
    a.replicas["large"].append(Span(0.0, None, (1, 4)))
    rows = by_key(accrue({"a": a}, [], 0.0, H))
    assert rows[(0, "a", "small")].cost_usd == pytest.approx(6.0)
    assert rows[(0, "a", "large")].cost_usd == pytest.approx(8.0)


def test_a_span_ending_where_the_next_begins_counts_once() -> None:
    # 1 node until 00:30, then 3 nodes at $2: 0.5*2 + 0.5*6 = $4
    history = PoolHistory(nodes=[Span(0.0, 0.5 * H, pool(1)), Span(0.5 * H, None, pool(3))], prices=[(0.0, 2.0)])
    rows = accrue({"a": history}, [], 0.0, H)
    assert len(rows) == 1 and rows[0].cost_usd == pytest.approx(4.0) and rows[0].node_hours == pytest.approx(2.0)


def test_no_nodes_no_cost_and_the_window_bounds_the_rows() -> None:
    history = PoolHistory(nodes=[Span(0.0, 2 * H, pool(0)), Span(5 * H, 30 * H, pool(1))], prices=[(0.0, 1.0)])
    rows = accrue({"a": history}, [], 4 * H, 7 * H)
    assert [(r.hour / H, r.cost_usd) for r in rows] == [(5, 1.0), (6, 1.0)]


def test_tokens_join_their_hour_and_pool_even_without_cost() -> None:
    a = PoolHistory(nodes=[Span(0.0, None, pool(1))], prices=[(0.0, 8.0)])
    a.replicas["m"].append(Span(0.0, None, (1, 8)))
    tokens = [TokenCount(0.0, "a", "m", "aws", 1_000, 250), TokenCount(0.0, "elsewhere", "m", "local", 10, 5)]
    rows = by_key(accrue({"a": a}, tokens, 0.0, H))
    assert (rows[(0, "a", "m")].cost_usd, rows[(0, "a", "m")].prompt_tokens, rows[(0, "a", "m")].generation_tokens) == (8.0, 1_000, 250)
    stray = rows[(0, "elsewhere", "m")]
    assert stray.cost_usd == 0.0 and stray.facts.provider == "local" and stray.generation_tokens == 5
