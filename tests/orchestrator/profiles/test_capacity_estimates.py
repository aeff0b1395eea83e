"""Replica sizing, SLO-bound request rates, and measured profiles overriding estimates."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.errors import InputError
from orchestrator.profiles import (
    CapacityProfile,
    architecture,
    Slo,
    TokenMix,
    estimate_capacity,
    gpus_per_replica,
    load_measured_profile,
    replica_capacity,
    save_measured_profile,
)

CHAT_SLO = Slo(ttft_p95_ms=2000, tpot_p95_ms=100)
CHAT_MIX = TokenMix(input_tokens=1000, output_tokens=250)


# --- gpus_per_replica --------------------------------------------------------------------------


def test_8b_bf16_fits_one_l4_with_a_default_kv_reserve():
    # 16.1 GB of weights in 0.9 x 24 GB leaves ~4 GB of KV (~30k tokens) after activations
    assert gpus_per_replica("llama-3.1-8b", "L4") == 1


def test_8b_at_full_128k_context_needs_two_l4():
    # one 131072-token sequence needs 17 GB of KV: not beside the weights on one L4
    assert gpus_per_replica("llama-3.1-8b", "L4", max_model_len=131072) == 2


def test_70b_bf16_needs_four_80gb_gpus_two_h200_one_b200():
    # 141 GB of weights: 2 x 80 GB at 90 % leaves no room for KV
    assert gpus_per_replica("llama-3.1-70b", "H100") == 4
    assert gpus_per_replica("llama-3.1-70b", "A100-80GB") == 4
    assert gpus_per_replica("llama-3.1-70b", "H200") == 2
    assert gpus_per_replica("llama-3.1-70b", "B200") == 1


def test_fp8_halves_the_gpus_for_70b():
    assert gpus_per_replica("llama-3.1-70b", "H100", dtype="fp8") == 2


def test_tiny_llama_fits_cpu_but_8b_does_not():
    assert gpus_per_replica("tiny-llama", "CPU") == 1
    assert gpus_per_replica("llama-3.1-8b", "CPU") is None  # no tensor parallelism on CPU


def test_model_too_big_for_a_node_fits_nowhere():
    assert gpus_per_replica("llama-3.1-405b", "L4") is None
    assert gpus_per_replica("llama-3.1-405b", "H200") == 8


def test_custom_cpu_memory_changes_the_answer():
    big_laptop = gpu_spec("CPU").model_copy(update={"memory_gb": 64.0})
    assert gpus_per_replica("llama-3.1-8b", big_laptop) == 1


# --- estimate_capacity --------------------------------------------------------------------------


def test_estimate_reports_rate_latencies_and_what_bound_it():
    est = estimate_capacity("llama-3.1-70b", "H100", 4, CHAT_SLO, CHAT_MIX)
    assert est.source == "estimate" and est.rps > 0
    assert est.ttft_ms <= CHAT_SLO.ttft_p95_ms and est.tpot_ms <= CHAT_SLO.tpot_p95_ms
    assert est.tokens_per_s == pytest.approx(est.rps * CHAT_MIX.output_tokens)
    assert est.binding == "tpot" and est.tpot_ms == pytest.approx(CHAT_SLO.tpot_p95_ms, rel=1e-3)


def test_more_gpus_give_more_rps():
    four = estimate_capacity("llama-3.1-70b", "H100", 4, CHAT_SLO, CHAT_MIX)
    eight = estimate_capacity("llama-3.1-70b", "H100", 8, CHAT_SLO, CHAT_MIX)
    assert eight.rps > four.rps


def test_faster_gpu_gives_more_rps():
    slow = estimate_capacity("llama-3.1-8b", "A10G", 1, CHAT_SLO, CHAT_MIX)
    fast = estimate_capacity("llama-3.1-8b", "L40S", 1, CHAT_SLO, CHAT_MIX)
    faster = estimate_capacity("llama-3.1-70b", "H100", 4, CHAT_SLO, CHAT_MIX)
    slower = estimate_capacity("llama-3.1-70b", "A100-80GB", 4, CHAT_SLO, CHAT_MIX)
    assert fast.rps > slow.rps > 0 and faster.rps > slower.rps > 0


def test_tighter_tpot_gives_fewer_rps():
    loose = estimate_capacity("llama-3.1-8b", "L4", 1, CHAT_SLO, CHAT_MIX)
    tight = estimate_capacity("llama-3.1-8b", "L4", 1, Slo(ttft_p95_ms=2000, tpot_p95_ms=80), CHAT_MIX)
    assert 0 < tight.rps < loose.rps


def test_longer_outputs_give_fewer_rps():
    rates = [
        estimate_capacity("llama-3.1-70b", "H100", 4, CHAT_SLO, TokenMix(input_tokens=1000, output_tokens=out)).rps
        for out in (100, 250, 1000)
    ]
    assert rates[0] > rates[1] > rates[2] > 0


def test_unreachable_tpot_gives_zero_rps():
    est = estimate_capacity("llama-3.1-8b", "L4", 1, Slo(ttft_p95_ms=2000, tpot_p95_ms=10), CHAT_MIX)
    assert (est.rps, est.binding) == (0.0, "tpot")


def test_unreachable_ttft_gives_zero_rps():
    est = estimate_capacity("llama-3.1-8b", "L4", 1, Slo(ttft_p95_ms=50, tpot_p95_ms=200), CHAT_MIX)
    assert (est.rps, est.binding) == (0.0, "ttft")


def test_request_longer_than_kv_room_gives_zero_rps():
    est = estimate_capacity("llama-3.1-8b", "L4", 1, Slo(ttft_p95_ms=1e6, tpot_p95_ms=1e3),
                            TokenMix(input_tokens=60000, output_tokens=100))
    assert (est.rps, est.binding) == (0.0, "kv_memory")


def test_ttft_binds_for_long_prompts_on_a_slow_gpu():
    est = estimate_capacity("llama-3.1-8b", "L4", 1, Slo(ttft_p95_ms=3000, tpot_p95_ms=200),
                            TokenMix(input_tokens=8000, output_tokens=50))
    assert est.binding == "ttft" and est.ttft_ms == pytest.approx(3000, rel=1e-3)


def test_tiny_model_is_capped_by_vllm_max_num_seqs():
    est = estimate_capacity("tiny-llama", "H100", 1, CHAT_SLO, CHAT_MIX)
    # the mean batch stays below the cap by a burst's worth of sequences (closed_form.Z_BURST)
    assert est.binding == "max_num_seqs" and 150 < est.batch < 256


def test_impossible_tensor_parallel_degree_is_an_input_error():
    with pytest.raises(InputError, match="To fix"):
        estimate_capacity("llama-3.1-8b", "CPU", 2, CHAT_SLO, CHAT_MIX)
    with pytest.raises(InputError, match="To fix"):
        estimate_capacity("llama-3.1-8b", "H100", 3, CHAT_SLO, CHAT_MIX)


def test_accepts_any_object_with_slo_and_mix_fields():
    class SpecSlo:
        ttft_p95_ms = 2000.0
        tpot_p95_ms = 100.0

    class SpecMix:
        input_tokens = 1000
        output_tokens = 250

    assert estimate_capacity("llama-3.1-8b", "L4", 1, SpecSlo(), SpecMix()) == \
        estimate_capacity("llama-3.1-8b", "L4", 1, CHAT_SLO, CHAT_MIX)


def measured(rps: float, **changes) -> CapacityProfile:
    fields = dict(model="llama-3.1-8b", gpu="L4", gpus_per_replica=1, mix=CHAT_MIX, slo=CHAT_SLO, rps=rps,
                  ttft_p95_ms=900.0, tpot_p95_ms=95.0, measured_at=dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc),
                  tool="vllm benchmark_serving 0.6.3")
    return CapacityProfile(**(fields | changes))


def test_without_a_profile_capacity_is_the_estimate():
    est = replica_capacity("llama-3.1-8b", "L4", CHAT_SLO, CHAT_MIX)
    assert est == estimate_capacity("llama-3.1-8b", "L4", 1, CHAT_SLO, CHAT_MIX)


def test_replica_capacity_sizes_the_replica_and_names_the_served_model():
    est = replica_capacity(architecture("llama-3.1-70b"), gpu_spec("H100"), CHAT_SLO, CHAT_MIX, model_name="chat-70b")
    assert (est.model, est.gpus, est.source) == ("chat-70b", 4, "estimate")
    assert replica_capacity("llama-3.1-70b", "H100", CHAT_SLO, CHAT_MIX, dtype="fp8").gpus == 2


def test_replica_capacity_is_none_where_the_model_does_not_fit():
    assert replica_capacity("llama-3.1-405b", "L4", CHAT_SLO, CHAT_MIX) is None
    assert replica_capacity("llama-3.1-70b", "H100", CHAT_SLO, CHAT_MIX, gpus=2) is None  # 141 GB in 2 x 80 GB
    assert replica_capacity("llama-3.1-8b", "L4", CHAT_SLO, CHAT_MIX, max_model_len=131072, gpus=1) is None


def test_user_memory_figure_sizes_the_replica():
    # the user says a replica needs 100 GB (weights + KV): two 80 GB GPUs hold 141 GB usable
    assert gpus_per_replica("llama-3.1-70b", "H100", dtype="fp8", memory_gb=100) == 2
    assert replica_capacity("llama-3.1-8b", "L4", CHAT_SLO, CHAT_MIX, memory_gb=30).gpus == 2


def test_quantised_weights_shrink_the_replica():
    assert gpus_per_replica("llama-3.1-70b", "A100-80GB", dtype="int4") == 1
    assert gpus_per_replica("llama-3.1-70b", "A100-80GB", dtype="int8") == 2


def test_measured_profile_in_settings_dir_overrides_the_estimate(gpufleet_home):
    # gpufleet_home (tests/conftest.py) is this test's own GPUFLEET_HOME
    save_measured_profile(gpufleet_home / "profiles", measured(rps=1.7))
    got = replica_capacity("llama-3.1-8b", "L4", CHAT_SLO, CHAT_MIX)
    assert (got.source, got.rps, got.gpus, got.ttft_ms) == ("measured", 1.7, 1, 900.0)
    assert got.tokens_per_s == pytest.approx(1.7 * 250)


def test_profile_for_another_mix_rescales_the_estimate(tmp_path):
    save_measured_profile(tmp_path, measured(rps=1.7))
    long_mix = TokenMix(input_tokens=4000, output_tokens=500)
    got = replica_capacity("llama-3.1-8b", "L4", CHAT_SLO, long_mix, profiles_dir=tmp_path)
    ratio = 1.7 / estimate_capacity("llama-3.1-8b", "L4", 1, CHAT_SLO, CHAT_MIX).rps
    assert got.source == "measured-scaled"
    assert got.rps == pytest.approx(estimate_capacity("llama-3.1-8b", "L4", 1, CHAT_SLO, long_mix).rps * ratio)


def test_profile_of_another_gpu_is_ignored(tmp_path):
    save_measured_profile(tmp_path, measured(rps=1.7, gpu="A10G"))
    assert replica_capacity("llama-3.1-8b", "L4", CHAT_SLO, CHAT_MIX, profiles_dir=tmp_path).source == "estimate"


def test_profile_round_trips(tmp_path):
    profile = measured(rps=2.5)
    save_measured_profile(tmp_path, profile)
    assert load_measured_profile(tmp_path, "llama-3.1-8b", "L4") == profile
    assert load_measured_profile(tmp_path, "llama-3.1-8b", "H100") is None


def test_rewritten_profile_is_reread(tmp_path):
    save_measured_profile(tmp_path, measured(rps=1.0))
    assert replica_capacity("llama-3.1-8b", "L4", CHAT_SLO, CHAT_MIX, profiles_dir=tmp_path).rps == 1.0
    save_measured_profile(tmp_path, measured(rps=3.0))
    assert replica_capacity("llama-3.1-8b", "L4", CHAT_SLO, CHAT_MIX, profiles_dir=tmp_path).rps == 3.0


def test_broken_profile_is_an_input_error_saying_how_to_fix(tmp_path):
    (tmp_path / "llama-3.1-8b__L4.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="To fix"):
        replica_capacity("llama-3.1-8b", "L4", CHAT_SLO, CHAT_MIX, profiles_dir=tmp_path)


def test_measured_model_without_known_architecture_still_answers(tmp_path):
    save_measured_profile(tmp_path, measured(rps=4.0, model="my-finetune"))
    got = replica_capacity("my-finetune", "L4", CHAT_SLO, CHAT_MIX, profiles_dir=tmp_path)
    assert (got.source, got.rps) == ("measured", 4.0)
