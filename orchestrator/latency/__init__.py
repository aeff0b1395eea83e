"""Network round-trip times between where users are and where pools run.

Measured (Skyplane's 2022 inter-region pings) between AWS, GCP and Azure regions; estimated
for metros, on-prem sites and unprobed regions. See docs/latency.md.
"""

from orchestrator.latency.model import LatencyModel, RttEstimate, load_latency_model
from orchestrator.latency.regions import Location, known_regions, resolve, site_location

__all__ = ["LatencyModel", "Location", "RttEstimate", "known_regions", "load_latency_model", "resolve", "site_location"]
