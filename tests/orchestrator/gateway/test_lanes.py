"""A model's versions as the local gateway routes them (`gateway.lanes`): picking a lane, the retry lane, the traffic file."""

from __future__ import annotations

import random
from collections import Counter

from orchestrator.gateway.lanes import (
    UNNAMED, Traffic, lane_name, lane_weights, parse_lane, pick_lane, primary_lane, read_traffic_file,
)

PICKS = 10_000


def shares(weights: dict[str, float] | None, healthy: dict[str, int], seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    counts = Counter(pick_lane(weights, healthy, rng) for _ in range(PICKS))
    return {lane: n / PICKS for lane, n in counts.items()}


def test_lane_names_round_trip() -> None:
    assert lane_name("m", "v2") == "m@v2" and lane_name("m", None) == "m"
    assert parse_lane("m@v2") == ("m", "v2") and parse_lane("m") == ("m", UNNAMED)


def test_requests_split_by_the_weights_whatever_the_workers() -> None:
    split = shares({"v1": 95, "v2": 5}, {"v1": 1, "v2": 3})
    assert set(split) == {"v1", "v2"} and abs(split["v2"] - 0.05) < 0.01
    split = shares({"v1": 50, "v2": 50}, {"v1": 3, "v2": 1})
    assert abs(split["v2"] - 0.5) < 0.02


def test_a_lane_without_a_healthy_worker_or_weight_gets_nothing() -> None:
    assert shares({"v1": 50, "v2": 50}, {"v1": 2, "v2": 0}) == {"v1": 1.0}
    assert shares({"v1": 50, "v2": 50}, {"v1": 2}) == {"v1": 1.0}
    assert shares({"v1": 100, "v2": 0}, {"v1": 1, "v2": 1}) == {"v1": 1.0}


def test_without_usable_weights_requests_split_by_healthy_workers() -> None:
    split = shares(None, {UNNAMED: 3, "v2": 1})
    assert abs(split[UNNAMED] - 0.75) < 0.02 and abs(split["v2"] - 0.25) < 0.02
    assert shares({"v3": 100}, {"v1": 2}) == {"v1": 1.0}  # weights only for a version no worker serves
    assert pick_lane({"v1": 100}, {"v1": 0}, random.Random(0)) is None
    assert pick_lane(None, {}, random.Random(0)) is None


def test_the_unnamed_lane_carries_the_one_weighted_version_without_a_lane() -> None:
    """Replicas started before versions (the unnamed lane) are the `v1` a rollout weights."""
    assert lane_weights({"v1": 90, "v2": 10}, {UNNAMED: 2, "v2": 1}) == {UNNAMED: 90, "v2": 10}
    split = shares({"v1": 90, "v2": 10}, {UNNAMED: 2, "v2": 1})
    assert abs(split[UNNAMED] - 0.9) < 0.02
    assert lane_weights({"v1": 50, "v3": 50}, {UNNAMED: 1, "v2": 1}) == {}  # two candidates: none is guessed
    assert primary_lane({"v1": 90, "v2": 10}, {UNNAMED: 2, "v2": 1}, avoid="v2") == UNNAMED


def test_the_same_seed_picks_the_same_lanes() -> None:
    picks = [[pick_lane({"v1": 70, "v2": 30}, {"v1": 1, "v2": 1}, rng) for _ in range(50)]
             for rng in (random.Random(3), random.Random(3))]
    assert picks[0] == picks[1] and len(set(picks[0])) == 2


def test_a_failed_request_goes_to_the_heaviest_other_healthy_lane() -> None:
    weights = {"v1": 90, "v2": 10}
    assert primary_lane(weights, {"v1": 1, "v2": 1}, avoid="v2") == "v1"
    assert primary_lane(weights, {"v1": 1, "v2": 1}, avoid="v1") == "v2"
    assert primary_lane({"v1": 50, "v2": 30, "v3": 20}, {"v1": 1, "v2": 1, "v3": 5}, avoid="v1") == "v2"
    assert primary_lane(None, {None: 1, "v2": 3}, avoid=None) == "v2"
    assert primary_lane(None, {None: 1, "v2": 3, "v3": 2}, avoid=None) == "v2"  # no weights: by workers
    assert primary_lane(weights, {"v1": 0, "v2": 1}, avoid="v2") is None  # no other healthy lane


def test_the_traffic_file_round_trips_and_a_missing_one_is_empty(tmp_path) -> None:
    path = tmp_path / "traffic.json"
    assert read_traffic_file(path) == Traffic()
    traffic = Traffic({"m": {"v1": 75.0, "v2": 25.0}}, {"idle": 120.0})
    path.write_text(traffic.text())
    assert read_traffic_file(path) == traffic
    path.write_text('{"schema_version": 1, "models": {"m": {"v2": 100}, "odd": 3}}')  # an old file: no hold
    assert read_traffic_file(path) == Traffic({"m": {"v2": 100.0}})
    path.write_text("[]")
    assert read_traffic_file(path) == Traffic()
