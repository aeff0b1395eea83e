"""The planning problem: plan inputs and spec constraints reduced to plain indexed data.

The MILP, the baselines and the explanations all read this one structure, so each
(model, region, pool) eligibility rule — capacity within SLO, residency (already applied
by `orchestrator.inputs`), RTT under the model's limit — is decided in exactly one place.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from orchestrator.inputs import CapacityInput, DemandInput, FleetInputs, ModelInput, PoolInput
from orchestrator.spec import FleetSpec, Spread


MIN_NON_SPOT = 3  # pools that are not spot kept per demand, so a spot cap has somewhere to go


@dataclass(frozen=True)
class ResidencyArea:
    """Users on these continents are served only from pools on them (or on-prem, when allowed)."""

    name: str
    continents: frozenset[str]
    allow_onprem: bool = True


@dataclass(frozen=True)
class PlacementRules:
    """Guardrails the planner plans within, so its plans pass the placement policies.

    Built from the policy data (`orchestrator.policy.placement_rules`); empty means none.
    `max_spot_share` caps, per model (key `default` for the rest), the share of its serving
    capacity (replicas x req/s per replica) on spot pools.
    """

    residency_areas: tuple[ResidencyArea, ...] = ()
    max_spot_share: dict[str, float] = field(default_factory=dict)

    def spot_cap(self, model: str) -> float:
        return self.max_spot_share.get(model, self.max_spot_share.get("default", 1.0))

    def route_allowed(self, user_continent: str | None, pool: PoolInput) -> bool:
        for area in self.residency_areas:
            if user_continent in area.continents:
                return pool.continent in area.continents or (area.allow_onprem and pool.provider == "onprem")
        return True


@dataclass(frozen=True)
class DemandClass:
    """One size bucket of a (model, region) demand: what one column of flows in the MILP carries."""

    model: str
    region: str
    bucket: int
    rps: float
    input_tokens: int
    output_tokens: int
    label: str | None = None


@dataclass(frozen=True)
class Problem:
    """What the planner optimises over; `current` is the placement running now (model, pool) -> replicas."""

    environment: str
    pools: tuple[PoolInput, ...]
    models: tuple[ModelInput, ...]
    demand: tuple[DemandInput, ...]
    capacity: dict[tuple[str, str], CapacityInput]
    rtt: dict[tuple[str, str], float]
    spread: dict[str, Spread] = field(default_factory=dict)
    budget_usd_per_hour: float | None = None
    current: dict[tuple[str, str], int] = field(default_factory=dict)
    rules: PlacementRules = field(default_factory=PlacementRules)
    inputs: FleetInputs | None = None

    @cached_property
    def pool_by_name(self) -> dict[str, PoolInput]:
        return {p.pool: p for p in self.pools}

    @cached_property
    def model_by_name(self) -> dict[str, ModelInput]:
        return {m.model: m for m in self.models}

    def serves(self, model: str, pool: str) -> bool:
        """One replica of `model` on `pool` serves some load within the SLO."""
        cap = self.capacity.get((model, pool))
        return cap is not None and cap.rps_per_replica > 0

    @cached_property
    def eligible(self) -> dict[tuple[str, str], list[str]]:
        """(model, user region) -> pools that may serve it: capacity within SLO, RTT within max_rtt_ms, residency."""
        out: dict[tuple[str, str], list[str]] = {}
        for d in self.demand:
            limit = self.model_by_name[d.model].max_rtt_ms
            out[(d.model, d.region)] = [
                p.pool for p in self.pools
                if self.serves(d.model, p.pool) and self.rtt.get((d.region, p.pool), float("inf")) <= limit
                and self.rules.route_allowed(d.continent, p)
            ]
        return out

    @cached_property
    def hosts(self) -> dict[str, list[str]]:
        """model -> pools where a replica serves load within the SLO (needed for min_replicas and spread)."""
        out: dict[str, list[str]] = defaultdict(list)
        for (model, pool), cap in self.capacity.items():
            if cap.rps_per_replica > 0 and pool in self.pool_by_name:
                out[model].append(pool)
        return out

    @cached_property
    def demand_by_pair(self) -> dict[tuple[str, str], DemandInput]:
        """(model, user region) -> its demand row (one per pair: the spec checks enforce it)."""
        return {(d.model, d.region): d for d in self.demand}

    @cached_property
    def classes(self) -> tuple[DemandClass, ...]:
        """Every (model, region, size bucket) the plan must carry, at its planned rate."""
        return tuple(
            DemandClass(d.model, d.region, b, d.planned_rps * size.share, size.input_tokens, size.output_tokens, size.label)
            for d in self.demand for b, size in enumerate(d.sizes)
        )

    def rate(self, k: DemandClass, pool: str) -> float:
        """Requests/s of class `k` one replica in `pool` sustains within the SLO (0: it cannot serve them)."""
        cap = self.capacity.get((k.model, pool))
        return 0.0 if cap is None else cap.rate(k.input_tokens, k.output_tokens)

    @cached_property
    def routes(self) -> dict[DemandClass, list[str]]:
        """Class -> pools that may serve it: the (model, region)'s eligible pools that can serve its size."""
        return {k: [p for p in self.eligible[(k.model, k.region)] if self.rate(k, p) > 0] for k in self.classes}

    def replicas_per_node(self, model: str, pool: str) -> int:
        cap = self.capacity[(model, pool)]
        return self.pool_by_name[pool].gpus_per_node // cap.gpus_per_replica

    def domain(self, pool: str, across: str) -> str:
        """The failure domain a pool belongs to, for spreading replicas."""
        p = self.pool_by_name[pool]
        return {
            "provider": p.provider,
            "region": f"{p.provider}:{p.region}",
            "zone": f"{p.provider}:{p.zone or p.region}",
            "pool": p.pool,
        }[across]


def build_problem(
    spec: FleetSpec,
    inputs: FleetInputs,
    current: dict[tuple[str, str], int] | None = None,
    rules: PlacementRules | None = None,
) -> Problem:
    """The problem for a resolved spec; `current` makes the plan churn-aware, `rules` adds policy guardrails."""
    return Problem(
        environment=inputs.environment,
        pools=inputs.pools,
        models=inputs.models,
        demand=inputs.demand,
        capacity={(c.model, c.pool): c for c in inputs.capacity},
        rtt={(l.region, l.pool): l.rtt_ms for l in inputs.latency},
        spread={m.name: m.spread for m in spec.models if m.spread is not None},
        budget_usd_per_hour=inputs.budget_usd_per_hour,
        current=dict(current or {}),
        rules=rules or PlacementRules(),
        inputs=inputs,
    )


def candidate_hosts(problem: Problem, per_demand: int | None, spot_overprovision: float = 0.0) -> dict[str, list[str]]:
    """The (model, pool) pairs the MILP starts from; pricing (`planner.pricing`) adds any that could matter.

    With `per_demand` None, every pool that can host the model (exact from the start).
    Otherwise, for each (model, region): the pools with the lowest marginal $/h per req/s of
    derated capacity — already-paid pools first — until at least `per_demand` pools and 4x the
    demand in capacity are kept, and at least `MIN_NON_SPOT` that are not spot, so a spot cap
    always has hosts to turn to; plus already-paid pools, pools running the model
    now, and the cheapest host of each failure domain (for min_replicas and spread). This is
    only a warm start: the solve prices every pruned pair against the LP duals and adds back
    any whose reduced cost could beat the incumbent, so the result is exact within the gap.
    """
    if per_demand is None:
        return dict(problem.hosts)

    def marginal(model: str, pool: str) -> float:
        info = problem.pool_by_name[pool]
        if info.min_nodes > 0:
            return 0.0
        rate = problem.capacity[(model, pool)].rps_per_replica / (1.0 + spot_overprovision if info.capacity == "spot" else 1.0)
        return info.cost_per_node_hour / (rate * problem.replicas_per_node(model, pool))

    keep: dict[str, set[str]] = defaultdict(set)
    for d in problem.demand:
        ranked = sorted(problem.eligible[(d.model, d.region)], key=lambda p: marginal(d.model, p))
        capacity, other = 0.0, 0
        for count, pool in enumerate(ranked):
            spot = problem.pool_by_name[pool].capacity == "spot"
            enough = count >= per_demand and capacity >= 4 * d.planned_rps and other >= MIN_NON_SPOT
            if enough and marginal(d.model, pool) > 0:
                break
            if count >= per_demand and spot:
                continue  # past the cheapest: only what a spot cap needs, pools that are not spot
            keep[d.model].add(pool)
            other += not spot
            info = problem.pool_by_name[pool]
            capacity += problem.capacity[(d.model, pool)].rps_per_replica * problem.replicas_per_node(d.model, pool) * info.max_nodes

    hosts: dict[str, list[str]] = {}
    for model, pools in problem.hosts.items():
        kept = keep[model] | {p for p in pools if problem.pool_by_name[p].min_nodes > 0 or problem.current.get((model, p), 0) > 0}
        cheapest: dict[str, str] = {}
        for pool in sorted(pools, key=lambda p: marginal(model, p)):
            for across in ("provider", "region", "zone"):
                cheapest.setdefault(f"{across}:{problem.domain(pool, across)}", pool)
        kept |= set(cheapest.values())
        hosts[model] = [p for p in pools if p in kept]
    return hosts
