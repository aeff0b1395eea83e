"""Demand derived from request traces, for specs that would otherwise guess their traffic.

See docs/demand.md for the formats, windows and scaling.
"""

from orchestrator.demand.traces import (
    DerivedDemand,
    TraceFormat,
    TraceRequest,
    TraceWindow,
    derive_demand,
    detect_format,
    read_trace,
)

__all__ = ["DerivedDemand", "TraceFormat", "TraceRequest", "TraceWindow", "derive_demand", "detect_format",
           "read_trace"]
