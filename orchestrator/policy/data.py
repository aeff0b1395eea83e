"""The `data.gpufleet` document the rules read for one environment.

Three layers, later ones win (objects merge key by key, lists and scalars are replaced):

1. defaults from the policy directories' `data/*.yaml|json` (the keys that exist);
2. facts of the fleet spec: `environment`, `budget_usd_per_hour`, and `models` —
   `{name: {min_replicas, spread: {across, min} | null, residency: {providers, regions,
   continents}}}`;
3. the spec's `policies.data`, where an environment tightens or loosens a default
   (`apply_overrides`): there a `null` deletes the key it is set on inside an object
   (`residency_areas: {eu: null}` drops the default `eu` area), and an explicit empty object
   replaces what it is set on (`residency_areas: {}`: no area at all). A top-level key keeps
   a `null` as its value: the rules read every top-level key, and null means something there
   (`budget_usd_per_hour: null`: no cap).
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
    return apply_overrides(deep_merge(defaults, spec_facts(spec)), spec.policies.data, top=True)


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any], *, top: bool = False) -> dict[str, Any]:
    """`base` with an environment's `policies.data` applied: objects merge key by key, `null` deletes the key
    (below the `top` level), an empty object `{}` replaces, anything else (lists, scalars) replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None and not top:
            merged.pop(key, None)
        elif isinstance(value, dict) and value:
            merged[key] = apply_overrides(merged[key] if isinstance(merged.get(key), dict) else {}, value)
        else:
            merged[key] = value
    return merged


def placement_rules(data: dict[str, Any]) -> PlacementRules:
    """The guardrails of the placement policies the planner can plan within (residency areas, spot caps).

    Planning inside them means `plan` proposes what `policy check` will let `rebalance` apply.
    """
    areas = tuple(
        ResidencyArea(name=name, continents=frozenset(area.get("continents", [])), allow_onprem=bool(area.get("allow_onprem", True)))
        for name, area in sorted(data.get("residency_areas", {}).items())
    )
    return PlacementRules(residency_areas=areas, max_spot_share={k: float(v) for k, v in data.get("max_spot_share", {}).items()})
