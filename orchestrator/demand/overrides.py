"""The demand a command plans for: the spec's, with parts replaced by a trace or by what the fleet served.

`plan` and `rebalance` take the same options (orchestrator/cli/demand_options.py) and call
`demand_for`, which returns a new spec and notes saying what was replaced and from what:

1. `measured_window_s`: every model's demand measured from the replicas' counters over the
   last window (orchestrator/demand/measured.py), after one fresh scrape;
2. `trace`: one (model, region) demand derived from a request trace's busiest window
   (orchestrator/demand/traces.py), with its size mix and burst factor (`burst_window_s`,
   `burst_percentile`); applied last, so it wins over a measured one.

`scale` multiplies both derived rates. Without either, the spec is returned unchanged.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import InputError
from orchestrator.spec.models import FleetSpec

BURST_WINDOW_S = 10.0  # as orchestrator.demand.traces (not imported here: numpy loads only with --trace)
BURST_PERCENTILE = 99.0

if TYPE_CHECKING:
    from orchestrator.demand.traces import DerivedDemand
    from orchestrator.state import StateStore


def with_trace_demand(spec: FleetSpec, trace: str | Path, model: str | None, region: str | None,
                      window_s: float | None = 300.0, scale: float = 1.0, *, burst_window_s: float = BURST_WINDOW_S,
                      burst_percentile: float = BURST_PERCENTILE) -> FleetSpec:
    """The spec with one (model, region) demand entry replaced by what the trace's peak window says:
    its rate, means, size mix and burst factor (`burst_window_s=0`: factor 1).

    `model` and `region` default to the spec's only model and only demand region.
    """
    return _trace_demand(spec, trace, model, region, window_s, scale, burst_window_s, burst_percentile)[0]


def demand_for(spec: FleetSpec, *, trace: str | Path | None = None, trace_model: str | None = None,
               trace_region: str | None = None, window_s: float | None = 300.0, scale: float = 1.0,
               burst_window_s: float = BURST_WINDOW_S, burst_percentile: float = BURST_PERCENTILE,
               measured_window_s: float | None = None, store: StateStore | None = None, environment: str | None = None,
               sample: Callable[[], object] | None = None, now: dt.datetime | None = None) -> tuple[FleetSpec, list[str]]:
    """The spec with its demand replaced as asked, and one human-readable note per replaced or kept demand.

    With `measured_window_s`, the fleet's replicas are scraped once now (`sample`, default
    `ledger.collect_tokens(store, environment)`, which also records the sample) and each model's
    demand is measured over the last `measured_window_s` seconds of recorded samples ending at
    `now` (default: after the scrape). `store` is the environment's state database (opened from
    the spec's `state.url` and closed again when not given); `environment` defaults to the
    spec's. With `trace`, `with_trace_demand` then replaces one (model, region) entry, with its
    size mix and a burst factor from `burst_window_s` windows at `burst_percentile`.
    """
    notes: list[str] = []
    if trace is not None:
        from orchestrator.demand.traces import check_burst_options

        check_burst_options(burst_window_s, burst_percentile)  # before anything is scraped
    if measured_window_s is not None:
        from orchestrator.demand.measured import check_window, measure_rates, with_measured_demand

        check_window(measured_window_s)
        if not (math.isfinite(scale) and scale > 0):
            raise InputError(f"scale must be a positive number, not {scale}. To fix: pass a value above 0.")
        environment = environment or spec.environment or "default"
        opened = store is None
        if store is None:
            from orchestrator.ledger import open_ledger
            from orchestrator.settings import load_settings

            store = open_ledger(load_settings(), environment, spec.state.url)
        try:
            if sample is None:
                from orchestrator.ledger import collect_tokens

                collect_tokens(store, environment)
            else:
                sample()
            rates = measure_rates(store, environment, measured_window_s, now or dt.datetime.now(dt.UTC))
        finally:
            if opened:
                store.close()
        spec, measured_notes = with_measured_demand(spec, rates, window_s=measured_window_s, scale=scale)
        notes += measured_notes
    if trace is not None:
        spec, derived = _trace_demand(spec, trace, trace_model, trace_region, window_s, scale, burst_window_s,
                                      burst_percentile)
        notes.append(_trace_note(derived))
    return spec, notes


def _trace_demand(spec: FleetSpec, trace: str | Path, model: str | None, region: str | None, window_s: float | None,
                  scale: float, burst_window_s: float = BURST_WINDOW_S,
                  burst_percentile: float = BURST_PERCENTILE) -> tuple[FleetSpec, DerivedDemand]:
    from orchestrator.demand.traces import derive_demand

    models = sorted({m.name for m in spec.models})
    regions = sorted({d.region for d in spec.demand})
    if model is None:
        if len(models) != 1:
            raise InputError(f"--trace needs --trace-model: the spec has models {', '.join(models)}")
        model = models[0]
    if model not in models:
        raise InputError(f"--trace-model '{model}' is not a model of the spec; allowed: {', '.join(models)}")
    if region is None:
        if len(regions) != 1:
            raise InputError(f"--trace needs --trace-region: the spec's demand comes from {', '.join(regions) or 'no region'}")
        region = regions[0]
    derived = derive_demand(trace, model=model, region=region, window_s=window_s, scale=scale,
                            burst_window_s=burst_window_s, burst_percentile=burst_percentile)
    demand = [d for d in spec.demand if (d.model, d.region) != (model, region)] + [derived.to_demand()]
    return spec.model_copy(update={"demand": demand}), derived


def _trace_note(d: DerivedDemand) -> str:
    w = d.window
    note = (f"{d.model} from {d.region}: {d.requests_per_second:.4g} req/s, mean {d.input_tokens_mean:.0f} prompt / "
            f"{d.output_tokens_mean:.0f} generated tokens, from {d.source} ({w.kind} window {w.start_s:g}-{w.end_s:g} s, "
            f"{w.requests} requests")
    note += f", x{d.scale:g})" if d.scale != 1 else ")"
    note += f"; {len(d.size_mix)} size bucket{'s' if len(d.size_mix) != 1 else ''}"
    if d.peak_factor > 1:
        return note + f"; peak factor {d.peak_factor:.3g} ({d.peak_source}), plans for {d.peak_rps:.4g} req/s"
    return note + f"; peak factor 1 ({d.peak_source})"
