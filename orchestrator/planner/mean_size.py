"""The price of truth: the same fleet planned at the mean request size and rate, measured on the real demand.

A planner that sizes capacity from one mean request and one mean rate per demand row plans
fewer (or other) replicas than the size mix and the bursts need. `compare_mean_size` plans
the fleet that way — every demand row at its mean tokens, `size_mix` removed, `peak_factor`
1, replica sizes chosen for the mean — and then checks that plan against the real demand:
its routes carry the real planned rate (mean x peak factor), split over the real size mix,
and each (model, pool) sustains each bucket at the rate the capacity model gives for the
naive plan's own replica size (`orchestrator.inputs.pool_capacity` with the GPUs fixed).
`mix_check.check_mix` does the counting. The result is what `plan` shows next to its own
cost: what the mean-size plan would cost, and how much of this demand it carries within SLO.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.inputs import DEFAULT_MIX, CapacityInput, DemandInput, FleetInputs, SizeInput, model_size_mixes, pool_capacity
from orchestrator.planner.formulation import PlanOptions
from orchestrator.planner.mix_check import carried_share, check_mix
from orchestrator.planner.placement import CapacityRow, DemandRow, MeanSizePlan, MixCheckRow, Placement, SizeBucketRow, SizeRateRow
from orchestrator.planner.plan import plan_problem
from orchestrator.planner.problem import PlacementRules, build_problem
from orchestrator.profiles.architectures import resolve_architecture
from orchestrator.spec import FleetSpec


@dataclass(frozen=True)
class MeanSizeComparison:
    """The mean-size plan, the real demand it is measured against, and what it carries of it."""

    placement: Placement  # planned at the means
    reference: Placement  # that plan with the real demand rows and the real mix's rates at its replica sizes
    mix_check: list[MixCheckRow]
    carried_share: float

    @property
    def cost_per_hour(self) -> float:
        return self.placement.cost_per_hour

    def summary(self) -> MeanSizePlan:
        return MeanSizePlan(cost_per_hour=self.placement.cost_per_hour, carried_share=round(self.carried_share, 4))


def has_size_information(spec: FleetSpec) -> bool:
    """Whether any demand row carries a size mix or a peak factor: otherwise the naive plan is the plan."""
    return any(d.size_mix or d.peak_factor != 1.0 for d in spec.demand)


def mean_size_spec(spec: FleetSpec, keep_peak_factor: bool = False) -> FleetSpec:
    """The spec as a naive planner reads it: each demand row at its mean tokens and mean rate (or planned rate, keeping the peak factor)."""
    update: dict[str, object] = {"size_mix": None} if keep_peak_factor else {"size_mix": None, "peak_factor": 1.0, "peak_source": None}
    demand = [d.model_copy(update=update) for d in spec.demand]
    return spec.model_copy(update={"demand": demand})


def compare_mean_size(
    spec: FleetSpec,
    inputs: FleetInputs,
    options: PlanOptions | None = None,
    rules: PlacementRules | None = None,
    *,
    base_dir: Path | None = None,
    profiles_dir: Path | None = None,
    keep_peak_factor: bool = False,
) -> MeanSizeComparison | None:
    """Plan `spec` at its mean sizes and rate and measure that plan on the real demand; None when there is nothing to compare.

    `inputs` are the spec's resolved inputs (pools, prices and RTTs are reused; capacity is
    re-estimated for the mean sizes). Only pools that host a model under its real mix are
    considered for it. `base_dir`: where a relative `architecture` config.json lies.
    `keep_peak_factor`: plan the naive fleet for the planned rate, so only the sizes differ (a benchmark's ablation).
    """
    if not has_size_information(spec):
        return None
    options = options or PlanOptions()
    naive_spec = mean_size_spec(spec, keep_peak_factor)
    naive_mixes, real_mixes = model_size_mixes(naive_spec), model_size_mixes(spec)
    pools = {p.pool: p for p in inputs.pools}
    hosted = {(c.model, c.pool) for c in inputs.capacity}
    naive_capacity: list[CapacityInput] = []
    real_capacity: list[CapacityRow] = []
    for model in spec.models:
        arch = resolve_architecture(model.architecture, base_dir)
        real_mix = real_mixes.get(model.name, DEFAULT_MIX)
        for name, pool in pools.items():
            if (model.name, name) not in hosted:
                continue
            naive = pool_capacity(model, pool, naive_mixes.get(model.name, DEFAULT_MIX), arch=arch, profiles_dir=profiles_dir)
            if naive is None:
                continue
            naive_capacity.append(naive)
            real = pool_capacity(model, pool, real_mix, naive.gpus_per_replica, arch=arch, profiles_dir=profiles_dir)
            real_capacity.append(_capacity_row(naive, real, real_mix))
    naive_inputs = replace(
        inputs,
        demand=tuple(replace(d, buckets=()) if keep_peak_factor else replace(d, buckets=(), peak_factor=1.0, peak_source=None)
                     for d in inputs.demand),
        capacity=tuple(naive_capacity),
    )
    placement = plan_problem(build_problem(naive_spec, naive_inputs, rules=rules), options)
    reference = placement.model_copy(update={"demand": [_real_demand_row(d) for d in inputs.demand], "capacity": real_capacity})
    rows = check_mix(placement, reference)
    return MeanSizeComparison(placement=placement, reference=reference, mix_check=rows, carried_share=carried_share(rows, reference))


def _capacity_row(naive: CapacityInput, real: CapacityInput | None, mix: tuple[SizeInput, ...]) -> CapacityRow:
    """The real mix's per-bucket rates at the naive plan's replica size (all 0 when the real mix does not fit it)."""
    rates = [(s.input_tokens, s.output_tokens, s.rps) for s in real.by_size] if real else [(b.input_tokens, b.output_tokens, 0.0) for b in mix]
    return CapacityRow(model=naive.model, pool=naive.pool, gpus_per_replica=naive.gpus_per_replica,
                       rps_per_replica=real.rps_per_replica if real else 0.0, source=real.source if real else naive.source,
                       by_size=[SizeRateRow(input_tokens=i, output_tokens=o, rps=r) for i, o, r in rates])


def _real_demand_row(d: DemandInput) -> DemandRow:
    """A demand row of the real demand; a mean-only row becomes a one-bucket mix so its rate is looked up by size."""
    return DemandRow(model=d.model, region=d.region, rps=d.rps, input_tokens=d.input_tokens, output_tokens=d.output_tokens,
                     peak_factor=d.peak_factor, peak_source=d.peak_source,
                     size_mix=[SizeBucketRow(input_tokens=b.input_tokens, output_tokens=b.output_tokens, share=b.share, label=b.label)
                               for b in d.sizes])
