"""Traffic shares as the integer weights DNS services take (largest remainder).

Route 53 weights are integers 0..255 and a record's traffic is its weight over the sum of
its set's weights. Rounding each share on its own can make a set sum to 99 or 101, or give
every pool of a small set 0; the largest-remainder method (Hamilton's) keeps the sum
exact, each weight within 1 of its exact quota, a pool with share 0 at weight 0, and a
served region never all-zero.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

MAX_WEIGHT = 255  # Route 53's largest weight
WEIGHT_TOTAL = 100  # weights of one record set sum to this: a weight reads as a percentage


def integer_weights(shares: Mapping[str, float], total: int = WEIGHT_TOTAL) -> dict[str, int]:
    """Integer weights summing to `total`, proportional to `shares` (which need not sum to 1).

    A share of 0 gets 0; a positive share smaller than half a unit may get 0 too (it would
    receive next to nothing anyway). Ties go to the larger share, then to the name, so the
    answer is the same on every run.
    """
    if not 1 <= total <= MAX_WEIGHT:
        raise ValueError(f"total must be between 1 and {MAX_WEIGHT}, not {total}")
    for name, share in shares.items():
        if not math.isfinite(share) or share < 0:
            raise ValueError(f"share of {name!r} must be a finite number >= 0, not {share}")
    whole = math.fsum(shares.values())
    if whole <= 0:
        raise ValueError("no share is positive: a served record needs at least one pool with traffic")
    quotas = {name: total * share / whole for name, share in shares.items()}
    weights = {name: min(total, math.floor(quota)) for name, quota in quotas.items()}
    left = total - sum(weights.values())
    positive = sorted((n for n in shares if shares[n] > 0),
                      key=lambda n: (-(quotas[n] - weights[n]), -shares[n], n))
    for name in itertools.islice(itertools.cycle(positive), max(0, left)):  # cycle: only float error gets past one lap
        weights[name] += 1
    return weights
