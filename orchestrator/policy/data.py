"""The `data.gpufleet` document the rules read for one environment.

Three layers, later ones win (objects merge key by key, lists and scalars are replaced):

1. defaults from the policy directories' `data/*.yaml|json` (the keys that exist);
2. facts of the fleet spec: `environment`, `budget_usd_per_hour`, and `models` —
   `{name: {min_replicas, spread: {across, min} | null, residency: {providers, regions,
   continents}}}`;
3. the spec's `policies.data`, where an environment tightens or loosens a default.
"""

from __future__ import annotations

from typing import Any

from orchestrator.planner.problem import PlacementRules, ResidencyArea
from orchestrator.policy.engine import deep_merge
from orchestrator.policy.errors import PolicyError
from orchestrator.spec import FleetSpec
from orchestrator.spec.checks import did_you_mean


def spec_facts(spec: FleetSpec) -> dict[str, Any]:
    """What the placement and terraform rules need to know about the environment itself."""
    return {
        "environment": spec.environment or "",
        "budget_usd_per_hour": spec.budget.usd_per_hour,
        "models": {
            m.name: {
                "min_replicas": m.min_replicas,
                "spread": m.spread.model_dump() if m.spread else None,
                "residency": m.residency.model_dump(),
            }
            for m in spec.models
        },
    }


def policy_data(spec: FleetSpec, defaults: dict[str, Any]) -> dict[str, Any]:
    """Defaults, then the spec's facts, then its `policies.data`; unknown keys are errors."""
    known = sorted({*defaults, *spec_facts(spec)})
    for key in spec.policies.data:
        if key not in known:
            raise PolicyError(
                f"policies.data.{key}: unknown policy data key.{did_you_mean(key, known)} Known keys: {', '.join(known)}. "
                "To fix: correct the key, or add it with a default to a policies/*/data file first (docs/policies.md)"
            )
    return deep_merge(deep_merge(defaults, spec_facts(spec)), spec.policies.data)


def placement_rules(data: dict[str, Any]) -> PlacementRules:
    """The guardrails of the placement policies the planner can plan within (residency areas, spot caps).

    Planning inside them means `plan` proposes what `policy check` will let `rebalance` apply.
    """
    areas = tuple(
        ResidencyArea(name=name, continents=frozenset(area.get("continents", [])), allow_onprem=bool(area.get("allow_onprem", True)))
        for name, area in sorted(data.get("residency_areas", {}).items())
    )
    return PlacementRules(residency_areas=areas, max_spot_share={k: float(v) for k, v in data.get("max_spot_share", {}).items()})
