"""Reading a real vLLM replica's `/metrics` (fixtures/, captured by fixtures/capture.py from the local CPU fleet):
histograms, gauges and counters per model, and quantiles as Prometheus' histogram_quantile computes them."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from orchestrator.dashboard.vllm_serving import SERVING_METRICS, Histogram, parse_serving
from tests.orchestrator.dashboard.seed import CAPTURED_MODEL, FIXTURES


def captured(scrape: int) -> str:
    return (FIXTURES / f"vllm-metrics-{scrape}.txt").read_text()


def report(run: int) -> dict:
    return json.loads((FIXTURES / f"replay-report-{run}.json").read_text())["models"][0]


def vllm_metric_names() -> set[str]:
    """Every metric name vLLM's Prometheus logger declares (the installed package's source)."""
    spec = importlib.util.find_spec("vllm")
    assert spec is not None and spec.origin is not None
    source = (Path(spec.origin).parent / "v1" / "metrics" / "loggers.py").read_text()
    return set(re.findall(r'name="(vllm:[a-z_]+)"', source))


def test_every_family_the_dashboard_reads_is_one_vllm_declares() -> None:
    names = vllm_metric_names()
    assert "vllm:time_to_first_token_seconds" in names  # the source is the one we think it is
    assert set(SERVING_METRICS) <= names, set(SERVING_METRICS) - names


def test_a_real_scrape_after_a_replay_counts_every_replayed_request() -> None:
    serving = parse_serving(captured(0), CAPTURED_MODEL)
    replayed = report(0)["requests"]
    assert serving.finished == serving.ttft.count == serving.tpot.count == replayed == 13
    assert math.isinf(serving.ttft.bounds[-1]) and list(serving.ttft.counts) == sorted(serving.ttft.counts)
    assert (serving.waiting, serving.running) == (0, 0)  # idle once the replay finished
    assert 0 <= serving.kv_cache_use <= 1
    assert parse_serving(captured(0), "another-model").finished == 0  # one model's samples only


@pytest.mark.parametrize("text", ["<html>not metrics</html>", "# TYPE up gauge\nup 1\n",
                                  "vllm:num_requests_waiting{model_name=\"a\"} not-a-number\n"])
def test_an_answer_that_is_not_a_vllm_replicas_metrics_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_serving(text)


@pytest.mark.parametrize(("run", "quantile"), [(0, 0.5), (0, 0.95), (1, 0.5), (1, 0.95)])
def test_the_histogram_quantile_lands_in_the_bucket_of_what_the_replay_measured(run: int, quantile: float) -> None:
    """Two routes to one number: the replica's histogram (server side) and the replay's own per-request timings
    (client side, nearest rank) of the same requests; run 1 is the second replay alone (the scrapes' difference)."""
    before = parse_serving(captured(run - 1), CAPTURED_MODEL) if run else None
    after = parse_serving(captured(run), CAPTURED_MODEL)
    measured = report(run)
    for histogram, key in ((after.ttft, "ttft"), (after.tpot, "tpot")):
        window = histogram.since(before.ttft if key == "ttft" else before.tpot) if before else histogram
        assert window.count == measured["requests"]
        estimate = window.quantile(quantile)
        replayed = measured[f"{key}_p{round(quantile * 100)}_ms"] / 1000
        i = next(i for i, bound in enumerate(window.bounds) if estimate <= bound)
        low = window.bounds[i - 1] if i else 0.0
        # a client-side time includes the loopback hop and response parsing: allow it one bucket above
        assert low <= replayed <= window.bounds[min(i + 1, len(window.bounds) - 2)], (key, estimate, replayed)


@pytest.mark.parametrize(("q", "expected"), [
    (0.0, 0.0), (0.25, 0.05), (0.5, 0.1),  # ranks 0, 5, 10 of 20: linear inside (0, 0.1], 10 observations
    (0.75, 0.1 + 0.1 * 5 / 9), (0.9, 0.1 + 0.1 * 8 / 9),  # ranks 15, 18: inside (0.1, 0.2], 9 observations
    (0.99, 0.2),  # rank 19.8, in the +Inf bucket: the highest finite bound, as Prometheus answers
])
def test_quantiles_follow_prometheus_histogram_quantile(q: float, expected: float) -> None:
    h = Histogram((0.1, 0.2, math.inf), (10, 19, 20))  # 10 in (0, 0.1], 9 in (0.1, 0.2], 1 above
    assert h.quantile(q) == pytest.approx(expected)


def test_no_observations_no_quantile_and_a_bad_quantile_is_refused() -> None:
    assert Histogram().quantile(0.5) is None and Histogram((0.1, math.inf), (0, 0)).quantile(0.5) is None
    with pytest.raises(ValueError, match="outside"):
        Histogram((0.1, math.inf), (1, 1)).quantile(1.5)


def test_the_estimate_is_in_the_bucket_of_the_true_quantile_over_random_samples() -> None:
    """Brute force: bucket 2000 log-normal latencies, compare with numpy's nearest-rank quantile of the raw values."""
    rng = np.random.default_rng(7)
    samples = rng.lognormal(mean=-1.5, sigma=0.8, size=2000)
    bounds = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, math.inf)
    h = Histogram(bounds, tuple(float((samples <= b).sum()) for b in bounds))
    for q in (0.5, 0.9, 0.95, 0.99):
        true = float(np.quantile(samples, q, method="inverted_cdf"))
        i = next(i for i, b in enumerate(bounds) if true <= b)
        assert (bounds[i - 1] if i else 0.0) <= h.quantile(q) <= bounds[i]


def test_adding_histograms_sums_buckets_and_merges_differing_bounds() -> None:
    a = Histogram((0.1, 0.2, math.inf), (1, 3, 4))
    b = Histogram((0.1, 0.2, math.inf), (2, 2, 5))
    assert (a + b) == Histogram((0.1, 0.2, math.inf), (3, 5, 9))
    c = Histogram((0.15, math.inf), (4, 6))
    merged = a + c
    assert merged.bounds == (0.1, 0.15, 0.2, math.inf) and merged.counts == (1, 5, 7, 10)
    assert Histogram() + a == a == a + Histogram()


def test_since_is_the_difference_and_a_restart_keeps_the_newer_counts() -> None:
    earlier = Histogram((0.1, math.inf), (3, 5))
    assert Histogram((0.1, math.inf), (4, 9)).since(earlier) == Histogram((0.1, math.inf), (1, 4))
    restarted = Histogram((0.1, math.inf), (1, 2))
    assert restarted.since(earlier) == restarted
