"""The demand options `plan` and `rebalance` share: from a trace, or measured from the running fleet.

A command declares them as parameters and hands them to `orchestrator.demand.demand_for`
(see docs/demand.md):

    trace: TraceOption = None, trace_model: TraceModelOption = None, trace_region: TraceRegionOption = None,
    window_s: TraceWindowOption = 300.0, scale: ScaleOption = 1.0, measured_window_s: MeasuredWindowOption = None,
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
MeasuredWindowOption = Annotated[float | None, typer.Option(
    "--measured-window", help="Measure every model's demand from what the replicas served over the last this many "
    "seconds (their vLLM counters, sampled into the state database); a model without samples keeps the spec's.")]
