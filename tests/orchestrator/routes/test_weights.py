"""Shares as integer weights: exact sums, each weight within 1 of its quota, zero stays zero, never all zero."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator.routes.weights import MAX_WEIGHT, WEIGHT_TOTAL, integer_weights


def test_shares_become_percent_weights() -> None:
    assert integer_weights({"a": 0.941137, "b": 0.058863}) == {"a": 94, "b": 6}


def test_largest_remainders_get_the_units_rounding_alone_would_lose() -> None:
    # Rounding each third gives 33+33+33 = 99; the largest remainder method hands out the 100th.
    weights = integer_weights({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert sum(weights.values()) == 100
    assert sorted(weights.values()) == [33, 33, 34]
    assert weights == integer_weights({"c": 1 / 3, "b": 1 / 3, "a": 1 / 3})  # the same on every run, whatever the order


def test_rounding_each_share_would_overshoot_but_the_sum_stays_exact() -> None:
    # 0.125 * 100 = 12.5 each: rounding half up would give 4 x 13 = 52 of 50.
    assert integer_weights({"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}, total=50) == {"a": 13, "b": 13, "c": 12, "d": 12}


def test_a_pool_with_share_zero_gets_weight_zero_even_when_units_are_left() -> None:
    assert integer_weights({"a": 0.5, "b": 0.5, "idle": 0.0}, total=3) == {"a": 2, "b": 1, "idle": 0}


def test_shares_need_not_sum_to_one() -> None:
    assert integer_weights({"a": 3.0, "b": 1.0}) == {"a": 75, "b": 25}


@pytest.mark.parametrize("shares,total,message", [
    ({"a": 0.0, "b": 0.0}, 100, "no share is positive"),
    ({}, 100, "no share is positive"),
    ({"a": -0.1, "b": 1.1}, 100, "must be a finite number >= 0"),
    ({"a": float("nan")}, 100, "finite"),
    ({"a": 1.0}, 0, "between 1 and 255"),
    ({"a": 1.0}, 256, "between 1 and 255"),
])
def test_what_cannot_be_weighted_is_refused(shares, total, message) -> None:
    with pytest.raises(ValueError, match=message):
        integer_weights(shares, total=total)


shares_st = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=3),
    st.one_of(st.just(0.0), st.floats(min_value=1e-9, max_value=1.0), st.floats(min_value=0.0, max_value=1e6)),
    min_size=1, max_size=12,
).filter(lambda d: math.fsum(d.values()) > 0)


@given(shares_st, st.integers(min_value=1, max_value=MAX_WEIGHT))
@example({"a": 1e-9, "b": 1.0, "c": 0.0}, WEIGHT_TOTAL)
@example({"a": 0.1, "b": 0.2, "c": 0.7}, 10)
def test_weights_keep_the_quota_property(shares: dict[str, float], total: int) -> None:
    weights = integer_weights(shares, total=total)
    whole = math.fsum(shares.values())
    assert set(weights) == set(shares)
    assert sum(weights.values()) == total  # never all zero for a served record
    for name, weight in weights.items():
        assert 0 <= weight <= MAX_WEIGHT
        quota = total * shares[name] / whole
        assert math.floor(quota) - 1e-9 <= weight <= math.ceil(quota) + 1e-9  # within one unit of the exact quota
        if shares[name] == 0:
            assert weight == 0


@given(shares_st)
def test_a_larger_share_never_gets_a_smaller_weight(shares: dict[str, float]) -> None:
    weights = integer_weights(shares)
    for a in shares:
        for b in shares:
            if shares[a] > shares[b]:
                assert weights[a] >= weights[b]
