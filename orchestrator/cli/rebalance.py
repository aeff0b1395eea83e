"""`orchestrator rebalance`: move the running fleet to the churn-aware plan, make-before-break."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.cli.catalog import load_catalog
from orchestrator.cli.common import EnvOption, FormatOption, OutputFormat, SpecOption, console, errors, print_json, spec_path
from orchestrator.cli.demand_options import (
    BurstPercentileOption, BurstWindowOption, MeasuredWindowOption, ScaleOption, TraceModelOption, TraceOption,
    TraceRegionOption, TraceWindowOption,
)
from orchestrator.settings import Settings, load_settings

if TYPE_CHECKING:
    from orchestrator.planner import PlanOptions
    from orchestrator.planning import DemandOverride
    from orchestrator.providers.base import Step
    from orchestrator.rebalance.run import Move
    from orchestrator.rebalance.steps import Fleet
    from orchestrator.spec import FleetSpec

logger = logging.getLogger(__name__)


def rebalance(
    env: EnvOption = None,
    spec: SpecOption = None,
    output: FormatOption = OutputFormat.table,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the change and its cost; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    time_limit_s: Annotated[float, typer.Option("--time-limit", help="Solver time limit, seconds.", min=0.1)] = 30.0,
    churn_usd: Annotated[float, typer.Option("--churn-usd", help="$/h per replica started (stopping is free): a move must save more than that.", min=0.0)] = 0.5,
    step_timeout_s: Annotated[float, typer.Option(help="Longest a single step may take, seconds.", min=1.0)] = 1800.0,
    watch: Annotated[bool, typer.Option(help="Keep rebalancing at --interval (a control loop; implies --yes).")] = False,
    interval_s: Annotated[float, typer.Option(help="With --watch: seconds between checks.", min=1.0)] = 300.0,
    min_saving_usd: Annotated[float, typer.Option(help="With --watch: move only for a saving of at least this $/h.", min=0.0)] = 1.0,
    iterations: Annotated[int | None, typer.Option(help="With --watch: stop after this many checks (default: run until stopped).", min=1)] = None,
    trace: TraceOption = None,
    trace_model: TraceModelOption = None,
    trace_region: TraceRegionOption = None,
    window_s: TraceWindowOption = 300.0,
    scale: ScaleOption = 1.0,
    burst_window_s: BurstWindowOption = 10.0,
    burst_percentile: BurstPercentileOption = 99.0,
    measured_window_s: MeasuredWindowOption = None,
) -> None:
    """Observe what runs, plan churn-aware, show the change and its $/h, and apply it make-before-break.

    Order: grow node pools, start replicas and wait until ready (they join the gateway), then
    drain and stop leaving replicas, then shrink pools; capacity never falls below demand.
    Every step is journaled in the state database: a run that dies is resumed by the next one.
    A second rebalance of the same environment exits with who holds the lock. A pool whose
    cloud refuses more nodes (quota, stockout) is held at what it has and the move re-planned.
    """
    from orchestrator.planner import PlanOptions
    from orchestrator.planning import DemandOverride

    settings = load_settings()
    path = spec_path(env, spec)
    options = PlanOptions(time_limit_s=time_limit_s, churn_usd_per_replica=churn_usd)
    quiet = output is OutputFormat.json and not watch

    def decide(move: Move) -> bool:
        worth_it = bool(move.steps) and (not watch or move.saving_per_hour >= min_saving_usd or _below_target(move))
        if quiet:
            print_json(_move_json(move, applied=worth_it and not dry_run))
        else:
            render_move(move)
        if watch and move.steps and not worth_it:
            logger.info("rebalance %s: no move, saving $%.2f/h under the $%.2f/h threshold",
                        move.environment, move.saving_per_hour, min_saving_usd)
            errors.print(f"no move: saving ${move.saving_per_hour:,.2f}/h is under --min-saving-usd ${min_saving_usd:,.2f}/h")
        return worth_it and not dry_run and (yes or watch or typer.confirm("Apply these steps?", default=False, err=True))

    demand = DemandOverride(trace=trace, trace_model=trace_model, trace_region=trace_region, window_s=window_s, scale=scale,
                            burst_window_s=burst_window_s, burst_percentile=burst_percentile, measured_window_s=measured_window_s)
    checks = 0
    while True:
        rebalance_once(path, settings, options, decide=decide, step_timeout_s=step_timeout_s, transient=quiet,
                       demand=demand, routes=not dry_run)
        checks += 1
        if not watch or (iterations is not None and checks >= iterations):
            return
        time.sleep(interval_s)


def rebalance_once(path: Path, settings: Settings, options: PlanOptions, *, decide: Callable[[Move], bool],
                   step_timeout_s: float, transient: bool = False, demand: DemandOverride | None = None,
                   routes: bool = True) -> tuple[Move, int | None]:
    """One rebalance under the environment's lock: finish an interrupted run, plan, let `decide`
    (shown the move) say whether to apply, apply with progress; the move and the applied run's id.

    A pool whose cloud refuses to grow (quota, stockout) is held at the nodes it has and the
    move planned again, and shown to `decide` again. `demand` says where demand comes from
    (a trace, a measured window) when the spec's own demand is not the one to plan for.
    Routes (weighted DNS, docs/routes.md) follow every applied move, and a move with
    nothing to do when `routes`; a dry run passes `routes=False`.
    """
    from orchestrator.inputs import load_inputs
    from orchestrator.ledger import open_ledger, record_placement
    from orchestrator.plan_store import save_placement
    from orchestrator.planning import with_demand
    from orchestrator.rebalance.execute import StepFailed
    from orchestrator.rebalance.journal import environment_lock
    from orchestrator.rebalance.run import apply, prepare, providers_for, refused_pool, resume
    from orchestrator.state import state_url

    fleet, inputs = load_inputs(path, load_catalog(), settings.profiles_dir)
    url = state_url(settings, inputs.environment, fleet.state.url)
    store = open_ledger(settings, inputs.environment, fleet.state.url)  # the state database, ledger tables included
    try:
        providers = providers_for(fleet, inputs.environment, store, url, settings)
        if demand is not None and demand.active:
            with errors.status("measuring demand…"):
                fleet, inputs, notes = with_demand(fleet, inputs, path, load_catalog(), demand, store=store,
                                                   profiles_dir=settings.profiles_dir)
            for note in notes:
                errors.print(f"demand: {note}", highlight=False)
        with environment_lock(store, inputs.environment):
            with StepProgress("finishing an interrupted rebalance", transient) as progress:
                resumed = resume(store, inputs.environment, providers, step_timeout_s=step_timeout_s,
                                 on_step=progress.done, on_wait=progress.waiting)
            if resumed is not None:
                errors.print(f"resumed and finished run {resumed}")
            held: frozenset[str] = frozenset()
            while True:
                with errors.status("observing and planning…"):
                    move = prepare(fleet, inputs, load_catalog(), providers, options, Path.cwd(), held)
                if not decide(move):
                    if not move.steps and routes:
                        _realize_routes(fleet, move, settings)  # shares can change while replica counts do not
                    return move, None
                _announce_new_gateway_key(settings, inputs.environment)
                try:
                    with StepProgress(f"rebalancing {inputs.environment}", transient, move.steps, move.current) as progress:
                        run_id = apply(store, move, providers, step_timeout_s=step_timeout_s,
                                       on_step=progress.done, on_wait=progress.waiting)
                except StepFailed as exc:
                    pool = refused_pool(exc)
                    if pool is None or pool in held:
                        raise
                    errors.print(f"[yellow]{exc}[/]\nre-planning with {pool} held at the nodes it has…")
                    logger.warning("rebalance %s: %s refused to grow; re-planning without its growth: %s",
                                   inputs.environment, pool, exc)
                    held |= {pool}
                    continue
                save_placement(settings, move.target)
                record_placement(store, inputs.environment, move.target, dt.datetime.now(dt.UTC))
                _realize_routes(fleet, move, settings)
                errors.print(f"[green]✓[/] applied run {run_id}: ${move.cost_before:,.2f}/h → ${move.cost_after:,.2f}/h")
                return move, run_id
    finally:
        store.close()


def _realize_routes(fleet: FleetSpec, move: Move, settings: Settings) -> None:
    from orchestrator.routes import realize_routes

    with errors.status("updating routes…"):
        changes = realize_routes(fleet, move.target, settings)
    for change in changes:
        errors.print(f"  ✓ route: {change}", highlight=False)


class StepProgress:
    """A progress bar over a run's steps (on stderr), its line saying what the current step waits for."""

    def __init__(self, title: str, transient: bool, steps: list | None = None, current: Fleet | None = None) -> None:
        self.title = title
        self.current = current  # the fleet before the steps, so each says how many replicas it starts or stops
        self.total = len(steps) if steps is not None else None
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=errors, transient=transient)
        self.task = None

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.stop()

    def _ensure(self) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(self.title, total=self.total)

    def waiting(self, seq: int, step: Step, note: str) -> None:
        self._ensure()
        self.progress.update(self.task, description=f"step {seq + 1}: {_describe(step, _before(self.current, step))} — {note}")

    def done(self, seq: int, step: Step) -> None:
        self._ensure()
        described = _describe(step, _before(self.current, step))
        self.progress.update(self.task, completed=seq + 1, description=f"step {seq + 1}: {described} ✓")
        self.progress.console.print(f"  ✓ step {seq + 1}{f'/{self.total}' if self.total else ''}: {described}")


def _announce_new_gateway_key(settings, environment: str) -> None:
    """The gateway's API key is shown once, when it is made (the first apply starts the gateway)."""
    from orchestrator.gateway import gateway_api_key

    key = gateway_api_key(settings, environment)
    if key.created:
        errors.print(f"[bold]Gateway API key (shown once; kept in {key.source}, mode 0600):[/] {key.value.get_secret_value()}",
                     highlight=False)


def _below_target(move: Move) -> bool:
    """A fleet short of its plan (a crashed or preempted replica) is restored whatever the saving."""
    return any(move.current.replicas.get((r.model, r.pool), 0) < r.count for r in move.target.replicas)


def _describe(step: Step, before: int | None = None) -> str:
    """A step in words; with `before` (replicas of its model in its pool when the move was planned) it says how many start or stop.

    A scale step's `count` is the replicas to have after it, not how many to start: 1 → 2 is "start 1 × m in p (1 → 2)".
    """
    if step.kind == "resize_pool":
        return f"pool {step.pool} → {step.nodes} nodes"
    if before is None:  # a step resumed from the journal: what ran before it is not known here
        return f"{'scale up' if step.kind == 'scale_up' else 'drain'} {step.model} in {step.pool} to {step.count} replica{'s' if step.count != 1 else ''}"
    verb, change = ("start", step.count - before) if step.kind == "scale_up" else ("stop", before - step.count)
    return f"{verb} {change} × {step.model} in {step.pool} ({before} → {step.count})"


def _before(current: Fleet | None, step: Step) -> int | None:
    """Replicas of the step's model in its pool before the move (None: not known, or a pool step)."""
    if current is None or step.kind == "resize_pool":
        return None
    return current.replicas.get((step.model, step.pool), 0)


def _move_json(move: Move, applied: bool) -> dict:
    return {
        "environment": move.environment,
        "cost_per_hour": {"before": round(move.cost_before, 4), "after": round(move.cost_after, 4)},
        "pools": [{"pool": p.pool, "nodes_before": move.current.nodes.get(p.pool, 0), "nodes_after": p.nodes} for p in move.target.pools],
        "replicas": [{"model": m, "pool": p, "before": move.current.replicas.get((m, p), 0), "after": after}
                     for (m, p), after in sorted(_after(move).items())],
        "steps": [s.model_dump(mode="json") for s in move.steps],
        "warnings": move.warnings,
        "applied": applied,
    }


def _after(move: Move) -> dict[tuple[str, str], int]:
    after = {(r.model, r.pool): r.count for r in move.target.replicas}
    for key in move.current.replicas:
        after.setdefault(key, 0)
    return after


def render_move(move: Move) -> None:
    """The diff: pools and replicas before → after, $/h before → after, and the steps in order."""
    table = Table(title=f"Rebalance of '{move.environment}'", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("pool / replicas", "before", "after"):
        table.add_column(column, justify="left" if column.startswith("pool") else "right")
    for p in move.target.pools:
        before = move.current.nodes.get(p.pool, 0)
        if before or p.nodes:
            table.add_row(f"{p.pool} nodes", str(before), _changed(before, p.nodes))
    for (model, pool), after in sorted(_after(move).items()):
        before = move.current.replicas.get((model, pool), 0)
        table.add_row(f"  {model} in {pool}", str(before), _changed(before, after))
    table.add_row("[bold]$/h[/]", f"{move.cost_before:,.2f}", f"[bold]{move.cost_after:,.2f}[/]")
    console.print(table)
    if not move.steps:
        console.print("[green]nothing to do:[/] the fleet matches the plan")
    for index, step in enumerate(move.steps, 1):
        console.print(f"  {index}. {_describe(step, _before(move.current, step))}")
    for warning in move.warnings:
        console.print(f"[yellow]policy warning:[/] {warning}")


def _changed(before: int, after: int) -> str:
    return f"[bold]{after}[/]" if after != before else str(after)
