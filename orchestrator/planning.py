"""One planning path: every command that makes a plan gets it from here.

    spec + demand overrides (a trace, a measured window) + options + the placement
    policies' guardrails  →  placement (and the baselines it is compared with)

`plan`, `policy check` (with no plan given or stored), `rebalance` and `up` plan through
`Planning.plan`; `plan` and `spend record` price the baselines through `Planning.baselines`
/ `Planning.single_cloud`. So one command's plan is the plan any other makes of the same
inputs, and `plan` proposes what `policy check` lets `rebalance` apply.

It sits beside `inputs.py`, above both the planner and the policies (the policies read the
planner's types; the guardrails the planner plans within come from the policies' data), so
neither package imports the other's internals. The planner itself stays pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.inputs import FleetInputs, load_inputs, resolve_inputs
from orchestrator.planner import Placement, PlacementRules, PlanOptions, build_problem, plan_fleet
from orchestrator.spec import FleetSpec

if TYPE_CHECKING:
    from orchestrator.catalog.price_catalog import PriceCatalog
    from orchestrator.planner.baselines import Baseline
    from orchestrator.planner.placement import BaselineRow
    from orchestrator.state import StateStore


@dataclass(frozen=True)
class DemandOverride:
    """Where demand comes from instead of the spec's (`orchestrator.demand.demand_for`'s options)."""

    trace: Path | None = None
    trace_model: str | None = None
    trace_region: str | None = None
    window_s: float = 300.0
    scale: float = 1.0
    burst_window_s: float = 10.0
    burst_percentile: float = 99.0
    measured_window_s: float | None = None

    @property
    def active(self) -> bool:
        return self.trace is not None or self.measured_window_s is not None

    def options(self) -> dict[str, Any]:
        return {"trace": self.trace, "trace_model": self.trace_model, "trace_region": self.trace_region,
                "window_s": self.window_s, "scale": self.scale, "burst_window_s": self.burst_window_s,
                "burst_percentile": self.burst_percentile, "measured_window_s": self.measured_window_s}


def guardrails(spec: FleetSpec, root: Path) -> PlacementRules:
    """The placement policies' guardrails (residency areas, spot caps) for the spec's `policies.paths` under `root`."""
    from orchestrator.policy import planning_rules

    return planning_rules(spec, root)


def with_demand(spec: FleetSpec, inputs: FleetInputs, path: Path, catalog: PriceCatalog, demand: DemandOverride | None, *,
                store: StateStore | None = None, profiles_dir: Path | None = None) -> tuple[FleetSpec, FleetInputs, list[str]]:
    """The spec and inputs with the demand `demand` asks for (unchanged when it asks for none), and the notes saying what was replaced."""
    if demand is None or not demand.active:
        return spec, inputs, []
    from orchestrator.demand import demand_for

    spec, notes = demand_for(spec, store=store, environment=inputs.environment, **demand.options())
    return spec, resolve_inputs(spec, catalog, str(path), profiles_dir), notes


SIMULATED_ROUNDS = 4  # re-plans at most, with `PlanOptions.simulate`


@dataclass(frozen=True)
class Planning:
    """What a plan is made of: the spec, its resolved inputs, the options and the guardrails (None: planned without them)."""

    spec: FleetSpec
    inputs: FleetInputs
    options: PlanOptions
    rules: PlacementRules | None
    base_dir: Path | None = None  # where the spec's relative paths (a config.json architecture) start

    def plan(self, current: dict[tuple[str, str], int] | None = None, *,
             on_round: Callable[[int, int], None] | None = None) -> Placement:
        """The placement (`planner.plan_fleet`); churn-aware when `current` (replicas per (model, pool)) is given.

        With `options.simulate`, checked a second way (`planner.slo_check`): while a (model, pool) misses
        its p95 SLO with one replica simulated at its planned load, that pair's capacity is scaled down to
        what the simulated replica sustains and the fleet planned again, at most `SIMULATED_ROUNDS` times.
        The placement then carries the last check's rows (a pair still missing is shown as missing);
        `on_round(round, missed)` reports progress."""
        if not self.options.simulate:
            return plan_fleet(self.spec, self.inputs, self.options, current, self.rules)
        from orchestrator.planner.slo_check import derate, simulate_placement

        inputs, factors = self.inputs, {}
        for round_ in range(SIMULATED_ROUNDS + 1):
            placement = plan_fleet(self.spec, inputs, self.options, current, self.rules)
            rows = simulate_placement(self.spec, placement, self.base_dir, factors=factors)
            missed = [r for r in rows if not r.meets_slo]
            if on_round is not None:
                on_round(round_, len(missed))
            if not missed or round_ == SIMULATED_ROUNDS:
                break
            inputs, factors = derate(self.spec, inputs, placement, missed, self.base_dir, factors)
        return placement.model_copy(update={"simulated": rows})

    def baselines(self, catalog: PriceCatalog, profiles_dir: Path | None = None) -> list[Baseline]:
        """Baselines (a)-(d) under the same SLOs, guardrails and options as `plan`."""
        from orchestrator.planner.baselines import all_baselines

        return all_baselines(self.spec, build_problem(self.spec, self.inputs, rules=self.rules), catalog, self.options, profiles_dir)

    def single_cloud(self, catalog: PriceCatalog, profiles_dir: Path | None = None) -> Baseline:
        """Baseline (a), one cloud on-demand, exactly as `baselines` computes it."""
        from orchestrator.planner.baselines import single_cloud

        return single_cloud(self.spec, catalog, self.options, profiles_dir, self.rules)


def planning(spec: FleetSpec, inputs: FleetInputs, options: PlanOptions | None = None, *, root: Path,
             policy_rules: bool = True, base_dir: Path | None = None) -> Planning:
    """How to plan this spec: with the guardrails of its placement policies (found under `root`) unless `policy_rules` is False.
    `base_dir`: the spec file's folder (its relative paths start there)."""
    return Planning(spec, inputs, options or PlanOptions(), guardrails(spec, root) if policy_rules else None, base_dir)


def load_planning(path: Path, catalog: PriceCatalog, options: PlanOptions | None = None, *, root: Path,
                  policy_rules: bool = True, demand: DemandOverride | None = None, store: StateStore | None = None,
                  profiles_dir: Path | None = None) -> tuple[Planning, list[str]]:
    """`planning` for a spec file, with its demand overridden as asked; and the notes on the demand."""
    spec, inputs = load_inputs(path, catalog, profiles_dir)
    spec, inputs, notes = with_demand(spec, inputs, path, catalog, demand, store=store, profiles_dir=profiles_dir)
    return planning(spec, inputs, options, root=root, policy_rules=policy_rules, base_dir=path.parent), notes


def baseline_rows(baselines: list[Baseline], placement: Placement) -> list[BaselineRow]:
    """The baselines as the placement carries them, each with the plan's saving against it."""
    from orchestrator.planner.placement import BaselineRow

    return [BaselineRow(name=b.name, description=b.description, cost_per_hour=b.cost_per_hour, serves_all=b.serves_all,
                        detail=b.detail, saving=round(1 - placement.cost_per_hour / b.cost_per_hour, 4) if b.cost_per_hour else None)
            for b in baselines]


def single_cloud_baseline(how: Planning, catalog: PriceCatalog, placement: Placement | None = None,
                          profiles_dir: Path | None = None) -> tuple[float | None, str]:
    """Baseline (a) for the ledger: $/h (None when no single cloud serves all) and what it is — the one `placement`
    carries (what `plan` showed), else computed as `plan` computes it. `spend record` and rebalance's applies use this."""
    carried = single_cloud_of(placement) if placement is not None else None
    if carried is not None:
        return carried
    computed = how.single_cloud(catalog, profiles_dir)
    return (computed.cost_per_hour if computed.serves_all else None), computed.detail


def single_cloud_of(placement: Placement) -> tuple[float | None, str] | None:
    """Baseline (a)'s $/h (None when it serves not all) and what it is, as the placement carries it; None when it carries none."""
    row = next((b for b in placement.baselines or [] if b.name == "single_cloud"), None)
    if row is None:
        return None
    return (row.cost_per_hour if row.serves_all else None), row.detail
