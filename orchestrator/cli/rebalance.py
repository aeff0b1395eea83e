"""`orchestrator rebalance`: move the running fleet to the churn-aware plan, make-before-break."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
    from orchestrator.rebalance.loop import RebalanceUI
    from orchestrator.rebalance.run import Move
    from orchestrator.rebalance.steps import Fleet

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
    simulate: Annotated[bool, typer.Option(help="Plan as `plan --simulate` does: re-plan until each (model, pool) meets its SLO with one replica simulated at its planned load.")] = False,
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
    from orchestrator.rebalance.report import move_report

    settings = load_settings()
    path = spec_path(env, spec)
    options = PlanOptions(time_limit_s=time_limit_s, churn_usd_per_replica=churn_usd, simulate=simulate)
    quiet = output is OutputFormat.json and not watch

    def decide(move: Move) -> bool:
        worth_it = bool(move.steps) and (not watch or move.saving_per_hour >= min_saving_usd or _below_target(move))
        if quiet:
            print_json(move_report(move, applied=worth_it and not dry_run).model_dump(mode="json"))
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
                       demand=demand, routes=not dry_run, dry_run=dry_run)
        checks += 1
        if not watch or (iterations is not None and checks >= iterations):
            return
        time.sleep(interval_s)


def rebalance_once(path: Path, settings: Settings, options: PlanOptions, *, decide: Callable[[Move], bool],
                   step_timeout_s: float, transient: bool = False, demand: DemandOverride | None = None,
                   routes: bool = True, dry_run: bool = False) -> tuple[Move, int | None]:
    """`orchestrator.rebalance.loop.rebalance_once` shown on stderr: progress bars (gone when `transient`), spinners, notes."""
    from orchestrator.rebalance.loop import rebalance_once as once

    return once(path, settings, options, decide=decide, step_timeout_s=step_timeout_s, ui=console_ui(transient),
                demand=demand, routes=routes, dry_run=dry_run)


NOTE_STYLES = {"info": "{}", "warning": "[yellow]{}[/]", "success": "[green]✓[/] {}", "secret": "[bold]{}[/]"}


def console_ui(transient: bool) -> RebalanceUI:
    """The loop's callbacks for a terminal: notes, spinners and step progress on stderr."""
    from orchestrator.rebalance.loop import RebalanceUI

    def note(text: str, kind: str) -> None:
        errors.print(NOTE_STYLES.get(kind, "{}").format(escape(text)), highlight=False)

    return RebalanceUI(note=note, status=errors.status,
                       progress=lambda title, steps, current: StepProgress(title, transient, steps, current))


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


def render_move(move: Move) -> None:
    """The diff: pools and replicas before → after, $/h before → after, and the steps in order."""
    from orchestrator.rebalance.report import move_report

    report = move_report(move, applied=False)
    table = Table(title=f"Rebalance of '{move.environment}'", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("pool / replicas", "before", "after"):
        table.add_column(column, justify="left" if column.startswith("pool") else "right")
    for p in report.pools:
        if p.nodes_before or p.nodes_after:
            table.add_row(f"{p.pool} nodes", str(p.nodes_before), _changed(p.nodes_before, p.nodes_after))
    for r in report.replicas:
        table.add_row(f"  {r.model} in {r.pool}", str(r.before), _changed(r.before, r.after))
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
