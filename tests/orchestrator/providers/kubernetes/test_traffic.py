"""SetTraffic on Kubernetes: a version's share of the ready pods against its weight, within one pod (pure)."""

from __future__ import annotations

from collections import Counter

import pytest

from orchestrator.errors import InputError
from orchestrator.providers.kubernetes.traffic import weights_problem


@pytest.mark.parametrize("weights,ready,holds", [
    ({"v1": 75, "v2": 25}, {"v1": 3, "v2": 1}, True),  # exact
    ({"v1": 95, "v2": 5}, {"v1": 3, "v2": 1}, True),  # v2: 1 pod for 0.2: within one
    ({"v1": 95, "v2": 5}, {"v1": 3}, False),  # a weighted version with no pod gets nothing
    ({"v1": 100, "v2": 0}, {"v1": 3, "v2": 1}, True),  # 1 pod for 0: within one (a rollback's canary, draining next)
    ({"v1": 100}, {"v1": 3, "v2": 2}, False),  # 2 pods for 0
    ({"v1": 10, "v2": 90}, {"v1": 3, "v2": 1}, False),  # 3 pods for 0.4
    ({"v2": 100}, {"v2": 4}, True),  # promoted
    ({"v1": 50, "v2": 50}, {"v1": 2, "v2": 2}, True),
    ({"v1": 50, "v2": 50}, {"v1": 6, "v2": 2}, False),  # 6 for 4
    ({"v1": 80, "v2": 20}, {None: 4, "v2": 1}, True),  # unlabelled pods: the one other weighted version
    ({"v1": 80, "v3": 10, "v2": 10}, {None: 4, "v2": 1}, False),  # two candidates: unlabelled stays unmatched
])
def test_weights_hold_within_one_pod_of_the_pod_ratio(weights, ready, holds) -> None:
    problem = weights_problem(weights, Counter(ready))
    assert (problem is None) == holds, problem


def test_the_problem_names_the_version_and_its_counts() -> None:
    assert weights_problem({"v1": 10, "v2": 90}, Counter({"v1": 3, "v2": 1})) == (
        "v1 has 3 of 4 ready pods for 10% of the traffic; v2 has 1 of 4 ready pods for 90% of the traffic")


@pytest.mark.parametrize("weights", [{"v1": 0}, {"v1": -1, "v2": 2}, {}])
def test_weights_need_one_positive_and_none_negative(weights) -> None:
    with pytest.raises(InputError, match="at least one positive"):
        weights_problem(weights, Counter({"v1": 1}))


@pytest.mark.parametrize("percent", [1, 5, 10, 25, 33.3, 50, 75, 90, 99])
def test_the_documented_canary_count_always_carries_its_step(percent) -> None:
    """docs/rollouts-kubernetes.md: c = max(1, round(N p / (100 - p))) canary pods beside N stable ones."""
    for stable in range(1, 41):
        count = max(1, round(stable * percent / (100 - percent)))
        ready = Counter({"v1": stable, "v2": count})
        assert weights_problem({"v1": 100 - percent, "v2": percent}, ready) is None, (stable, count)
