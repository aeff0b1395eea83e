"""The discrete-event replica simulation: exact single-request times, Little's law, load, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.profiles import Slo, architecture
from orchestrator.profiles.perf_model import ReplicaModel, bundled_calibration
from orchestrator.profiles.simulate import (
    default_max_num_batched_tokens,
    max_rate_within_slo,
    simulate,
    simulate_rate,
    summarize,
)
from orchestrator.spec.models import SizeBucket

SLO = Slo(ttft_p95_ms=2000, tpot_p95_ms=100)
CHAT = [SizeBucket(input_tokens=200, output_tokens=200, share=1.0)]


@pytest.fixture(scope="module")
def h100_8b() -> ReplicaModel:
    return ReplicaModel(architecture("llama-3.1-8b"), gpu_spec("H100"), 1, "bf16", bundled_calibration())


def test_one_request_alone_takes_its_prefill_then_one_decode_step_per_token(h100_8b):
    result = simulate(h100_8b, np.array([5.0]), np.array([1000]), np.array([250]))
    # an idle engine starts the prefill at once; the prefill pass samples the first token
    assert result.ttft_ms[0] == pytest.approx(h100_8b.prefill_ms(1000), rel=1e-12)
    # tokens 2..250 each take a batch-1 decode step at contexts 1001..1249 (mean 1000 + 250/2)
    assert result.tpot_ms[0] == pytest.approx(h100_8b.decode_step_ms(1, 1000 + 250 / 2), rel=1e-9)
    assert result.steps == 250 and result.preemptions == 0


def test_a_prompt_longer_than_the_token_budget_is_prefilled_in_chunks(h100_8b):
    result = simulate(h100_8b, np.array([0.0]), np.array([5000]), np.array([2]), max_num_batched_tokens=2048)
    attn = 2 * 32 * 32 * 128  # 2*L*H*d of llama-3.1-8b
    chunks = [(0, 2048), (2048, 2048), (4096, 904)]
    expected = sum(h100_8b.forward_ms(c, k, attn * ((k + c) ** 2 - k**2)) for k, c in chunks)
    assert result.ttft_ms[0] == pytest.approx(expected, rel=1e-12)
    assert result.ttft_ms[0] > h100_8b.prefill_ms(5000)  # three passes pay the overheads three times


def test_a_request_arriving_mid_step_waits_for_the_step_boundary(h100_8b):
    result = simulate(h100_8b, np.array([0.0, 1.0]), np.array([1000, 100]), np.array([50, 50]))
    prefill_first = h100_8b.prefill_ms(1000)
    # the second request waits out the first one's prefill, then shares a step with its first decode
    assert result.admitted_ms[1] == pytest.approx(prefill_first)
    step = h100_8b.decode_step_ms(1, 1001) + h100_8b.prefill_ms(100)
    assert result.ttft_ms[1] == pytest.approx(prefill_first - 1.0 + step, rel=1e-9)


def test_decode_tokens_count_against_the_token_budget(h100_8b):
    # one request decoding takes 1 of the 2048 tokens: a 2048-token prompt needs a second chunk
    result = simulate(h100_8b, np.array([0.0, 1.0]), np.array([100, 2048]), np.array([50, 2]),
                      max_num_batched_tokens=2048)
    attn = 2 * 32 * 32 * 128
    first = h100_8b.prefill_ms(100)
    steps = (h100_8b.decode_step_ms(1, 101) + h100_8b.forward_ms(2047, 0, attn * 2047**2)
             + h100_8b.decode_step_ms(1, 102) + h100_8b.forward_ms(1, 2047, attn * (2048**2 - 2047**2)))
    assert result.first_token_ms[1] == pytest.approx(first + steps, rel=1e-9)


def test_one_token_requests_with_a_one_prompt_budget_queue_exactly_as_m_d_1(h100_8b):
    # no decode, one prompt per step: a deterministic server, so each wait follows Lindley's
    # recursion w_i = max(0, w_{i-1} + T_p - gap_i)
    rng = np.random.default_rng(5)
    n, prompt = 3000, 4096
    service = h100_8b.prefill_ms(prompt)
    arrivals = np.cumsum(rng.exponential(service / 0.6, n))  # 60 % busy
    result = simulate(h100_8b, arrivals, np.full(n, prompt), np.ones(n, dtype=int), max_num_batched_tokens=prompt)
    wait = np.zeros(n)
    for i in range(1, n):
        wait[i] = max(0.0, wait[i - 1] + service - (arrivals[i] - arrivals[i - 1]))
    np.testing.assert_allclose(result.ttft_ms - service, wait, atol=1e-6)
    assert np.all(np.isnan(result.tpot_ms))


def test_throughput_and_occupancy_obey_littles_law_at_steady_state(h100_8b):
    rng = np.random.default_rng(3)
    n, rate = 20000, 25.0  # req/s, below what one replica carries for chat requests
    arrivals = np.cumsum(rng.exponential(1e3 / rate, n))
    result = simulate(h100_8b, arrivals, np.full(n, 200), np.full(n, 200))
    summary = summarize(result, SLO)
    assert summary.throughput_rps == pytest.approx(summary.offered_rps, rel=0.03)
    assert summary.offered_rps == pytest.approx(rate, rel=0.03)
    lo, hi = int(0.1 * n), n - int(0.05 * n)
    in_running = (result.finish_ms - result.admitted_ms)[lo:hi].mean() / 1e3  # s
    # L (time-averaged running set, from the steps) = lambda * W (time each request ran)
    assert summary.mean_running == pytest.approx(summary.offered_rps * in_running, rel=0.03)


def test_latency_grows_with_the_rate(h100_8b):
    mix = [SizeBucket(input_tokens=2000, output_tokens=100, share=1.0)]
    runs = [simulate_rate(h100_8b, rate, mix, SLO, requests=4000, seed=1) for rate in (2.0, 8.0, 14.0)]
    ttft = [s.ttft_p95_ms for s in runs]
    tpot = [s.tpot_p95_ms for s in runs]
    assert ttft[0] < ttft[1] < ttft[2]
    assert tpot[0] < tpot[1] < tpot[2]
    assert [s.mean_running for s in runs] == sorted(s.mean_running for s in runs)


def test_an_overloaded_replica_falls_behind_its_arrivals(h100_8b):
    mix = [SizeBucket(input_tokens=8000, output_tokens=100, share=1.0)]
    summary = simulate_rate(h100_8b, 10.0, mix, SLO, requests=3000, seed=2)
    assert summary.throughput_rps < 0.7 * summary.offered_rps
    assert not summary.meets_slo and summary.within_slo < 0.1


def test_the_same_seed_gives_the_same_run_and_another_seed_does_not(h100_8b):
    mix = [SizeBucket(input_tokens=200, output_tokens=100, share=0.7),
           SizeBucket(input_tokens=4000, output_tokens=50, share=0.3)]
    a = simulate_rate(h100_8b, 10.0, mix, SLO, requests=3000, seed=7)
    b = simulate_rate(h100_8b, 10.0, mix, SLO, requests=3000, seed=7)
    c = simulate_rate(h100_8b, 10.0, mix, SLO, requests=3000, seed=8)
    assert a == b
    assert a != c


def test_a_full_kv_cache_preempts_and_every_request_still_finishes(h100_8b):
    rng = np.random.default_rng(0)
    n = 400
    arrivals = np.cumsum(rng.exponential(20.0, n))
    result = simulate(h100_8b, arrivals, np.full(n, 1000), np.full(n, 300), kv_capacity_tokens=20000)
    assert result.preemptions > 0
    assert np.all(np.isfinite(result.finish_ms))
    assert np.all(result.first_token_ms > result.arrival_ms)
    assert np.all(result.finish_ms >= result.first_token_ms)
    with pytest.raises(ValueError, match="does not fit the KV room"):
        simulate(h100_8b, np.array([0.0]), np.array([30000]), np.array([10]), kv_capacity_tokens=20000)


def test_the_token_budget_follows_vllms_defaults_per_gpu():
    assert default_max_num_batched_tokens(gpu_spec("H100")) == 8192
    assert default_max_num_batched_tokens(gpu_spec("H200")) == 8192
    assert default_max_num_batched_tokens(gpu_spec("B200")) == 16384
    assert default_max_num_batched_tokens(gpu_spec("A100-80GB")) == 2048
    assert default_max_num_batched_tokens(gpu_spec("L4")) == 2048


def test_the_highest_rate_within_the_slo_brackets_the_slo(h100_8b):
    mix = [SizeBucket(input_tokens=2000, output_tokens=100, share=1.0)]
    slo = Slo(ttft_p95_ms=500, tpot_p95_ms=100)
    best = max_rate_within_slo(h100_8b, mix, slo, start_rps=5.0, requests=2000)
    assert simulate_rate(h100_8b, best, mix, slo, requests=2000).meets_slo
    assert not simulate_rate(h100_8b, best * 1.1, mix, slo, requests=2000).meets_slo
