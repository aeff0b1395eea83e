"""Fit one (model, GPU)'s efficiency to what its replicas measured, and say how far off the estimate was.

Why: the performance model's constants come from published measurements of other stacks
(`calibrate.py`); a pool's own replicas may run faster or slower (another vLLM, a CPU, a
throttled GPU). `orchestrator profile --per-size` measures one replica's highest rate within the
SLO at each request size; this module finds the two time scales — on compute (prefill) and on
memory and per-layer overhead (decode) — that make the closed-form capacity reproduce those
rates, in least squares on log(estimated / measured). The fit's error before and after is what
the user sees; `capacity.replica_capacity` then estimates every other size, SLO and replica
count of that (model, GPU) with the fitted scales (source "fitted").

Two scales, not one: prefill is compute-bound and decode memory-bound, so one factor cannot
fit both a long-prompt and a chat size. With one measured size the two are not identifiable;
the fit then keeps them equal (one factor).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.profiles.files import read_versioned, write_atomically

Scales = tuple[float, float]  # (compute, memory): multipliers on the time each part of a step takes
_SEARCH_LOG_RANGE = math.log(100.0)  # scales between 1/100 and 100
_SEARCH_ROUNDS = 4
_GOLDEN_STEPS = 18


class FitPoint(BaseModel):
    """One measured size: what was measured, what the bundled model said, what the fitted one says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: float
    output_tokens: float
    measured_rps: float = Field(gt=0)
    estimated_rps: float = Field(ge=0, description="The bundled calibration's estimate.")
    fitted_rps: float = Field(ge=0, description="The estimate with the fitted scales.")


class EfficiencyFit(BaseModel):
    """A (model, GPU)'s fitted time scales and the fit error; one JSON file beside its profiles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    gpu: str
    compute_scale: float = Field(gt=0, description="Multiplier on compute time (prefill-bound); > 1: slower than the model.")
    memory_scale: float = Field(gt=0, description="Multiplier on memory and per-layer time (decode-bound).")
    points: list[FitPoint]
    error_before: float = Field(description="Mean |estimated / measured - 1| over the points, bundled calibration.")
    error_after: float = Field(description="The same with the fitted scales.")
    fitted_at: dt.datetime

    @property
    def scales(self) -> Scales:
        return (self.compute_scale, self.memory_scale)


def relative_error(estimated: Sequence[float], measured: Sequence[float]) -> float:
    """Mean |estimated / measured - 1| (an estimate of 0 counts as 100 % off)."""
    return sum(abs(e / m - 1) for e, m in zip(estimated, measured)) / len(measured)


def fit_scales(rate_at: Callable[[Scales, int], float], measured: Sequence[float]) -> Scales:
    """The scales minimising Σ log(rate_at(scales, i) / measured_i)², by alternating golden-section
    searches over log-scales in [1/100, 100]; one shared scale when only one point is measured."""
    if not measured:
        raise ValueError("nothing measured to fit to")

    def loss(log_compute: float, log_memory: float) -> float:
        scales = (math.exp(log_compute), math.exp(log_memory))
        total = 0.0
        for i, m in enumerate(measured):
            rate = rate_at(scales, i)
            total += (math.log(rate / m) if rate > 0 else 50.0) ** 2
        return total

    if len(measured) == 1:
        shared = _golden(lambda x: loss(x, x), -_SEARCH_LOG_RANGE, _SEARCH_LOG_RANGE)
        return (math.exp(shared), math.exp(shared))
    log_c = log_m = 0.0
    for _ in range(_SEARCH_ROUNDS):
        log_c = _golden(lambda x: loss(x, log_m), -_SEARCH_LOG_RANGE, _SEARCH_LOG_RANGE)
        log_m = _golden(lambda x: loss(log_c, x), -_SEARCH_LOG_RANGE, _SEARCH_LOG_RANGE)
    return (math.exp(log_c), math.exp(log_m))


def _golden(f: Callable[[float], float], low: float, high: float) -> float:
    """Minimum of a unimodal `f` on [low, high] by golden-section search."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(_GOLDEN_STEPS):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2


def fit_path(directory: Path, model: str, gpu: str) -> Path:
    """Where the fit of `model` on `gpu` lives (beside its profiles; not matched by their globs)."""
    return directory / f"{model}__{gpu}.fit.json"


def save_fit(directory: Path, fit: EfficiencyFit) -> Path:
    """Write `fit` atomically; returns its path."""
    return write_atomically(fit_path(directory, fit.model, fit.gpu), fit.model_dump_json(indent=2) + "\n")


def load_fit(directory: Path, model: str, gpu: str) -> EfficiencyFit | None:
    """The fit of `model` on `gpu` in `directory`, or None."""
    return read_versioned(fit_path(directory, model, gpu), EfficiencyFit, "Efficiency fit",
                          "re-run `orchestrator profile --per-size` for this model and pool, or delete the file.")
