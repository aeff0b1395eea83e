"""`orchestrator plan`: the cost- and latency-optimal placement for an environment."""

from __future__ import annotations

import contextlib
import statistics
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from orchestrator.cli.catalog import load_catalog
from orchestrator.cli.common import EnvOption, FormatOption, OutputFormat, SpecOption, console, errors, print_json, spec_path
from orchestrator.cli.demand_options import (
    BurstPercentileOption,
    BurstWindowOption,
    MeasuredWindowOption,
    ScaleOption,
    TraceModelOption,
    TraceOption,
    TraceRegionOption,
    TraceWindowOption,
)
from orchestrator.settings import load_settings

if TYPE_CHECKING:
    from orchestrator.inputs import FleetInputs
    from orchestrator.planner import Placement, PlacementRules, PlanOptions
    from orchestrator.planner.placement import MeanSizePlan
    from orchestrator.spec import FleetSpec


def plan(
    env: EnvOption = None,
    spec: SpecOption = None,
    output: FormatOption = OutputFormat.table,
    time_limit_s: Annotated[float, typer.Option("--time-limit", help="Solver time limit, seconds.", min=0.1)] = 30.0,
    mip_gap: Annotated[float, typer.Option("--mip-gap", help="Stop within this relative gap of optimal.", min=0.0, max=1.0)] = 0.005,
    spot_overprovision: Annotated[float, typer.Option(help="Spot replicas count at 1/(1+x) of their capacity.", min=0.0)] = 0.25,
    max_spot_share: Annotated[float, typer.Option(help="Most of a model's load on spot pools (0-1).", min=0.0, max=1.0)] = 1.0,
    churn_usd: Annotated[float, typer.Option("--churn-usd", help="With --current: $/h per replica started (stopping is free).", min=0.0)] = 0.5,
    current: Annotated[Path | None, typer.Option(help="A placement JSON running now: prefer plans that move fewer replicas.", dir_okay=False)] = None,
    trace: TraceOption = None,
    trace_model: TraceModelOption = None,
    trace_region: TraceRegionOption = None,
    window_s: TraceWindowOption = 300.0,
    scale: ScaleOption = 1.0,
    burst_window_s: BurstWindowOption = 10.0,
    burst_percentile: BurstPercentileOption = 99.0,
    measured_window_s: MeasuredWindowOption = None,
    policy_rules: Annotated[bool, typer.Option(help="Plan within the placement policies' residency areas and spot caps.")] = True,
    baselines: Annotated[bool, typer.Option(help="Also compute the baselines and the savings against them.")] = True,
    save: Annotated[bool, typer.Option(help="Store as the environment's latest plan (read by policy check and rebalance).")] = True,
    simulate: Annotated[bool, typer.Option(help="Check the promise a second way: simulate one replica of each (model, pool) at its planned load (about a second each); re-plan with the capacity of any pair that misses scaled to what the simulation sustains.")] = False,
) -> None:
    """Place replicas over the pools at the lowest $/h that serves every region within its SLOs.

    Demand the fleet cannot serve is listed under `unserved` with the reason; the exit code
    stays 0. The constraints that shaped the plan are listed under `explain`.
    """
    from orchestrator.plan_store import read_placement, save_placement
    from orchestrator.planner import PlanOptions
    from orchestrator.planning import DemandOverride, baseline_rows, load_planning

    settings = load_settings()
    catalog = load_catalog()
    path = spec_path(env, spec)
    options = PlanOptions(time_limit_s=time_limit_s, mip_gap=mip_gap, spot_overprovision=spot_overprovision,
                          max_spot_share=max_spot_share, churn_usd_per_replica=churn_usd, simulate=simulate)
    demand = DemandOverride(trace=trace, trace_model=trace_model, trace_region=trace_region, window_s=window_s, scale=scale,
                            burst_window_s=burst_window_s, burst_percentile=burst_percentile, measured_window_s=measured_window_s)
    with errors.status("measuring demand…") if demand.active else contextlib.nullcontext():
        how, notes = load_planning(path, catalog, options, root=Path.cwd(), policy_rules=policy_rules, demand=demand,
                                   profiles_dir=settings.profiles_dir)
    for note in notes:
        errors.print(f"demand: {note}", highlight=False)
    running = None
    if current is not None:
        running = {(r.model, r.pool): r.count for r in read_placement(current).replicas}
    with errors.status("solving, then simulating one replica per (model, pool)…" if simulate else "solving…") as status:
        def on_round(round_: int, missed: int) -> None:
            if missed:
                status.update(f"{missed} (model, pool) pairs miss the SLO in simulation: re-planning with their capacity "
                              f"scaled to what the simulation sustains (round {round_ + 1})…")
        placement = how.plan(running, on_round=on_round)
    with errors.status("planning at the mean sizes, for comparison…"):
        placement = placement.model_copy(update={"mean_size_plan": _mean_size_plan(how.spec, how.inputs, options, how.rules, path)})
    if baselines:
        with errors.status("computing baselines…"):
            compared = how.baselines(catalog, settings.profiles_dir)
        placement = placement.model_copy(update={"baselines": baseline_rows(compared, placement)})
    if save:
        save_placement(settings, placement)
    if output is OutputFormat.json:
        print_json(placement.model_dump(mode="json"))
        return
    render_placement(placement)


def _mean_size_plan(fleet: FleetSpec, inputs: FleetInputs, options: PlanOptions, rules: PlacementRules | None, path: Path) -> MeanSizePlan | None:
    """What the same fleet planned at the mean sizes and rate costs and carries of the real demand (None: nothing to compare)."""
    from orchestrator.planner.mean_size import compare_mean_size

    compared = compare_mean_size(fleet, inputs, options, rules, base_dir=path.parent, profiles_dir=load_settings().profiles_dir)
    return compared.summary() if compared else None


def render_placement(placement: Placement) -> None:
    """Cost per provider and pool, replicas per model, RTT per region, savings against baselines."""
    gap = "" if placement.solver.mip_gap is None else f", gap {placement.solver.mip_gap:.2%}"
    console.print(f"[bold]{placement.environment}[/]: [bold green]${placement.cost_per_hour:,.2f}/h[/] "
                  f"(lower bound ${placement.lower_bound_per_hour:,.2f}/h; HiGHS {placement.solver.status} "
                  f"in {placement.solver.seconds:.2f}s{gap})")

    by_provider: dict[str, float] = defaultdict(float)
    for p in placement.pools:
        by_provider[p.provider] += p.cost_per_hour
    pools = Table(title="Pools", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("pool", "provider", "GPU", "capacity", "nodes", "$/h", "replicas"):
        pools.add_column(column, justify="right" if column in ("nodes", "$/h") else "left")
    hosted: dict[str, list[str]] = defaultdict(list)
    for r in placement.replicas:
        hosted[r.pool].append(f"{r.count}× {r.model}")
    for p in sorted(placement.pools, key=lambda p: -p.cost_per_hour):
        pools.add_row(p.pool, p.provider, f"{p.gpus_per_node}x {p.gpu}", p.capacity, f"{p.nodes}/{p.max_nodes}",
                      f"{p.cost_per_hour:,.2f}", ", ".join(hosted[p.pool]) or "[dim]—[/]")
    console.print(pools)
    console.print("  by provider: " + "  ".join(f"{k} ${v:,.2f}/h" for k, v in sorted(by_provider.items(), key=lambda kv: -kv[1])))

    models = Table(title="Replicas per model", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("model", "replicas", "GPUs", "demand req/s", "planned req/s", "mix within SLO", "pools"):
        models.add_column(column, justify="left" if column in ("model", "pools") else "right")
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in placement.capacity}
    carried = _carried_by_model(placement)
    for m in placement.models:
        rows = [r for r in placement.replicas if r.model == m.model]
        share = carried.get(m.model)
        models.add_row(m.model, str(sum(r.count for r in rows)), str(sum(r.count * gpus[(m.model, r.pool)] for r in rows)),
                       f"{sum(d.rps for d in placement.demand if d.model == m.model):g}",
                       f"{sum(d.rps * d.peak_factor for d in placement.demand if d.model == m.model):.4g}",
                       "[dim]—[/]" if share is None else (f"{share:.1%}" if share >= 1 - 1e-4 else f"[bold red]{share:.1%}[/]"),
                       ", ".join(r.pool for r in rows))
    console.print(models)
    for model, share in carried.items():
        if share < 1 - 1e-4:
            console.print(f"[bold red]warning[/]: {model}: the plan carries only {share:.1%} of the requests it routes within the SLO "
                          "(mix_check recomputed from this placement); the served demand should be carried in full")
    _render_demand(placement)

    latency = Table(title="RTT per user region (traffic-weighted)", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("region", "p50 ms", "max ms", "served by"):
        latency.add_column(column, justify="right" if "ms" in column else "left")
    by_region: dict[str, list] = defaultdict(list)
    for route in placement.routes:
        by_region[route.region].append(route)
    for region, routes in sorted(by_region.items()):
        weights = {(d.model, d.region): d.rps for d in placement.demand}
        samples = sorted((r.rtt_ms, r.share * weights[(r.model, r.region)]) for r in routes)
        latency.add_row(region, f"{_weighted_median(samples):.0f}", f"{max(r.rtt_ms for r in routes):.0f}",
                        ", ".join(sorted({r.pool for r in routes})))
    console.print(latency)

    if placement.baselines:
        savings = Table(title="Against the baselines", box=box.SIMPLE_HEAD, header_style="bold")
        for column in ("baseline", "$/h", "saving", "note"):
            savings.add_column(column, justify="right" if column in ("$/h", "saving") else "left")
        for b in placement.baselines:
            if b.name == "lp_bound" and b.cost_per_hour:
                saving, note = "—", f"the plan is {placement.cost_per_hour / b.cost_per_hour - 1:.1%} above this bound"
            else:
                saving = "—" if b.saving is None else f"{b.saving:.1%}"
                note = b.detail + ("" if b.serves_all else " (misses SLOs)")
            savings.add_row(b.description, "—" if b.cost_per_hour is None else f"{b.cost_per_hour:,.2f}", saving, note)
        console.print(savings)
    for u in placement.unserved:
        console.print(f"[yellow]unserved[/] {u.model}" + (f" from {u.region}" if u.region else "") + f" ({u.rps:g} req/s): {u.reason}")
    for note in placement.explain:
        console.print(f"[dim]• {note}[/]")


def _carried_by_model(placement: Placement) -> dict[str, float]:
    """Per model with routed demand: the share of its routed requests carried within the SLO (from mix_check)."""
    from orchestrator.planner.mix_check import carried_share

    out = {}
    for m in sorted({r.model for r in placement.routes}):
        rows = [row for row in placement.mix_check if row.model == m]
        out[m] = carried_share(rows, placement.model_copy(update={"demand": [d for d in placement.demand if d.model == m]}))
    return out


def _render_demand(placement: Placement) -> None:
    """Per demand: the rate planned for, its peak factor and where the factor comes from, its size buckets;
    and what a plan at the mean sizes would have cost and carried."""
    if any(d.peak_factor != 1.0 or d.size_mix for d in placement.demand):
        demand = Table(title="Demand planned for", box=box.SIMPLE_HEAD, header_style="bold")
        for column in ("model", "region", "mean req/s", "peak factor", "planned req/s", "size buckets", "peak factor source"):
            demand.add_column(column, justify="right" if column in ("mean req/s", "peak factor", "planned req/s", "size buckets") else "left")
        for d in placement.demand:
            source = d.peak_source or ("peak_factor in the spec" if d.peak_factor != 1.0 else "[dim]none: the mean[/]")
            demand.add_row(d.model, d.region, f"{d.rps:.4g}", f"{d.peak_factor:.3g}", f"{d.rps * d.peak_factor:.4g}",
                           str(len(d.size_mix) or 1), source)
        console.print(demand)
    if placement.simulated is not None:
        _render_simulated(placement)
    mean = placement.mean_size_plan
    if mean is not None:
        style = "bold red" if mean.carried_share < 1 - 1e-4 else "green"
        console.print(f"  a plan at mean sizes would cost [bold]${mean.cost_per_hour:,.2f}/h[/] and carry "
                      f"[{style}]{mean.carried_share:.1%}[/] of this demand within SLO "
                      f"(this plan: ${placement.cost_per_hour:,.2f}/h)")


def _render_simulated(placement: Placement) -> None:
    """`--simulate`: the closed-form promise checked against a simulated replica, a row per (model, pool)."""
    slo = {m.model: m for m in placement.models}
    table = Table(title="Simulated: one replica at its planned load (docs/capacity.md, Checked by simulation)", box=box.SIMPLE)
    for column in ("model", "pool", "req/s per replica", "TTFT p95 ms", "TPOT p95 ms", "within SLO", "meets p95 SLO", "capacity ×"):
        table.add_column(column, justify="left" if column in ("model", "pool") else "right")
    for row in placement.simulated or []:
        target = slo[row.model]
        table.add_row(row.model, row.pool, f"{row.rps_per_replica:.3g}", f"{row.ttft_p95_ms:,.0f} / {target.ttft_p95_ms:,.0f}",
                      f"{row.tpot_p95_ms:.1f} / {target.tpot_p95_ms:g}", f"{row.within_slo:.1%}",
                      "[green]yes[/]" if row.meets_slo else "[bold red]no[/]",
                      "1" if row.capacity_factor == 1 else f"[yellow]{row.capacity_factor:.2f}[/]")
    console.print(table)
    rows = placement.simulated or []
    missed = [r for r in rows if not r.meets_slo]
    scaled = [r for r in rows if r.capacity_factor < 1]
    if scaled:
        console.print(f"{len(scaled)} (model, pool) pairs missed the SLO in simulation at the closed-form capacity; the plan above "
                      "was made with their capacity scaled down (capacity ×) to what the simulated replica sustains")
    if missed:
        console.print(f"[bold red]{len(missed)} of {len(rows)} (model, pool) pairs still miss the p95 SLO in simulation[/] "
                      "after re-planning (docs/capacity.md)")


def _weighted_median(samples: list[tuple[float, float]]) -> float:
    total = sum(w for _, w in samples)
    if total <= 0:
        return statistics.median(v for v, _ in samples)
    running = 0.0
    for value, weight in samples:
        running += weight
        if running >= total / 2:
            return value
    return samples[-1][0]
