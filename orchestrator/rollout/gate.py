"""Judging a traffic step: the new version's error rate and TTFT/TPOT p95 against the old one's, over one window.

Errors are what the gateway counted per version (any answer >= 400 or none; the gateway
sends such a request again to the old version, so clients do not see it); on Kubernetes
pools, read from Prometheus, the replicas' own 4xx/5xx counts (no retry there). Latencies are
the replicas' own vLLM histograms (TTFT and per-request TPOT, the figures a model's SLO is
written in), summed per version and differenced over the window. A step passes once it has
been watched `hold_s` and the new version answered `min_requests`; it fails (at once, not
waiting for the window's end) when:

- the new version's error rate (its failures over at least `min_requests`) exceeds the old
  one's by more than `max_error_rate_increase`;
- its TTFT (TPOT) p95 exceeds the old one's times `max_ttft_ratio` (`max_tpot_ratio`), or
  exceeds the SLO while the old one's does not (with no old figures: exceeds the SLO);
- it has not answered `min_requests` within `max_wait_s` (not enough traffic to judge).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from orchestrator.dashboard.vllm_serving import Histogram
from orchestrator.spec.models import RolloutPolicy, Slo


@dataclass(frozen=True)
class VersionFigures:
    """One version's requests, failures and latency histograms: cumulative at a scrape, or over a window."""

    requests: int = 0
    failures: int = 0
    ttft: Histogram = field(default_factory=Histogram)
    tpot: Histogram = field(default_factory=Histogram)

    def since(self, earlier: VersionFigures) -> VersionFigures:
        """What happened after `earlier` (all of it where a counter went back: a restarted gateway or replica)."""
        restarted = self.requests < earlier.requests or self.failures < earlier.failures
        return VersionFigures(self.requests - (0 if restarted else earlier.requests),
                              self.failures - (0 if restarted else earlier.failures),
                              self.ttft.since(earlier.ttft), self.tpot.since(earlier.tpot))

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.requests if self.requests else None

    def p95_ms(self, histogram: Histogram) -> float | None:
        value = histogram.quantile(0.95)
        return None if value is None else value * 1000


class Figures(BaseModel):
    """A version's figures over a window, as reported."""

    requests: int
    failures: int
    error_rate: float | None
    ttft_p95_ms: float | None
    tpot_p95_ms: float | None

    @classmethod
    def of(cls, figures: VersionFigures) -> Figures:
        return cls(requests=figures.requests, failures=figures.failures, error_rate=figures.error_rate,
                   ttft_p95_ms=figures.p95_ms(figures.ttft), tpot_p95_ms=figures.p95_ms(figures.tpot))


class Verdict(BaseModel):
    """A step's judgment: pass (go on), fail (roll back) or wait (watch longer), with why and the figures."""

    step: int
    percent: float
    decision: Literal["pass", "fail", "wait"]
    reasons: list[str]
    elapsed_s: float
    new: Figures
    old: Figures


def judge(step: int, percent: float, policy: RolloutPolicy, slo: Slo, new: VersionFigures, old: VersionFigures,
          elapsed_s: float) -> Verdict:
    """The verdict on one step's window (module docstring)."""
    new_f, old_f = Figures.of(new), Figures.of(old)

    def verdict(decision: Literal["pass", "fail", "wait"], reasons: list[str]) -> Verdict:
        return Verdict(step=step, percent=percent, decision=decision, reasons=reasons, elapsed_s=round(elapsed_s, 1),
                       new=new_f, old=old_f)

    failures = []
    baseline = old_f.error_rate or 0.0
    if new.failures / max(new.requests, policy.min_requests, 1) - baseline > policy.max_error_rate_increase:
        failures.append(f"error rate {new.failures / new.requests:.1%} ({new.failures} of {new.requests}) against the "
                        f"old version's {baseline:.1%}: more than {policy.max_error_rate_increase:.1%} worse")
    for what, ratio, target, new_ms, old_ms in (
            ("TTFT", policy.max_ttft_ratio, slo.ttft_p95_ms, new_f.ttft_p95_ms, old_f.ttft_p95_ms),
            ("TPOT", policy.max_tpot_ratio, slo.tpot_p95_ms, new_f.tpot_p95_ms, old_f.tpot_p95_ms)):
        if new_ms is None or new.requests < policy.min_requests:  # a p95 of a handful is noise
            continue
        if old_ms is not None and new_ms > old_ms * ratio:
            failures.append(f"{what} p95 {new_ms:.0f} ms against the old version's {old_ms:.0f} ms: over {ratio}×")
        elif new_ms > target and (old_ms is None or old_ms <= target):
            failures.append(f"{what} p95 {new_ms:.0f} ms over the SLO's {target:.0f} ms (the old version meets it)")
    if failures:
        return verdict("fail", failures)
    if new.requests < policy.min_requests:
        if elapsed_s >= policy.max_wait_s:
            return verdict("fail", [f"only {new.requests} requests reached the new version in {elapsed_s:.0f} s; "
                                    f"{policy.min_requests} are needed to judge it (rollout.min_requests)"])
        return verdict("wait", [f"{new.requests} of {policy.min_requests} requests"])
    if elapsed_s < policy.hold_s:
        return verdict("wait", [f"watched {elapsed_s:.0f} of {policy.hold_s:.0f} s"])
    return verdict("pass", [f"{new.requests} requests, within every threshold"])
