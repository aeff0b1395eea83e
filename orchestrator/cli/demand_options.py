"""The demand options `plan` and `rebalance` share: from a trace, or measured from the running fleet.

A command declares them as parameters and hands them to `orchestrator.demand.demand_for`
(see docs/demand.md):

    trace: TraceOption = None, trace_model: TraceModelOption = None, trace_region: TraceRegionOption = None,
    window_s: TraceWindowOption = 300.0, scale: ScaleOption = 1.0, burst_window_s: BurstWindowOption = 10.0,
    burst_percentile: BurstPercentileOption = 99.0, measured_window_s: MeasuredWindowOption = None,
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer


def _burst_window(value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"{value} is not a number of seconds >= 0 (0 turns bursts off).")
    return value


def _burst_percentile(value: float) -> float:
    if not (math.isfinite(value) and 0 < value <= 100):
        raise typer.BadParameter(f"{value} is not a percentile above 0 and at most 100.")
    return value


TraceOption = Annotated[Path | None, typer.Option(
    "--trace", help="Request trace (Azure LLM CSV or Mooncake JSONL) to derive demand from.", dir_okay=False)]
TraceModelOption = Annotated[str | None, typer.Option(
    "--trace-model", help="Model the trace's requests are for (default: the only model).")]
TraceRegionOption = Annotated[str | None, typer.Option(
    "--trace-region", help="User region the trace's requests come from (default: the only region).")]
TraceWindowOption = Annotated[float, typer.Option(
    "--window-s", help="Trace window, seconds (the busiest one is used).", min=1.0)]
ScaleOption = Annotated[float, typer.Option(
    "--scale", help="Multiply the derived request rate (--trace, --measured-window).", min=0.0)]
BurstWindowOption = Annotated[float, typer.Option(
    "--burst-window-s", help="With --trace: plan for bursts, measured as the rate in sliding windows of this many "
    "seconds inside the trace window (0: plan for the window's mean).", callback=_burst_window)]
BurstPercentileOption = Annotated[float, typer.Option(
    "--burst-percentile", help="With --trace: the burst rate is this request-weighted percentile of the sliding "
    "windows' rates (100: the busiest one).", callback=_burst_percentile)]
MeasuredWindowOption = Annotated[float | None, typer.Option(
    "--measured-window", help="Measure every model's demand from what the replicas served over the last this many "
    "seconds (their vLLM counters, sampled into the state database); a model without samples keeps the spec's.")]
