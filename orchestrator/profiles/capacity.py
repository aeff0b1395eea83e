r"""How many GPUs one replica needs, and how many requests/s it sustains within its SLOs.

The planner asks this for every (model, GPU type) it could rent, so answers are memoised and
cost microseconds. A measured profile (written by `orchestrator profile` from vLLM's serving
benchmark against a live replica) wins over the performance-model estimate; the result
always says which one it is.

Estimate: `closed_form.ReplicaQueue` finds the highest Poisson rate at which at most 5 % of
requests miss the TTFT target and at most 5 % miss the TPOT target (p95s, as the SLO asks), with
KV use and running sequences kept clear of vLLM's limits; `binding` names the limit hit. A size
mix is priced per bucket, then every estimated bucket's rate is scaled by the mix's interference
factor (the mix's own closed-form rate over its time-shared rate, at most 1): long prompts in the
mix stretch the short ones' TPOT and queue their first tokens.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from pathlib import Path
from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.gpus import Dtype, GpuSpec, gpu_spec
from orchestrator.errors import InputError
from orchestrator.profiles.architectures import Architecture, architecture
from orchestrator.profiles.closed_form import Binding, ReplicaQueue, Size
from orchestrator.profiles.files import read_versioned, write_atomically
from orchestrator.profiles.fit import Scales, load_fit
from orchestrator.profiles.perf_model import (
    ACTIVATION_RESERVE_GB,
    GPU_MEMORY_UTILIZATION,
    ReplicaModel,
    bundled_calibration,
)
from orchestrator.settings import load_settings

logger = logging.getLogger(__name__)

DEFAULT_KV_RESERVE_TOKENS = 8192  # KV a replica must hold when no max_model_len is given
MATCH_TOLERANCE = 0.05  # a measured profile answers for a mix/SLO within 5 % of its own


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
    source: Literal["estimate", "measured", "measured-scaled", "fitted"]
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
def _replica(arch: Architecture, gpu: GpuSpec, tp: int, dtype: Dtype, scales: Scales = (1.0, 1.0)) -> ReplicaModel:
    """The replica model with the bundled constants, its compute and memory times scaled by `scales` (a fit)."""
    cal = bundled_calibration()
    compute, memory = scales
    if scales != (1.0, 1.0):  # model_copy: a scaled efficiency may leave (0, 1] for a machine faster than the model
        cal = cal.model_copy(update={"mfu": cal.mfu / compute, "mbu": cal.mbu / memory,
                                     "layer_overhead_ms": cal.layer_overhead_ms * memory})
    return ReplicaModel(arch, gpu, tp, dtype, cal)


def gpus_per_replica(
    arch: Architecture | str,
    gpu: GpuSpec | str,
    dtype: Dtype = "bf16",
    max_model_len: int | None = None,
    memory_gb: float | None = None,
) -> int | None:
    """Smallest power-of-two tensor parallel degree (<= 8, one node) that holds the weights plus
    KV for one `max_model_len` sequence (default min(model context, 8192)) in 90 % of memory;
    it must also divide the attention heads. With `memory_gb` (the user's own figure for
    weights + KV) that much must fit instead. None if no degree fits."""
    arch, gpu = _arch(arch), _gpu(gpu)
    for tp in _tensor_parallel_degrees(arch, gpu):
        if _fits(arch, gpu, tp, dtype, max_model_len, memory_gb):
            return tp
    return None


def _fits(arch: Architecture, gpu: GpuSpec, tp: int, dtype: Dtype, max_model_len: int | None,
          memory_gb: float | None) -> bool:
    if memory_gb is not None:
        return tp * (gpu.memory_gb * GPU_MEMORY_UTILIZATION - ACTIVATION_RESERVE_GB) >= memory_gb
    reserve = max_model_len if max_model_len is not None else min(arch.max_context, DEFAULT_KV_RESERVE_TOKENS)
    return _replica(arch, gpu, tp, dtype).kv_capacity_tokens() >= reserve


def _tensor_parallel_degrees(arch: Architecture, gpu: GpuSpec) -> tuple[int, ...]:
    """Powers of two up to the GPU's node limit that split the attention heads evenly (as vLLM requires)."""
    degrees = (2**k for k in range(int(math.log2(gpu.max_tensor_parallel)) + 1))
    return tuple(
        t for t in degrees if arch.heads % t == 0 and (arch.kv_heads % t == 0 or t % arch.kv_heads == 0)
    )


def estimate_capacity(
    arch: Architecture | str,
    gpu: GpuSpec | str,
    gpus: int,
    slo: SloTargets,
    mix: TokenMixLike,
    dtype: Dtype = "bf16",
    *,
    scales: Scales = (1.0, 1.0),
) -> CapacityEstimate:
    """Highest request rate one replica of `gpus` GPUs sustains within `slo` (module docstring);
    `scales`: a fitted (compute, memory) time scale for this model and GPU (`profiles.fit`)."""
    arch, gpu = _arch(arch), _gpu(gpu)
    if gpus not in _tensor_parallel_degrees(arch, gpu):
        raise InputError(
            f"{arch.name} cannot run tensor parallel over {gpus} {gpu.name}. To fix: use one of "
            f"{', '.join(map(str, _tensor_parallel_degrees(arch, gpu)))} GPUs per replica."
        )
    return _estimate(
        arch, gpu, gpus, float(slo.ttft_p95_ms), float(slo.tpot_p95_ms),
        float(mix.input_tokens), float(mix.output_tokens), dtype, scales,
    )


@functools.lru_cache(maxsize=65536)
def _estimate(
    arch: Architecture, gpu: GpuSpec, gpus: int, ttft_slo: float, tpot_slo: float,
    input_tokens: float, output_tokens: float, dtype: Dtype, scales: Scales = (1.0, 1.0),
) -> CapacityEstimate:
    queue = ReplicaQueue(_replica(arch, gpu, gpus, dtype, scales), [Size(input_tokens, output_tokens, 1.0)], ttft_slo, tpot_slo)
    point, binding = queue.max_rate()
    if point is None:
        return CapacityEstimate(model=arch.name, gpu=gpu.name, gpus=gpus, rps=0.0, tokens_per_s=0.0,
                                source="estimate", binding=binding)
    rps = point.rate_per_ms * 1e3
    return CapacityEstimate(
        model=arch.name, gpu=gpu.name, gpus=gpus, rps=rps, batch=point.batch, ttft_ms=point.ttft_p95_ms,
        tpot_ms=point.tpot_p95_ms, tokens_per_s=rps * output_tokens, source="estimate", binding=binding,
    )


# --- measured profiles -----------------------------------------------------------------------


def profile_path(directory: Path, model: str, gpu: str) -> Path:
    """Where the measured profile of `model` on `gpu` lives."""
    return directory / f"{model}__{gpu}.json"


def sized_profile_path(directory: Path, model: str, gpu: str, mix: TokenMix) -> Path:
    """Where the measured profile of `model` on `gpu` at one request size (a size bucket) lives."""
    return directory / f"{model}__{gpu}__in{round(mix.input_tokens)}-out{round(mix.output_tokens)}.json"


def save_measured_profile(directory: Path, profile: CapacityProfile, *, per_size: bool = False) -> Path:
    """Write `profile` atomically (readers never see half a file); returns its path.

    `per_size`: a profile of one size bucket (`orchestrator profile --per-size`), kept beside the
    model x GPU profile, one file per size; it answers for that size only.
    """
    path = (sized_profile_path(directory, profile.model, profile.gpu, profile.mix) if per_size
            else profile_path(directory, profile.model, profile.gpu))
    return write_atomically(path, profile.model_dump_json(indent=2) + "\n")


PROFILE_FIX = "re-run `orchestrator profile` for this model and GPU, or delete the file."


def load_measured_profile(directory: Path, model: str, gpu: str) -> CapacityProfile | None:
    """The measured profile of `model` on `gpu` in `directory`, or None if there is none."""
    return read_versioned(profile_path(directory, model, gpu), CapacityProfile, "Measured profile", PROFILE_FIX)


def load_sized_profiles(directory: Path, model: str, gpu: str) -> list[CapacityProfile]:
    """The per-size measured profiles of `model` on `gpu` in `directory` (none: an empty list)."""
    try:
        stat = directory.stat()
    except FileNotFoundError:
        return []
    prefix = f"{model}__{gpu}__"
    found = []
    for name in _profile_names(directory, stat.st_mtime_ns):
        if name.startswith(prefix):
            profile = read_versioned(directory / name, CapacityProfile, "Measured profile", PROFILE_FIX)
            if profile is not None and (profile.model, profile.gpu) == (model, gpu):
                found.append(profile)
    return found


@functools.lru_cache(maxsize=64)
def _profile_names(directory: Path, mtime_ns: int) -> tuple[str, ...]:  # mtime_ns: re-listed when files come or go
    return tuple(sorted(p.name for p in directory.glob("*__*__*.json")))


def replica_capacity(
    arch: Architecture | str,
    gpu: GpuSpec | str,
    slo: SloTargets,
    mix: TokenMixLike,
    *,
    gpus: int | None = None,
    dtype: Dtype = "bf16",
    max_model_len: int | None = None,
    memory_gb: float | None = None,
    model_name: str | None = None,
    profiles_dir: Path | None = None,
) -> CapacityEstimate | None:
    """One replica's capacity on `gpu`, preferring a measured profile over the estimate.

    A per-size profile (`save_measured_profile(per_size=True)`) measured at this mix answers first.
    The profile of `model_name` (default: the architecture's name) on this GPU answers directly
    when it was measured for the same GPU count, dtype, SLO and mix (within 5 %). Otherwise a fit of
    this model on this GPU (`profiles.fit`, written by `profile --per-size`) estimates with its
    scales ("fitted"), or else the estimate is rescaled by measured/estimated rps at the profile's
    own conditions ("measured-scaled"). `gpus` defaults to the profile's GPU count, else to
    `gpus_per_replica`. None when the model does not fit this GPU type (at `gpus`, if given).
    `profiles_dir` defaults to settings.profiles_dir. A profile alone is enough for a model
    whose architecture gpufleet does not know, if it answers the question directly.
    """
    spec = _gpu(gpu)
    name = model_name or (arch if isinstance(arch, str) else arch.name)
    slo_ = Slo(ttft_p95_ms=slo.ttft_p95_ms, tpot_p95_ms=slo.tpot_p95_ms)
    mix_ = TokenMix(input_tokens=mix.input_tokens, output_tokens=mix.output_tokens)
    directory = profiles_dir or load_settings().profiles_dir
    for sized in load_sized_profiles(directory, name, spec.name):  # a profile of this very size answers first
        if sized.answers(gpus or sized.gpus_per_replica, dtype, slo_, mix_):
            return CapacityEstimate(
                model=name, gpu=spec.name, gpus=sized.gpus_per_replica, rps=sized.rps, ttft_ms=sized.ttft_p95_ms,
                tpot_ms=sized.tpot_p95_ms, tokens_per_s=sized.rps * mix_.output_tokens, source="measured",
            )
    profile = load_measured_profile(directory, name, spec.name)
    if profile is not None and gpus is None:
        gpus = profile.gpus_per_replica
    if profile is not None and profile.answers(gpus, dtype, slo_, mix_):
        return CapacityEstimate(
            model=name, gpu=spec.name, gpus=gpus, rps=profile.rps, ttft_ms=profile.ttft_p95_ms,
            tpot_ms=profile.tpot_p95_ms, tokens_per_s=profile.rps * mix_.output_tokens, source="measured",
        )
    arch = _arch(arch)
    if gpus is None:
        gpus = gpus_per_replica(arch, spec, dtype, max_model_len, memory_gb)
    if gpus is None or not _fits(arch, spec, gpus, dtype, max_model_len, memory_gb):
        return None
    fit = load_fit(directory, name, spec.name)
    if fit is not None:  # the pool's own measurements, fitted: supersedes one profile's rescaling
        return estimate_capacity(arch, spec, gpus, slo_, mix_, dtype, scales=fit.scales).model_copy(
            update={"model": name, "source": "fitted"})
    # estimate_capacity raises InputError for a degree vLLM cannot run
    estimate = estimate_capacity(arch, spec, gpus, slo_, mix_, dtype).model_copy(update={"model": name})
    if profile is None:
        return estimate
    reference = estimate_capacity(arch, spec, profile.gpus_per_replica, profile.slo, profile.mix, profile.dtype)
    if reference.rps == 0:
        logger.warning("%s on %s: the estimate is 0 rps where the profile measured %.2f; using the estimate",
                       name, spec.name, profile.rps)
        return estimate
    scale = profile.rps / reference.rps
    # latencies and batch belong to the unscaled rate: drop them rather than mislabel them
    return estimate.model_copy(update={
        "rps": estimate.rps * scale, "tokens_per_s": estimate.tokens_per_s * scale,
        "batch": None, "ttft_ms": None, "tpot_ms": None, "source": "measured-scaled",
    })


class SizedDemand(Protocol):
    """One bucket of a request-size mix: mean tokens and its share of the requests."""

    input_tokens: float
    output_tokens: float
    share: float


class MixCapacity(BaseModel):
    """One replica size's capacity for every bucket of a request-size mix."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gpus: int
    by_size: tuple[CapacityEstimate, ...] = Field(description="One estimate per bucket, in the mix's order.")
    served_share: float = Field(ge=0, le=1, description="Share of the mix's requests this replica can serve within the SLO.")
    rps: float = Field(ge=0, description="Requests/s of the mix's servable part one replica sustains: "
                       "served share / sum(share_b / rps_b) over servable buckets (each request takes 1/rps_b replica-seconds).")
    interference: float = Field(1.0, gt=0, le=1, description="The factor every bucket's rate was scaled by for the "
                                "mix's interference (`mix_interference`); 1 for a single size.")

    @property
    def source(self) -> str:
        sources = {e.source for e in self.by_size if e.rps > 0} or {e.source for e in self.by_size}
        return "estimate" if sources == {"estimate"} else "+".join(sorted(sources))

    @property
    def binding(self) -> str | None:
        """What limits the largest bucket's rate (the one that costs most replicas), or why nothing is served."""
        servable = [e for e in self.by_size if e.rps > 0]
        if not servable:
            return self.by_size[0].binding if self.by_size else None
        return min(servable, key=lambda e: e.rps).binding


def best_mix_capacity(
    arch: Architecture | str,
    gpu: GpuSpec | str,
    slo: SloTargets,
    mix: list[SizedDemand],
    *,
    max_gpus: int,
    gpus: int | None = None,
    allow: Callable[[int], bool] | None = None,
    **options: object,
) -> MixCapacity | None:
    """The replica size (GPUs, up to `max_gpus`, one node) that serves a request-size mix best.

    A long-prompt bucket may miss a TTFT on one GPU and meet it on two, and an 8B model on one
    L4 cannot meet a tight TPOT that it meets on two; so every size from the smallest that
    holds the weights is tried, and the one that serves the largest share of the mix wins, then
    the most requests/s per GPU (ties to the smaller replica, which spreads better). With
    `gpus` fixed (the spec's `gpus_per_replica`) only that size is considered; `allow` rules
    sizes out (e.g. a replica's share of the node's host memory too small to load it). None
    when no size fits within `max_gpus`. The mix's shares are the buckets' shares of the requests.
    """
    spec = _gpu(gpu)
    if not mix:
        raise InputError("a request-size mix needs at least one bucket")
    if gpus is not None:
        sizes = [gpus] if gpus <= max_gpus else []
    else:
        smallest = replica_capacity(arch, spec, slo, mix[0], **options)  # type: ignore[arg-type]
        sizes = [] if smallest is None else [smallest.gpus * 2**k for k in range(4) if smallest.gpus * 2**k <= min(max_gpus, spec.max_tensor_parallel)]
    name = str(options.get("model_name") or (arch if isinstance(arch, str) else arch.name))
    fit = load_fit(options.get("profiles_dir") or load_settings().profiles_dir, name, spec.name)  # type: ignore[arg-type]
    scales = fit.scales if fit is not None else (1.0, 1.0)
    best: MixCapacity | None = None
    for size in sizes:
        if allow is not None and not allow(size):
            continue
        found = [replica_capacity(arch, spec, slo, b, gpus=size, **options) for b in mix]  # type: ignore[arg-type]
        if any(e is None for e in found):
            continue
        factor = mix_interference(arch, spec, size, slo, mix, found, str(options.get("dtype", "bf16")), scales)  # type: ignore[arg-type]
        by_size = [e if factor == 1 or e.source == "measured" else e.model_copy(update={  # latencies belonged to the bucket alone
            "rps": e.rps * factor, "tokens_per_s": e.tokens_per_s * factor, "batch": None, "ttft_ms": None, "tpot_ms": None})
            for e in found]
        served = sum(b.share for b, e in zip(mix, by_size) if e.rps > 0)
        load = sum(b.share / e.rps for b, e in zip(mix, by_size) if e.rps > 0)
        option = MixCapacity(gpus=size, by_size=tuple(by_size), served_share=min(1.0, served), rps=served / load if load else 0.0,
                             interference=factor)
        if best is None or option.served_share > best.served_share + 1e-9 or (
                option.served_share > best.served_share - 1e-9 and option.rps / size > best.rps / best.gpus * 1.0001):
            best = option
    return best


def mix_interference(
    arch: Architecture | str, gpu: GpuSpec, gpus: int, slo: SloTargets, mix: list[SizedDemand],
    by_size: list[CapacityEstimate], dtype: Dtype, scales: Scales = (1.0, 1.0),
) -> float:
    """How much a mix's buckets slow each other: the closed-form rate of the mix's servable buckets
    together over their time-shared estimates (1 / sum share_b / rate_b), at most 1.

    Per-bucket rates price each size on a replica of its own; sharing one replica, a long prompt's
    prefill stretches every running request's TPOT and queues the short prompts behind it, which
    only the mix as a whole shows. 1 when fewer than two buckets are servable or the architecture
    is unknown (a measured profile alone answered). Not applied to a bucket measured at its own size
    (a per-size profile): that is what a replica did, and the estimate's interference would mix a
    model into a measurement; `orchestrator replay` measures the mix together. `scales`: the fit of this
    model and GPU (`profiles.fit`), so the factor is priced on the model the fitted rates come from.
    """
    servable = [b for b, e in zip(mix, by_size) if e.rps > 0]
    if len(servable) < 2:
        return 1.0
    try:
        arch = _arch(arch)
    except InputError:
        return 1.0
    sizes = tuple(Size(float(b.input_tokens), float(b.output_tokens), float(b.share)) for b in servable)
    return _mix_interference(arch, gpu, gpus, float(slo.ttft_p95_ms), float(slo.tpot_p95_ms), sizes, dtype, scales)


@functools.lru_cache(maxsize=16384)
def _mix_interference(arch: Architecture, gpu: GpuSpec, gpus: int, ttft_slo: float, tpot_slo: float,
                      sizes: tuple[Size, ...], dtype: Dtype, scales: Scales) -> float:
    alone = [_estimate(arch, gpu, gpus, ttft_slo, tpot_slo, b.input_tokens, b.output_tokens, dtype, scales).rps for b in sizes]
    priced = [(b, r) for b, r in zip(sizes, alone) if r > 0]
    if len(priced) < 2:
        return 1.0
    together, _ = ReplicaQueue(_replica(arch, gpu, gpus, dtype, scales), [b for b, _ in priced], ttft_slo, tpot_slo).max_rate()
    if together is None:  # each size alone is servable when idle, so the mix is too; kept for safety
        return 1.0
    time_shared = sum(b.share for b, _ in priced) / sum(b.share / r for b, r in priced)
    return min(1.0, together.rate_per_ms * 1e3 / time_shared)
