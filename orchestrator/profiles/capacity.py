r"""How many GPUs one replica needs, and how many requests/s it sustains within its SLOs.

The planner asks this for every (model, GPU type) it could rent, so answers are memoised and
cost microseconds. A measured profile (written by `orchestrator profile` from vLLM's serving
benchmark against a live replica) wins over the performance-model estimate; the result
always says which one it is.

Estimate, for a token mix of I input and O output tokens per request (means) on a replica
whose `perf_model.ReplicaModel` gives prefill time T_p = prefill(I) and decode step time
s(B) = decode_step(B, I + O/2), as a function of B, the mean number of running sequences:

    lambda(B) = B / (O*s(B) + B*T_p)          requests/ms: Little's law with prefills
                                              interleaved into the decode loop (vLLM runs a
                                              waiting prefill at the next step boundary)
    TPOT(B)   = s(B) + B*T_p/O                each output token also waits for B/O prefills
    rho(B)    = lambda*T_p                    share of time spent prefilling
    TTFT(B)   = T_p + W95(rho) + s(B)         own prefill + queue + the step in flight
    W95(rho)  = 0.5 * T_p * ln(rho/0.05) / (1 - rho)   (0 when rho <= 0.05)

W95 is the p95 wait of an M/M/1 queue halved, the usual M/D/1 approximation (deterministic
prefill times queue about half as long as exponential ones). TPOT is the mean per-token time:
a request's TPOT averages over its O tokens, so its p95 stays near the mean under steady
load; no extra factor is applied. All three grow with B, so the answer is the largest B (by
bisection) with TPOT <= SLO, TTFT <= SLO and B*(I + O/2) <= KV room (mean tokens held per
running sequence), capped at vLLM's default max_num_seqs. `binding` names the limit hit.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import os
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.catalog.gpus import Dtype, GpuSpec, gpu_spec
from orchestrator.errors import InputError
from orchestrator.profiles.architectures import Architecture, architecture
from orchestrator.profiles.perf_model import ReplicaModel, bundled_calibration
from orchestrator.settings import load_settings

logger = logging.getLogger(__name__)

MAX_NUM_SEQS = 256  # vLLM's default cap on running sequences per replica
DEFAULT_KV_RESERVE_TOKENS = 8192  # KV a replica must hold when no max_model_len is given
MATCH_TOLERANCE = 0.05  # a measured profile answers for a mix/SLO within 5 % of its own
_BISECT_STEPS = 40
_MIN_BATCH = 1e-6

Binding = Literal["tpot", "ttft", "kv_memory", "max_num_seqs"]


class SloTargets(Protocol):
    """Anything with p95 latency targets in ms (the fleet spec's SLO block fits)."""

    ttft_p95_ms: float
    tpot_p95_ms: float


class TokenMixLike(Protocol):
    """Anything with mean input and output tokens per request."""

    input_tokens: float
    output_tokens: float


class Slo(BaseModel):
    """p95 latency targets: time to first token and time per output token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttft_p95_ms: float = Field(gt=0)
    tpot_p95_ms: float = Field(gt=0)


class TokenMix(BaseModel):
    """Mean tokens per request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: float = Field(gt=0)
    output_tokens: float = Field(ge=1)


class CapacityEstimate(BaseModel):
    """What one replica sustains, and where the number comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    gpu: str
    gpus: int = Field(description="GPUs in one replica (tensor parallel degree).")
    rps: float = Field(ge=0, description="Requests/s one replica sustains within the SLOs.")
    batch: float | None = Field(None, description="Mean running sequences at that rate.")
    ttft_ms: float | None = Field(None, description="TTFT p95 at that rate.")
    tpot_ms: float | None = Field(None, description="TPOT p95 at that rate.")
    tokens_per_s: float = Field(ge=0, description="Output tokens/s at that rate.")
    source: Literal["estimate", "measured", "measured-scaled"]
    binding: Binding | None = Field(None, description="What limited rps (estimates only).")


class CapacityProfile(BaseModel):
    """A measured profile: one JSON file per model x GPU in the profiles dir."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    gpu: str
    gpus_per_replica: int = Field(gt=0)
    dtype: Dtype = "bf16"
    mix: TokenMix
    slo: Slo
    rps: float = Field(ge=0, description="Highest request rate that met the SLO.")
    ttft_p95_ms: float | None = Field(None, description="Measured at `rps`.")
    tpot_p95_ms: float | None = Field(None, description="Measured at `rps`.")
    measured_at: dt.datetime
    tool: str = Field(description="What measured it, e.g. 'vllm benchmark_serving 0.6.3'.")

    def answers(self, gpus: int, dtype: str, slo: Slo, mix: TokenMix) -> bool:
        """Whether this measurement is for the same replica shape, SLO and token mix."""

        def close(a: float, b: float) -> bool:
            return abs(a - b) <= MATCH_TOLERANCE * max(abs(a), abs(b))

        return (
            gpus == self.gpus_per_replica
            and dtype == self.dtype
            and close(mix.input_tokens, self.mix.input_tokens)
            and close(mix.output_tokens, self.mix.output_tokens)
            and close(slo.ttft_p95_ms, self.slo.ttft_p95_ms)
            and close(slo.tpot_p95_ms, self.slo.tpot_p95_ms)
        )


def _arch(arch: Architecture | str) -> Architecture:
    return arch if isinstance(arch, Architecture) else architecture(arch)


def _gpu(gpu: GpuSpec | str) -> GpuSpec:
    return gpu if isinstance(gpu, GpuSpec) else gpu_spec(gpu)


@functools.lru_cache(maxsize=4096)
def _replica(arch: Architecture, gpu: GpuSpec, tp: int, dtype: Dtype) -> ReplicaModel:
    return ReplicaModel(arch, gpu, tp, dtype, bundled_calibration())


def gpus_per_replica(
    arch: Architecture | str, gpu: GpuSpec | str, dtype: Dtype = "bf16", max_model_len: int | None = None
) -> int | None:
    """Smallest power-of-two tensor parallel degree (<= 8, one node) that holds the weights plus
    KV for one `max_model_len` sequence (default min(model context, 8192)) in 90 % of memory;
    it must also divide the attention heads. None if no degree fits."""
    arch, gpu = _arch(arch), _gpu(gpu)
    reserve = max_model_len if max_model_len is not None else min(arch.max_context, DEFAULT_KV_RESERVE_TOKENS)
    tp = 1
    while tp <= gpu.max_tensor_parallel:
        if arch.heads % tp == 0 and arch.kv_heads % tp == 0 and _replica(arch, gpu, tp, dtype).kv_capacity_tokens() >= reserve:
            return tp
        tp *= 2
    return None


def estimate_capacity(
    arch: Architecture | str,
    gpu: GpuSpec | str,
    gpus: int,
    slo: SloTargets,
    mix: TokenMixLike,
    dtype: Dtype = "bf16",
) -> CapacityEstimate:
    """Highest request rate one replica of `gpus` GPUs sustains within `slo` (module docstring)."""
    return _estimate(
        _arch(arch), _gpu(gpu), gpus, float(slo.ttft_p95_ms), float(slo.tpot_p95_ms),
        float(mix.input_tokens), float(mix.output_tokens), dtype,
    )


@functools.lru_cache(maxsize=65536)
def _estimate(
    arch: Architecture, gpu: GpuSpec, gpus: int, ttft_slo: float, tpot_slo: float,
    input_tokens: float, output_tokens: float, dtype: Dtype,
) -> CapacityEstimate:
    model = _replica(arch, gpu, gpus, dtype)
    prefill = model.prefill_ms(input_tokens)
    context = input_tokens + output_tokens / 2

    def at(batch: float) -> tuple[float, float, float, float]:
        step = model.decode_step_ms(batch, context)
        rate = batch / (output_tokens * step + batch * prefill)  # requests per ms
        rho = rate * prefill
        wait = 0.5 * prefill * math.log(rho / 0.05) / (1 - rho) if rho > 0.05 else 0.0
        return rate, prefill + wait + step, step + batch * prefill / output_tokens, step

    def result(batch: float, binding: Binding) -> CapacityEstimate:
        rate, ttft, tpot, _ = at(batch)
        return CapacityEstimate(
            model=arch.name, gpu=gpu.name, gpus=gpus, rps=rate * 1e3, batch=batch, ttft_ms=ttft,
            tpot_ms=tpot, tokens_per_s=rate * 1e3 * output_tokens, source="estimate", binding=binding,
        )

    def zero(binding: Binding) -> CapacityEstimate:
        return CapacityEstimate(model=arch.name, gpu=gpu.name, gpus=gpus, rps=0.0, tokens_per_s=0.0,
                                source="estimate", binding=binding)

    kv_batch = model.kv_capacity_tokens() / context
    if model.kv_capacity_tokens() < input_tokens + output_tokens:
        return zero("kv_memory")
    idle_step = model.decode_step_ms(1.0, context)
    if idle_step > tpot_slo:
        return zero("tpot")
    if prefill + idle_step > ttft_slo:
        return zero("ttft")

    def violated(batch: float) -> Binding | None:
        _, ttft, tpot, _ = at(batch)
        if tpot > tpot_slo:
            return "tpot"
        if ttft > ttft_slo:
            return "ttft"
        return None

    top = min(kv_batch, MAX_NUM_SEQS)
    if violated(top) is None:
        return result(top, "kv_memory" if kv_batch <= MAX_NUM_SEQS else "max_num_seqs")
    low, high = _MIN_BATCH, top
    for _ in range(_BISECT_STEPS):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if violated(mid) is None else (low, mid)
    return result(low, violated(high) or "tpot")


# --- measured profiles -----------------------------------------------------------------------


def profile_path(directory: Path, model: str, gpu: str) -> Path:
    """Where the measured profile of `model` on `gpu` lives."""
    return directory / f"{model}__{gpu}.json"


def save_measured_profile(directory: Path, profile: CapacityProfile) -> Path:
    """Write `profile` atomically (readers never see half a file); returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = profile_path(directory, profile.model, profile.gpu)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(profile.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_measured_profile(directory: Path, model: str, gpu: str) -> CapacityProfile | None:
    """The measured profile of `model` on `gpu` in `directory`, or None if there is none."""
    path = profile_path(directory, model, gpu)
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    return _read_profile(path, mtime)


@functools.lru_cache(maxsize=1024)
def _read_profile(path: Path, mtime_ns: int) -> CapacityProfile:  # mtime_ns: re-read when rewritten
    try:
        return CapacityProfile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise InputError(
            f"Measured profile {path} is unreadable: {exc}. "
            "To fix: re-run `orchestrator profile` for this model and GPU, or delete the file."
        ) from exc


def capacity(
    model: str,
    gpu: GpuSpec | str,
    slo: SloTargets,
    mix: TokenMixLike,
    gpus: int | None = None,
    dtype: Dtype = "bf16",
    profiles_dir: Path | None = None,
) -> CapacityEstimate:
    """One replica's capacity, preferring a measured profile over the estimate.

    The profile answers directly when it was measured for the same GPU count, dtype, SLO and
    mix (within 5 %); otherwise it rescales the estimate by measured/estimated rps at the
    profile's own conditions ("measured-scaled"). `gpus` defaults to the profile's GPU count,
    else to `gpus_per_replica`. `profiles_dir` defaults to settings.profiles_dir.
    """
    spec = _gpu(gpu)
    slo_, mix_ = Slo(ttft_p95_ms=slo.ttft_p95_ms, tpot_p95_ms=slo.tpot_p95_ms), TokenMix(
        input_tokens=mix.input_tokens, output_tokens=mix.output_tokens
    )
    profile = load_measured_profile(profiles_dir or load_settings().profiles_dir, model, spec.name)
    if profile is not None and gpus is None:
        gpus = profile.gpus_per_replica
    if profile is not None and profile.answers(gpus, dtype, slo_, mix_):
        return CapacityEstimate(
            model=model, gpu=spec.name, gpus=gpus, rps=profile.rps, ttft_ms=profile.ttft_p95_ms,
            tpot_ms=profile.tpot_p95_ms, tokens_per_s=profile.rps * mix_.output_tokens, source="measured",
        )
    arch = _arch(model)
    if gpus is None:
        gpus = gpus_per_replica(arch, spec, dtype)
        if gpus is None:
            return CapacityEstimate(model=model, gpu=spec.name, gpus=spec.max_tensor_parallel, rps=0.0,
                                    tokens_per_s=0.0, source="estimate", binding="kv_memory")
    estimate = estimate_capacity(arch, spec, gpus, slo_, mix_, dtype)
    if profile is None:
        return estimate
    reference = estimate_capacity(arch, spec, profile.gpus_per_replica, profile.slo, profile.mix, profile.dtype)
    if reference.rps == 0:
        logger.warning("%s on %s: the estimate is 0 rps where the profile measured %.2f; using the estimate",
                       model, spec.name, profile.rps)
        return estimate
    scale = profile.rps / reference.rps
    return estimate.model_copy(
        update={"rps": estimate.rps * scale, "tokens_per_s": estimate.tokens_per_s * scale, "source": "measured-scaled"}
    )
