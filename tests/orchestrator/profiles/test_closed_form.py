"""The closed-form replica model: its tail approximation, its operating point, and agreement with the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.profiles import Slo, architecture
from orchestrator.profiles.closed_form import ReplicaQueue, Size, gamma_tail
from orchestrator.profiles.perf_model import ReplicaModel, bundled_calibration
from orchestrator.profiles.simulate import max_rate_within_slo

SLO = Slo(ttft_p95_ms=2000, tpot_p95_ms=100)


def replica(model: str = "llama-3.1-8b", gpu: str = "H100", tp: int = 1) -> ReplicaModel:
    return ReplicaModel(architecture(model), gpu_spec(gpu), tp, "bf16", bundled_calibration())


@pytest.mark.parametrize(("mean", "variance"), [(10.0, 4.0), (10.0, 50.0), (3.0, 9.0)])
def test_gamma_tail_matches_a_sampled_gamma_at_its_95th_percentile(mean: float, variance: float) -> None:
    k, theta = mean**2 / variance, variance / mean
    p95 = np.percentile(np.random.default_rng(0).gamma(k, theta, 400_000), 95)
    assert gamma_tail(mean, variance, p95) == pytest.approx(0.05, abs=0.004)


def test_gamma_tail_of_a_point_mass_is_a_step() -> None:
    assert gamma_tail(5.0, 0.0, 4.9) == 1.0 and gamma_tail(5.0, 0.0, 5.1) == 0.0


def test_at_the_max_rate_every_p95_is_within_the_slo_and_a_little_more_breaks_one() -> None:
    queue = ReplicaQueue(replica(), [Size(2048, 256, 1.0)], SLO.ttft_p95_ms, SLO.tpot_p95_ms)
    point, binding = queue.max_rate()
    assert point.ttft_p95_ms <= SLO.ttft_p95_ms * 1.001 and point.tpot_p95_ms <= SLO.tpot_p95_ms * 1.001
    assert queue.violated(point.rate_per_ms) is None
    assert queue.violated(point.rate_per_ms * 1.02) == binding


def test_an_idle_replica_decodes_at_one_step_per_token() -> None:
    model = replica()
    queue = ReplicaQueue(model, [Size(200, 200, 1.0)], SLO.ttft_p95_ms, SLO.tpot_p95_ms)
    idle = queue.at(queue.mix_rate_floor(), percentiles=True)
    assert idle.tpot_p95_ms == pytest.approx(model.decode_step_ms(1.0, 300), rel=0.01)
    assert idle.ttft_p95_ms == pytest.approx(model.prefill_ms(200) + 2 * model.decode_step_ms(1.0, 300), rel=0.01)


def test_long_prompts_in_the_mix_lower_the_short_ones_rate() -> None:
    short = ReplicaQueue(replica(), [Size(200, 200, 1.0)], SLO.ttft_p95_ms, SLO.tpot_p95_ms).max_rate()[0]
    mixed = ReplicaQueue(replica(), [Size(200, 200, 0.9), Size(16000, 200, 0.1)], SLO.ttft_p95_ms, SLO.tpot_p95_ms).max_rate()[0]
    assert mixed.rate_per_ms < 0.5 * short.rate_per_ms


def test_a_request_beyond_the_kv_room_is_unservable() -> None:
    queue = ReplicaQueue(replica("llama-3.1-8b", "L4"), [Size(60000, 100, 1.0)], 1e6, 1e3)
    assert queue.max_rate() == (None, "kv_memory")


@pytest.mark.parametrize(("model", "gpu", "tp", "mix"), [
    ("llama-3.1-8b", "H100", 1, [Size(2048, 256, 1.0)]),
    ("llama-3.3-70b", "H100", 4, [Size(1000, 300, 0.8), Size(6000, 150, 0.2)]),
])
def test_the_promise_is_within_a_quarter_of_what_the_simulated_replica_sustains(model, gpu, tp, mix) -> None:
    """A second method on the same step times (docs/capacity.md, Checked by simulation): the closed
    form's highest rate within the p95 SLO against the simulator's (2 500 requests, 3 % bisection)."""
    rm = replica(model, gpu, tp)
    point, _ = ReplicaQueue(rm, mix, SLO.ttft_p95_ms, SLO.tpot_p95_ms).max_rate()
    promised = point.rate_per_ms * 1e3
    simulated = max_rate_within_slo(rm, mix, SLO, start_rps=promised, requests=2500)
    assert 0.75 <= simulated / promised <= 1.3
