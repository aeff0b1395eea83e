"""A vLLM replica's `/metrics` read as serving figures: latency histograms, queue, KV-cache use, finished requests.

The names are vLLM's own (vllm/v1/metrics/loggers.py; a test checks each against the installed
package). TPOT is `vllm:request_time_per_output_token_seconds`, one observation per request —
the per-request figure a model's `tpot_p95_ms` SLO and `replay` measure — not the per-token
`vllm:inter_token_latency_seconds`. Quantiles are estimated from the buckets exactly as
Prometheus' `histogram_quantile` does, so the page and a Grafana panel agree on the same data.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass

from orchestrator.gateway.metrics import REQUESTS_OK, RUNNING, WAITING

TTFT = "vllm:time_to_first_token_seconds"
TPOT = "vllm:request_time_per_output_token_seconds"
KV_CACHE = "vllm:kv_cache_usage_perc"
FINISHED = REQUESTS_OK
HISTOGRAMS = (TTFT, TPOT)
GAUGES = (WAITING, RUNNING, KV_CACHE)
SERVING_METRICS = (*HISTOGRAMS, *GAUGES, FINISHED)  # every vLLM family the dashboard reads


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts by bucket upper bound (ascending, the last +Inf), as Prometheus keeps a histogram."""

    bounds: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()

    @classmethod
    def of(cls, buckets: dict[float, float]) -> Histogram:
        """From cumulative counts keyed by bucket upper bound (`le`), in any order."""
        bounds = tuple(sorted(buckets))
        return cls(bounds, tuple(buckets[b] for b in bounds))

    @property
    def count(self) -> float:
        return self.counts[-1] if self.counts else 0.0

    def at(self, bound: float) -> float:
        """Observations at or below `bound` that this histogram can vouch for (its count at the largest bound <= it)."""
        i = bisect_right(self.bounds, bound)
        return self.counts[i - 1] if i else 0.0

    def __add__(self, other: Histogram) -> Histogram:
        """Two replicas' histograms as one (PromQL's `sum by (le)`); differing bounds are merged on their union."""
        if not other.bounds:
            return self
        if not self.bounds or self.bounds == other.bounds:
            counts = other.counts if not self.bounds else tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
            return Histogram(other.bounds, counts)
        bounds = tuple(sorted(set(self.bounds) | set(other.bounds)))
        return Histogram(bounds, tuple(self.at(b) + other.at(b) for b in bounds))

    def since(self, earlier: Histogram) -> Histogram:
        """What was observed after `earlier` (PromQL's `increase`); all of it when a count went back (a restart)."""
        if earlier.bounds != self.bounds or any(b > a for a, b in zip(self.counts, earlier.counts, strict=True)):
            return self
        return Histogram(self.bounds, tuple(a - b for a, b in zip(self.counts, earlier.counts, strict=True)))

    def quantile(self, q: float) -> float | None:
        """Prometheus' `histogram_quantile(q)`: linear inside the bucket holding rank q x count; None with no observations.

        A rank in the +Inf bucket answers the highest finite bound, as Prometheus does.
        """
        if not 0 <= q <= 1:
            raise ValueError(f"quantile {q} is outside [0, 1]")
        if len(self.bounds) < 2 or self.count <= 0 or not math.isinf(self.bounds[-1]):
            return None
        rank = q * self.count
        b = next(i for i, c in enumerate(self.counts) if c >= rank)
        if b == len(self.bounds) - 1:
            return self.bounds[-2]
        start, below = (0.0, 0.0) if b == 0 else (self.bounds[b - 1], self.counts[b - 1])
        if b == 0 and self.bounds[0] <= 0:
            return self.bounds[0]
        in_bucket = self.counts[b] - below
        return start + (self.bounds[b] - start) * ((rank - below) / in_bucket if in_bucket else 1.0)


@dataclass(frozen=True)
class ReplicaServing:
    """One replica's serving figures at one scrape (histograms and `finished` since it started; gauges now)."""

    ttft: Histogram
    tpot: Histogram
    finished: float
    waiting: float
    running: float
    kv_cache_use: float  # 0..1


def parse_serving(text: str, model: str | None = None) -> ReplicaServing:
    """Read `text` (Prometheus exposition) for `model` (every model if None), summed over engines.

    KV-cache use is the mean over engines (each engine has its own cache). Raises ValueError when
    `text` is not Prometheus text or has none of vLLM's serving families.
    """
    from prometheus_client.parser import text_string_to_metric_families

    wanted = "".join(line + "\n" for line in text.splitlines()  # a replica serves ~50 families; parse these few
                     if line.removeprefix("# HELP ").removeprefix("# TYPE ").startswith(SERVING_METRICS))
    if not wanted:
        raise ValueError("no vLLM serving metric in the answer (is it a vLLM replica's /metrics?)")
    buckets: dict[str, dict[float, float]] = {name: defaultdict(float) for name in HISTOGRAMS}
    sums: dict[str, list[float]] = defaultdict(list)
    for family in text_string_to_metric_families(wanted):
        for sample in family.samples:
            if model and sample.labels.get("model_name", model) != model:
                continue
            if family.name in buckets and sample.name == family.name + "_bucket":
                buckets[family.name][float(sample.labels["le"])] += sample.value
            elif family.name in (*GAUGES, FINISHED) and sample.name in (family.name, family.name + "_total"):
                sums[family.name].append(sample.value)
    ttft, tpot = (Histogram.of(buckets[n]) for n in HISTOGRAMS)
    kv = sums.get(KV_CACHE, [])
    return ReplicaServing(ttft=ttft, tpot=tpot, finished=sum(sums.get(FINISHED, [])), waiting=sum(sums.get(WAITING, [])),
                          running=sum(sums.get(RUNNING, [])), kv_cache_use=sum(kv) / len(kv) if kv else 0.0)
