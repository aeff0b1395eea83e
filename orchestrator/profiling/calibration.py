"""Fit the capacity model to a pool's measured profiles (`profile --per-size`), with the error before and after.

`profiles.fit` holds the fitted scales and the search; this module feeds it the measured
profiles of one (model, GPU) — each a request size, an SLO, a replica size and the highest rate
that met the SLO — and the closed-form estimate of each at trial scales.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from orchestrator.catalog.gpus import GpuSpec, gpu_spec
from orchestrator.errors import InputError
from orchestrator.profiles.architectures import Architecture, resolve_architecture
from orchestrator.profiles.capacity import CapacityProfile, estimate_capacity, load_measured_profile, load_sized_profiles
from orchestrator.profiles.fit import EfficiencyFit, FitPoint, Scales, fit_scales, relative_error, save_fit
from orchestrator.spec import FleetSpec


def fit_efficiency(arch: Architecture, gpu: GpuSpec, profiles: Sequence[CapacityProfile], *, model: str | None = None) -> EfficiencyFit:
    """The (compute, memory) time scales that make the estimate reproduce `profiles`' measured rates.

    Profiles that measured 0 req/s (even the lowest rate missed the SLO) carry no rate to fit and are left out.
    """
    usable = [p for p in profiles if p.rps > 0]
    if not usable:
        raise InputError(f"no measured profile of {model or arch.name} on {gpu.name} met its SLO at any rate: nothing to fit. "
                         "To fix: profile at lower rates (--rates) or with a looser SLO.")

    def rate_at(scales: Scales, i: int) -> float:
        p = usable[i]
        return estimate_capacity(arch, gpu, p.gpus_per_replica, p.slo, p.mix, p.dtype, scales=scales).rps

    measured = [p.rps for p in usable]
    scales = fit_scales(rate_at, measured)
    before = [rate_at((1.0, 1.0), i) for i in range(len(usable))]
    after = [rate_at(scales, i) for i in range(len(usable))]
    return EfficiencyFit(
        model=model or arch.name, gpu=gpu.name, compute_scale=round(scales[0], 6), memory_scale=round(scales[1], 6),
        points=[FitPoint(input_tokens=p.mix.input_tokens, output_tokens=p.mix.output_tokens, measured_rps=p.rps,
                         estimated_rps=round(b, 6), fitted_rps=round(a, 6)) for p, b, a in zip(usable, before, after)],
        error_before=round(relative_error(before, measured), 6), error_after=round(relative_error(after, measured), 6),
        fitted_at=dt.datetime.now(dt.timezone.utc),
    )


def fit_and_save(fleet: FleetSpec, model: str, gpu: str, profiles_dir: Path, base_dir: Path | None = None) -> EfficiencyFit | None:
    """Fit `model` on `gpu` to every profile measured of it (per size and whole mix) and save the fit beside
    them; None (and nothing saved) when no profile met its SLO at any rate."""
    spec = next(m for m in fleet.models if m.name == model)
    whole = load_measured_profile(profiles_dir, model, gpu)
    profiles = load_sized_profiles(profiles_dir, model, gpu) + ([whole] if whole is not None else [])
    if not any(p.rps > 0 for p in profiles):
        return None
    fit = fit_efficiency(resolve_architecture(spec.architecture, base_dir), gpu_spec(gpu),
                         profiles, model=model)
    save_fit(profiles_dir, fit)
    return fit
