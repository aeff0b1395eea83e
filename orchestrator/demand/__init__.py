"""Demand for the planner beyond the spec's: derived from request traces, or measured from the running fleet.

See docs/demand.md for the formats, windows and scaling, and for measured demand.
"""

from orchestrator.demand.overrides import demand_for, with_trace_demand
from orchestrator.demand.traces import (
    DerivedDemand,
    TraceFormat,
    TraceRequest,
    TraceWindow,
    derive_demand,
    detect_format,
    read_trace,
)

__all__ = ["DerivedDemand", "TraceFormat", "TraceRequest", "TraceWindow", "demand_for", "derive_demand", "detect_format",
           "read_trace", "with_trace_demand"]
