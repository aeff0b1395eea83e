"""The fleet spec: typed models, the YAML loader and self-contained checks."""

from orchestrator.spec.loader import load_spec, parse_spec
from orchestrator.spec.models import (
    Budget, Coordinates, Demand, FleetSpec, Model, Policies, Pool, Residency, Slo, Spread, State,
)

__all__ = [
    "Budget", "Coordinates", "Demand", "FleetSpec", "Model", "Policies", "Pool", "Residency",
    "Slo", "Spread", "State", "load_spec", "parse_spec",
]
