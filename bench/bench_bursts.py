"""Burst factors of the shared traces: the default behind `plan --trace`'s peak_factor.

    python -m bench.bench_bursts

For each trace in the shared data (llm_traces/) and each measured window (the busiest 300 s,
the whole trace), the peak factor `plan --trace` would use for a choice of sliding burst window
(1/5/10/30 s, every 1 s) and request-weighted percentile (p95/p99/p99.9): the percentile rate
over the measured window's mean. Next to each, the factor pure Poisson arrivals at the same mean
rate would give (`poisson`): the part of the factor that is counting noise, not traffic shape.
For Poisson arrivals the requests in a window holding a given request are 1 + Poisson(rate x
window), so the request-weighted percentile of the rate is (1 + q) / window, q the Poisson
quantile. Last, how long deriving a demand (size mix and bursts included) takes on a
million-request trace. See docs/demand.md, "Size mix and bursts".

`rate` is the p99 rate itself (req/s), and `time p99` the factor a time-weighted p99 (over
windows, not requests) would give: what a percentile that counts idle seconds says.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from orchestrator.demand.traces import burst_factor, burst_rates, derive_demand, read_trace, size_mix_of
from orchestrator.settings import load_settings

TRACES = ("azure_llm_2023_code.csv", "mooncake_fast25_synthetic_trace.jsonl")
BURST_WINDOWS_S = (1.0, 5.0, 10.0, 30.0)
PERCENTILES = (95.0, 99.0, 99.9)


def poisson_factor(rate: float, window_s: float, percentile: float) -> float:
    """Request-weighted percentile rate of `window_s` windows over the mean, for Poisson arrivals at `rate`."""
    mu = rate * window_s
    target = percentile / 100
    k, cdf = 0, 0.0
    while True:  # the Poisson(mu) quantile, summing the pmf in log space (mu is at most a few hundred here)
        cdf += math.exp(k * math.log(mu) - mu - math.lgamma(k + 1)) if mu > 0 else float(k == 0)
        if cdf >= target * (1 - 1e-12):
            return max(1.0, (1 + k) / mu)
        k += 1


def factors(path: Path, window_s: float | None) -> tuple[str, float, dict[float, list[float]]]:
    """The measured window's description, its mean rate, and per burst window: (factor, Poisson factor) per
    percentile, the p99 rate and the time-weighted p99 factor."""
    d = derive_demand(path, model="m", region="r", window_s=window_s)
    t = np.sort(np.fromiter((r[0] for r in read_trace(path)), dtype=float))
    t -= t[0]
    w = d.window
    inside = t[(t >= w.start_s) & ((t < w.end_s) | (w.end_s >= d.trace_span_s))]
    assert inside.size == w.requests
    mean = w.requests / w.length_s
    out: dict[float, list[float]] = {}
    for b in BURST_WINDOWS_S:
        row = [x for p in PERCENTILES for x in (burst_factor(inside, w.start_s, w.end_s, b, p), poisson_factor(mean, b, p))]
        rates, _ = burst_rates(inside, w.start_s, w.end_s, b)
        out[b] = row + [burst_factor(inside, w.start_s, w.end_s, b, 99) * mean, max(1.0, np.percentile(rates, 99) / mean)]
    where = f"busiest {w.length_s:g} s (from {w.start_s:g} s)" if w.kind == "peak" else f"whole ({w.length_s:.0f} s)"
    return where, mean, out


def timing() -> tuple[float, float]:
    """Seconds for the size mix and for the p99 10-s burst factor of a million synthetic requests over a day."""
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 86_400, 1_000_000))
    inputs, outputs = rng.lognormal(7, 1.2, t.size).astype(np.int64), rng.lognormal(4, 1, t.size).astype(np.int64)
    start = time.perf_counter()
    size_mix_of(inputs, outputs)
    mix_s = time.perf_counter() - start
    start = time.perf_counter()
    burst_factor(t, 0.0, float(t[-1]))
    return mix_s, time.perf_counter() - start


def main() -> None:
    print(__doc__.splitlines()[0])
    print(f"python {sys.version.split()[0]}; factor = request-weighted percentile rate of sliding windows (1 s step) "
          "/ the measured window's mean; poisson = the same for Poisson arrivals at that mean\n")
    traces = load_settings().shared_data / "llm_traces"
    if not traces.is_dir():
        print(f"the shared traces are not at {traces} (set GPUFLEET_SHARED_DATA); skipped")
        return
    header = (f"{'burst window':>12}  " + "  ".join(f"{f'p{p:g}':>6} {'poisson':>7}" for p in PERCENTILES)
              + f"  {'rate':>6} {'time p99':>8}")
    for name in TRACES:
        for window_s in (300.0, None):
            where, mean, rows = factors(traces / name, window_s)
            print(f"{name}, {where}: mean {mean:.3g} req/s")
            print(header)
            for b, row in rows.items():
                print(f"{b:>10g} s  " + "  ".join(f"{row[k]:6.2f} {row[k + 1]:7.2f}" for k in range(0, 2 * len(PERCENTILES), 2))
                      + f"  {row[-2]:6.1f} {row[-1]:8.2f}")
            print()
    mix_s, burst_s = timing()
    print(f"1,000,000 requests over 24 h: size mix {mix_s * 1000:.0f} ms, p99 10-s burst factor "
          f"({86_400 - 10 + 1:,} windows) {burst_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
