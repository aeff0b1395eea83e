"""Judging a rollout step (`rollout.gate`): each rule that fails a step, and when a step waits or passes."""

from __future__ import annotations

import math

import pytest

from orchestrator.dashboard.vllm_serving import Histogram
from orchestrator.rollout.gate import VersionFigures, judge
from orchestrator.spec.models import RolloutPolicy, Slo

SLO = Slo(ttft_p95_ms=1000, tpot_p95_ms=100, max_rtt_ms=50)
POLICY = RolloutPolicy(steps=[10, 100], hold_s=60, min_requests=50, max_wait_s=600, max_error_rate_increase=0.02,
                       max_ttft_ratio=1.5, max_tpot_ratio=1.5)


def latency(seconds: float, n: int) -> Histogram:
    """n observations, all in the bucket (seconds/2, seconds]: a p95 of 0.975 × seconds."""
    return Histogram((seconds / 2, seconds, seconds * 10, math.inf), (0, n, n, n))


def figures(requests: int, failures: int = 0, ttft_s: float = 0.2, tpot_s: float = 0.02) -> VersionFigures:
    return VersionFigures(requests, failures, latency(ttft_s, requests), latency(tpot_s, requests))


OLD = figures(1000, 10)  # 1 % errors, TTFT p95 195 ms, TPOT p95 19.5 ms


def verdict(new: VersionFigures, old: VersionFigures = OLD, elapsed_s: float = 60, policy: RolloutPolicy = POLICY):
    return judge(0, 10, policy, SLO, new, old, elapsed_s)


def test_a_step_within_every_threshold_passes_once_held_and_answered() -> None:
    passed = verdict(figures(50, 1))
    assert (passed.decision, passed.step, passed.percent) == ("pass", 0, 10)
    assert passed.new.requests == 50 and passed.new.error_rate == pytest.approx(0.02)
    assert passed.old.ttft_p95_ms == pytest.approx(195) and passed.old.tpot_p95_ms == pytest.approx(19.5)


def test_it_waits_for_hold_s_then_passes() -> None:
    early = verdict(figures(500), elapsed_s=59)
    assert early.decision == "wait" and early.reasons == ["watched 59 of 60 s"]
    assert verdict(figures(500), elapsed_s=60).decision == "pass"


def test_it_waits_for_min_requests_and_fails_past_max_wait_s() -> None:
    few = verdict(figures(49), elapsed_s=599)
    assert few.decision == "wait" and few.reasons == ["49 of 50 requests"]
    starved = verdict(figures(49), elapsed_s=600)
    assert starved.decision == "fail" and "rollout.min_requests" in starved.reasons[0]


def test_an_error_rate_more_than_the_allowed_increase_above_the_old_ones_fails() -> None:
    assert verdict(figures(100, 3)).decision == "pass"  # 3 % against 1 %: within 2 points
    worse = verdict(figures(100, 4))  # 4 % against 1 %
    assert worse.decision == "fail" and worse.reasons[0].startswith("error rate 4.0% (4 of 100)")
    assert verdict(figures(100, 4), old=figures(100, 3)).decision == "pass"  # the old version fails as often


def test_failures_fail_a_step_early_counted_over_min_requests() -> None:
    """Before min_requests answered, failures count as a share of min_requests: enough of them fail the step
    at once (no waiting for the rest), a few do not."""
    failing = verdict(figures(3, 3), elapsed_s=1)  # 3 of the 50 needed: 6 % > 1 % + 2 points
    assert failing.decision == "fail" and "error rate" in failing.reasons[0]
    assert verdict(figures(3, 1), elapsed_s=1).decision == "wait"  # 1 of 50 needed: 2 %, within
    no_old_traffic = verdict(figures(3, 2), old=VersionFigures(), elapsed_s=1)  # 2 of 50 needed: 4 % against none
    assert no_old_traffic.decision == "fail"


@pytest.mark.parametrize("what", ["TTFT", "TPOT"])
def test_a_p95_over_the_old_ones_times_the_ratio_fails(what: str) -> None:
    slow = {"ttft_s": 0.2 * 1.6} if what == "TTFT" else {"tpot_s": 0.02 * 1.6}
    within = {"ttft_s": 0.2 * 1.4} if what == "TTFT" else {"tpot_s": 0.02 * 1.4}
    failed = verdict(figures(100, **slow))
    assert failed.decision == "fail" and failed.reasons[0].startswith(f"{what} p95") and "over 1.5×" in failed.reasons[0]
    assert verdict(figures(100, **within)).decision == "pass"


@pytest.mark.parametrize("what", ["TTFT", "TPOT"])
def test_a_p95_over_the_slo_fails_only_where_the_old_version_meets_it(what: str) -> None:
    over, old_under = ({"ttft_s": 1.1}, {"ttft_s": 0.8}) if what == "TTFT" else ({"tpot_s": 0.11}, {"tpot_s": 0.08})
    new = figures(100, **over)  # p95 over the SLO, within 1.5× of either old version
    failed = verdict(new, old=figures(1000, **old_under))
    assert failed.decision == "fail" and failed.reasons == [
        f"{what} p95 {failed.new.model_dump()[what.lower() + '_p95_ms']:.0f} ms over the SLO's "
        f"{1000 if what == 'TTFT' else 100} ms (the old version meets it)"]
    assert verdict(new, old=figures(1000, **{k: v * 1.2 for k, v in over.items()})).decision == "pass"  # old misses it too
    assert verdict(new, old=VersionFigures(1000, 0)).decision == "fail"  # no old figures: the SLO alone


def test_latency_is_not_judged_on_fewer_than_min_requests() -> None:
    assert verdict(figures(10, ttft_s=5.0), elapsed_s=1).decision == "wait"


def test_every_failed_rule_is_named() -> None:
    failed = verdict(figures(100, 50, ttft_s=2.0, tpot_s=0.2))
    assert [r.split(" ")[0] for r in failed.reasons] == ["error", "TTFT", "TPOT"]


def test_since_is_the_window_and_all_of_it_after_a_counter_went_back() -> None:
    earlier = VersionFigures(100, 5, latency(0.2, 100), latency(0.02, 100))
    later = VersionFigures(130, 7, latency(0.2, 130), latency(0.02, 130))
    window = later.since(earlier)
    assert (window.requests, window.failures, window.ttft.count, window.tpot.count) == (30, 2, 30, 30)
    restarted = VersionFigures(20, 1, latency(0.2, 20), latency(0.02, 20))  # the gateway and replica restarted
    window = restarted.since(earlier)
    assert (window.requests, window.failures, window.ttft.count, window.tpot.count) == (20, 1, 20, 20)
    fewer_failures = VersionFigures(150, 0).since(earlier)  # one counter back is a restart too
    assert (fewer_failures.requests, fewer_failures.failures) == (150, 0)
    assert VersionFigures().error_rate is None and VersionFigures().p95_ms(Histogram()) is None
