"""Fitting a (model, GPU)'s efficiency to measured profiles: recovers known scales, and the planner uses the fit."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.profiles import CapacityProfile, Slo, TokenMix, architecture, estimate_capacity, replica_capacity
from orchestrator.profiles.fit import fit_path, load_fit, save_fit
from orchestrator.profiling.calibration import fit_efficiency

SLO = Slo(ttft_p95_ms=2000, tpot_p95_ms=100)
SIZES = [TokenMix(input_tokens=200, output_tokens=200), TokenMix(input_tokens=2048, output_tokens=256),
         TokenMix(input_tokens=8192, output_tokens=128)]


def measured_as(scales, mixes=SIZES, model="llama-3.1-8b", gpu="L40S"):
    """Profiles as a replica whose compute and memory times are `scales` x the model's would measure them."""
    return [CapacityProfile(model=model, gpu=gpu, gpus_per_replica=1, mix=m, slo=SLO,
                            rps=estimate_capacity(model, gpu, 1, SLO, m, scales=scales).rps,
                            measured_at=dt.datetime(2026, 12, 5, tzinfo=dt.timezone.utc), tool="test") for m in mixes]


@pytest.mark.parametrize("truth", [(1.0, 1.0), (0.7, 3.0)])
def test_the_fit_reproduces_the_measurements_and_predicts_a_size_it_never_saw(truth):
    fit = fit_efficiency(architecture("llama-3.1-8b"), gpu_spec("L40S"), measured_as(truth))
    assert fit.error_after < 0.05  # the loss has kinks where the binding limit changes
    assert fit.error_before == pytest.approx(0.0, abs=1e-6) if truth == (1.0, 1.0) else fit.error_before > 0.2
    held_out = TokenMix(input_tokens=4000, output_tokens=500)
    assert estimate_capacity("llama-3.1-8b", "L40S", 1, SLO, held_out, scales=fit.scales).rps == \
        pytest.approx(estimate_capacity("llama-3.1-8b", "L40S", 1, SLO, held_out, scales=truth).rps, rel=0.05)


def test_one_measured_size_fits_one_shared_scale():
    fit = fit_efficiency(architecture("llama-3.1-8b"), gpu_spec("L40S"), measured_as((3.0, 1.0), SIZES[:1]))
    assert fit.compute_scale == fit.memory_scale and fit.error_after < 0.01


def test_profiles_that_met_no_rate_are_left_out_and_none_at_all_is_bad_input():
    zero = [p.model_copy(update={"rps": 0.0}) for p in measured_as((1.0, 1.0))]
    with pytest.raises(Exception, match="nothing to fit"):
        fit_efficiency(architecture("llama-3.1-8b"), gpu_spec("L40S"), zero)
    fit = fit_efficiency(architecture("llama-3.1-8b"), gpu_spec("L40S"), zero[:2] + measured_as((2.0, 2.0), SIZES[2:]))
    assert len(fit.points) == 1


def test_a_saved_fit_estimates_every_other_size_as_fitted(tmp_path):
    fit = fit_efficiency(architecture("llama-3.1-8b"), gpu_spec("L40S"), measured_as((2.0, 1.5)))
    assert save_fit(tmp_path, fit) == fit_path(tmp_path, "llama-3.1-8b", "L40S") and load_fit(tmp_path, "llama-3.1-8b", "L40S") == fit
    other = TokenMix(input_tokens=4000, output_tokens=500)
    got = replica_capacity("llama-3.1-8b", "L40S", SLO, other, profiles_dir=tmp_path)
    assert got.source == "fitted"
    assert got.rps == pytest.approx(estimate_capacity("llama-3.1-8b", "L40S", 1, SLO, other, scales=fit.scales).rps)
    assert got.rps < estimate_capacity("llama-3.1-8b", "L40S", 1, SLO, other).rps  # a slower machine than the model


def test_a_fit_prices_a_mixs_interference_on_the_fitted_model(tmp_path):
    from orchestrator.profiles import best_mix_capacity
    from orchestrator.profiles.capacity import mix_interference
    from orchestrator.profiles.closed_form import Size

    fit = fit_efficiency(architecture("llama-3.1-8b"), gpu_spec("L40S"), measured_as((1.5, 1.2)))
    save_fit(tmp_path, fit)
    slo = Slo(ttft_p95_ms=5000, tpot_p95_ms=40)  # long prompts stretch the short ones' TPOT: interference binds
    mix = [Size(16000, 1000, 0.6), Size(1000, 16, 0.4)]
    cap = best_mix_capacity("llama-3.1-8b", "L40S", slo, mix, max_gpus=1, profiles_dir=tmp_path)
    fitted = mix_interference(architecture("llama-3.1-8b"), gpu_spec("L40S"), 1, slo, mix, list(cap.by_size), "bf16", fit.scales)
    bundled = mix_interference(architecture("llama-3.1-8b"), gpu_spec("L40S"), 1, slo, mix, list(cap.by_size), "bf16")
    assert fitted < 1 and cap.interference == pytest.approx(fitted) and fitted != pytest.approx(bundled, rel=1e-3)
