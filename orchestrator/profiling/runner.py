"""Measure one replica's capacity at rising load, and write it as the planner's capacity profile.

For each request rate in turn (Poisson arrivals, `seconds_per_rate` worth of requests at
the demand's mean token mix, generation forced to the full output length), vLLM's serving
benchmark reports p95 TTFT and TPOT. A rate passes when both are within the model's SLO
and the replica kept up (it completed at least `KEPT_UP` of the offered rate, with no
failed request). Load rises until a rate fails; the highest passing rate is the replica's
capacity (0 when even the lowest fails), saved with `save_measured_profile`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.errors import GpufleetError, InputError
from orchestrator.profiles.capacity import CapacityProfile, Slo, TokenMix, save_measured_profile
from orchestrator.replica.weights import local_source
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec, Model, Pool

logger = logging.getLogger(__name__)
Named = TypeVar("Named", Model, Pool)

DEFAULT_RATES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
MIN_PROMPTS = 8
KEPT_UP = 0.8  # completions per second over offered rate (Poisson bursts and the tail lower it)
STEP_TIMEOUT_FACTOR = 10  # a step may take this many times its nominal duration


@dataclass(frozen=True)
class RateStep:
    """One load level and what the benchmark measured at it."""

    rate: float
    achieved_rps: float
    ttft_p95_ms: float
    tpot_p95_ms: float
    completed: int
    failed: int
    within_slo: bool


@dataclass(frozen=True)
class ProfileResult:
    profile: CapacityProfile
    path: Path
    steps: list[RateStep]


def parse_rates(text: str | None) -> tuple[float, ...]:
    """Comma-separated rising positive rates (req/s); the default ladder when `text` is None."""
    if text is None:
        return DEFAULT_RATES
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError as exc:
        raise InputError(f"--rates '{text}' is not a list of numbers. To fix: e.g. --rates 1,2,4") from exc
    if not rates or any(r <= 0 for r in rates) or list(rates) != sorted(set(rates)):
        raise InputError(f"--rates '{text}' must be positive and rising. To fix: e.g. --rates 1,2,4")
    return rates


def token_mix(spec: FleetSpec, model: str) -> TokenMix:
    """The model's demand-weighted mean input and output tokens."""
    demand = [d for d in spec.demand if d.model == model]
    if not demand:
        raise InputError(f"model {model} has no demand, so no token mix to measure at. To fix: add a demand entry")
    total = sum(d.requests_per_second for d in demand)
    return TokenMix(input_tokens=round(sum(d.input_tokens * d.requests_per_second for d in demand) / total),
                    output_tokens=round(sum(d.output_tokens * d.requests_per_second for d in demand) / total))


def measure_capacity(
    spec: FleetSpec, model_name: str, pool_name: str, replica_url: str, api_key: SecretStr,
    settings: Settings, rates: tuple[float, ...] = DEFAULT_RATES, seconds_per_rate: float = 20.0,
    mix: TokenMix | None = None,
) -> ProfileResult:
    """Benchmark the replica at `replica_url` at rising `rates` and save its capacity profile.

    At the demand's mean token mix by default; with `mix` (one size bucket), at that size, saved
    as a per-size profile that answers for that size only.
    """
    model = _one(spec.models, model_name, "model")
    pool = _one(spec.pools, pool_name, "pool")
    per_size = mix is not None
    mix = mix or token_mix(spec, model.name)
    steps: list[RateStep] = []
    with tempfile.TemporaryDirectory(prefix="gpufleet-profile-") as results:
        for rate in rates:
            step = _run_step(model, replica_url, api_key, mix, rate, seconds_per_rate, Path(results), settings)
            logger.info("profile %s@%s at %.2f req/s: %s", model.name, pool.name, rate, step)
            steps.append(step)
            if not step.within_slo:
                break
    passing = [s for s in steps if s.within_slo]
    best = passing[-1] if passing else None
    from vllm import __version__ as vllm_version

    profile = CapacityProfile(
        model=model.name, gpu=_gpu(pool, settings), gpus_per_replica=model.gpus_per_replica or 1, dtype=model.dtype,
        mix=mix, slo=Slo(ttft_p95_ms=model.slo.ttft_p95_ms, tpot_p95_ms=model.slo.tpot_p95_ms),
        rps=best.rate if best else 0.0, ttft_p95_ms=best.ttft_p95_ms if best else None,
        tpot_p95_ms=best.tpot_p95_ms if best else None, measured_at=dt.datetime.now(dt.UTC),
        tool=f"vllm bench serve (vllm {vllm_version}), rates {', '.join(f'{s.rate:g}' for s in steps)} req/s",
    )
    return ProfileResult(profile, save_measured_profile(settings.profiles_dir, profile, per_size=per_size), steps)


def size_buckets(spec: FleetSpec, model: str) -> list[TokenMix]:
    """The request sizes the planner sizes `model`'s capacity for: its demand's size_mix buckets, each once."""
    demand = [d for d in spec.demand if d.model == model]
    if not demand:
        raise InputError(f"model {model} has no demand, so no size buckets to measure. To fix: add a demand entry")
    sizes = sorted({(b.input_tokens, b.output_tokens) for d in demand for b in d.size_mix or []})
    if not sizes:
        raise InputError(f"model {model}'s demand has no size_mix, so the planner uses one size (the mean). "
                         "To fix: add size_mix to its demand rows (docs/demand.md), or profile without --per-size")
    limit = next(m.max_model_len for m in spec.models if m.name == model)
    too_long = [f"in {i} + out {o}" for i, o in sizes if limit and i + o > limit]
    if too_long:
        raise InputError(f"model {model}: size bucket(s) {', '.join(too_long)} exceed its max_model_len ({limit}). "
                         "To fix: raise max_model_len or drop those buckets from size_mix")
    return [TokenMix(input_tokens=i, output_tokens=o) for i, o in sizes]


def _run_step(model: Model, url: str, api_key: SecretStr, mix: TokenMix, rate: float, seconds: float,
              results: Path, settings: Settings) -> RateStep:
    prompts = max(MIN_PROMPTS, math.ceil(rate * seconds))
    name = f"rate-{rate:g}.json"
    command = [
        sys.executable, "-m", "orchestrator.profiling.vllm_bench",
        "--backend", "vllm", "--base-url", url, "--endpoint", "/v1/completions",
        "--model", model.name, "--tokenizer", _tokenizer(model, settings),
        "--dataset-name", "random", "--random-input-len", str(int(mix.input_tokens)),
        "--random-output-len", str(int(mix.output_tokens)), "--ignore-eos",
        "--num-prompts", str(prompts), "--request-rate", f"{rate:g}", "--seed", "0",
        "--percentile-metrics", "ttft,tpot", "--metric-percentiles", "95", "--disable-tqdm",
        "--save-result", "--result-dir", str(results), "--result-filename", name,
    ]
    env = dict(os.environ, OPENAI_API_KEY=api_key.get_secret_value(), HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    timeout = STEP_TIMEOUT_FACTOR * max(seconds, prompts / rate) + 120
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if run.returncode != 0:
        raise GpufleetError(f"vLLM's serving benchmark failed at {rate:g} req/s (exit {run.returncode}): "
                            f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.stdout[-300:]}")
    result = json.loads((results / name).read_text(encoding="utf-8"))
    ttft, tpot = result["p95_ttft_ms"], result["p95_tpot_ms"]
    achieved = result["request_throughput"]
    ok = (ttft <= model.slo.ttft_p95_ms and tpot <= model.slo.tpot_p95_ms
          and result.get("failed", 0) == 0 and achieved >= KEPT_UP * rate)
    return RateStep(rate=rate, achieved_rps=achieved, ttft_p95_ms=ttft, tpot_p95_ms=tpot,
                    completed=result["completed"], failed=result.get("failed", 0), within_slo=ok)


def _tokenizer(model: Model, settings: Settings) -> str:
    """Where the benchmark loads the tokenizer from: the local model directory or weights cache, or the hub id."""
    if (path := local_source(model.source, settings.home)) is not None:
        return str(path)
    scheme, sep, rest = model.source.partition("://")
    return str(settings.weights_dir / scheme / rest.strip("/")) if sep else model.source


def _gpu(pool: Pool, settings: Settings) -> str:
    if pool.gpu:
        return pool.gpu
    offers = load_price_catalog(settings.catalog_dir).find(instance_type=pool.instance_type)
    if not offers:
        raise InputError(f"pool {pool.name}: no GPU known for instance type {pool.instance_type}")
    return offers[0].gpu


def _one(items: list[Named], name: str, kind: str) -> Named:
    for item in items:
        if item.name == name:
            return item
    raise InputError(f"no {kind} '{name}' in the spec. To fix: use one of {', '.join(i.name for i in items)}")
