"""Per-size measured profiles (`orchestrator profile --per-size`): one per size bucket, each answering for its
own size first; other sizes keep the model x GPU profile or the estimate. The planner's per-bucket capacity
then is the measured one."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from orchestrator.errors import InputError
from orchestrator.profiles.capacity import (
    CapacityProfile, Slo, TokenMix, estimate_capacity, load_sized_profiles, replica_capacity, save_measured_profile,
)
from orchestrator.profiling.runner import size_buckets
from orchestrator.spec import load_spec
from tests.conftest import ENVIRONMENTS, run_cli

SLO = Slo(ttft_p95_ms=2000, tpot_p95_ms=100)
SHORT, LONG = TokenMix(input_tokens=200, output_tokens=50), TokenMix(input_tokens=3000, output_tokens=400)


def measured(rps: float, mix: TokenMix, **changes) -> CapacityProfile:
    fields = dict(model="llama-3.1-8b", gpu="L4", gpus_per_replica=1, mix=mix, slo=SLO, rps=rps, ttft_p95_ms=500.0,
                  tpot_p95_ms=60.0, measured_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC), tool="test")
    return CapacityProfile(**(fields | changes))


def test_each_size_answers_for_itself_beside_the_model_profile(tmp_path):
    a = save_measured_profile(tmp_path, measured(9.0, SHORT), per_size=True)
    b = save_measured_profile(tmp_path, measured(0.8, LONG), per_size=True)
    save_measured_profile(tmp_path, measured(3.0, TokenMix(input_tokens=1000, output_tokens=250)))
    assert (a.name, b.name) == ("llama-3.1-8b__L4__in200-out50.json", "llama-3.1-8b__L4__in3000-out400.json")
    assert [p.rps for p in load_sized_profiles(tmp_path, "llama-3.1-8b", "L4")] == [9.0, 0.8]
    short = replica_capacity("llama-3.1-8b", "L4", SLO, SHORT, profiles_dir=tmp_path)
    long = replica_capacity("llama-3.1-8b", "L4", SLO, LONG, profiles_dir=tmp_path)
    assert (short.source, short.rps, long.source, long.rps) == ("measured", 9.0, "measured", 0.8)
    other = replica_capacity("llama-3.1-8b", "L4", SLO, TokenMix(input_tokens=600, output_tokens=100),
                             profiles_dir=tmp_path)
    assert other.source == "measured-scaled"  # the model x GPU profile still rescales the other sizes
    assert replica_capacity("llama-3.1-8b", "L4", Slo(ttft_p95_ms=500, tpot_p95_ms=50), SHORT,
                            profiles_dir=tmp_path).source != "measured"  # another SLO: not this measurement


def test_a_rewritten_size_is_reread_and_other_gpus_are_ignored(tmp_path):
    save_measured_profile(tmp_path, measured(9.0, SHORT), per_size=True)
    assert replica_capacity("llama-3.1-8b", "L4", SLO, SHORT, profiles_dir=tmp_path).rps == 9.0
    save_measured_profile(tmp_path, measured(7.5, SHORT), per_size=True)
    assert replica_capacity("llama-3.1-8b", "L4", SLO, SHORT, profiles_dir=tmp_path).rps == 7.5
    save_measured_profile(tmp_path, measured(1.0, SHORT, gpu="A10G"), per_size=True)
    assert replica_capacity("llama-3.1-8b", "L4", SLO, SHORT, profiles_dir=tmp_path).rps == 7.5
    assert load_sized_profiles(tmp_path / "absent", "llama-3.1-8b", "L4") == []
    assert replica_capacity("llama-3.1-8b", "L4", SLO, LONG, profiles_dir=tmp_path) == \
        estimate_capacity("llama-3.1-8b", "L4", 1, SLO, LONG).model_copy(update={"model": "llama-3.1-8b"})


def local_with_mix(tmp_path, mix: list[dict]):
    doc = yaml.safe_load((ENVIRONMENTS / "local.yaml").read_text())
    demand = doc["demand"][0]
    del demand["input_tokens"], demand["output_tokens"]
    demand["size_mix"] = mix
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_buckets_to_measure_are_the_demands_size_mix(tmp_path):
    spec = load_spec(local_with_mix(tmp_path, [{"input_tokens": 64, "output_tokens": 16, "share": 0.7},
                                               {"input_tokens": 300, "output_tokens": 100, "share": 0.3}]))
    assert size_buckets(spec, "tiny-llama") == [TokenMix(input_tokens=64, output_tokens=16),
                                                TokenMix(input_tokens=300, output_tokens=100)]
    with pytest.raises(InputError, match="has no size_mix"):
        size_buckets(load_spec(ENVIRONMENTS / "local.yaml"), "tiny-llama")
    too_long = load_spec(local_with_mix(tmp_path, [{"input_tokens": 500, "output_tokens": 100, "share": 1}]))
    with pytest.raises(InputError, match=r"in 500 \+ out 100 exceed its max_model_len \(512\)"):
        size_buckets(too_long, "tiny-llama")


def test_the_plan_uses_the_measured_capacity_of_each_bucket(tmp_path, capsys, gpufleet_home):
    path = local_with_mix(tmp_path, [{"input_tokens": 64, "output_tokens": 16, "share": 0.7},
                                     {"input_tokens": 300, "output_tokens": 100, "share": 0.3}])
    slo = Slo(ttft_p95_ms=5000, tpot_p95_ms=500)
    for rps, mix in ((6.0, TokenMix(input_tokens=64, output_tokens=16)), (1.5, TokenMix(input_tokens=300, output_tokens=100))):
        save_measured_profile(gpufleet_home / "profiles", measured(rps, mix, model="tiny-llama", gpu="CPU", slo=slo,
                                                                  dtype="bf16"), per_size=True)
    code, out, err = run_cli(capsys, "plan", "--spec", str(path), "--format", "json")
    assert code == 0, err
    import json

    capacity = json.loads(out)["capacity"][0]
    assert [(b["input_tokens"], b["rps"]) for b in capacity["by_size"]] == [(64, 6.0), (300, 1.5)]
    assert capacity["source"] == "measured"


def test_profile_per_size_without_a_size_mix_is_bad_input(capsys):
    code, out, err = run_cli(capsys, "profile", "--env", "local", "--model", "tiny-llama", "--pool", "local",
                             "--per-size")
    assert code == 2 and "has no size_mix" in err.replace("\n", " ")
