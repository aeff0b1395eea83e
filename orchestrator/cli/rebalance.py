"""`orchestrator rebalance`: move the running fleet to the churn-aware plan, make-before-break."""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from orchestrator.cli.catalog import load_catalog
from orchestrator.cli.common import EnvOption, FormatOption, OutputFormat, SpecOption, console, errors, print_json, spec_path
from orchestrator.settings import load_settings

if TYPE_CHECKING:
    from orchestrator.rebalance.run import Move

logger = logging.getLogger(__name__)


def rebalance(
    env: EnvOption = None,
    spec: SpecOption = None,
    output: FormatOption = OutputFormat.table,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the change and its cost; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    time_limit_s: Annotated[float, typer.Option("--time-limit", help="Solver time limit, seconds.", min=0.1)] = 30.0,
    churn_usd: Annotated[float, typer.Option("--churn-usd", help="$/h a move of one replica must save.", min=0.0)] = 0.5,
    step_timeout_s: Annotated[float, typer.Option(help="Longest a single step may take, seconds.", min=1.0)] = 1800.0,
    watch: Annotated[bool, typer.Option(help="Keep rebalancing at --interval (a control loop; implies --yes).")] = False,
    interval_s: Annotated[float, typer.Option(help="With --watch: seconds between checks.", min=1.0)] = 300.0,
    min_saving_usd: Annotated[float, typer.Option(help="With --watch: move only for a saving of at least this $/h.", min=0.0)] = 1.0,
    iterations: Annotated[int | None, typer.Option(help="With --watch: stop after this many checks (default: run until stopped).", min=1)] = None,
) -> None:
    """Observe what runs, plan churn-aware, show the change and its $/h, and apply it make-before-break.

    Order: grow node pools, start replicas and wait until ready (they join the gateway), then
    drain and stop leaving replicas, then shrink pools; capacity never falls below demand.
    Every step is journaled in the state database: a run that dies is resumed by the next one.
    A second rebalance of the same environment exits with who holds the lock.
    """
    from orchestrator.inputs import load_inputs
    from orchestrator.planner import PlanOptions
    from orchestrator.plan_store import save_placement
    from orchestrator.rebalance.journal import environment_lock
    from orchestrator.rebalance.run import apply, prepare, providers_for, resume
    from orchestrator.ledger import open_ledger, record_placement
    from orchestrator.state import state_url

    settings = load_settings()
    path = spec_path(env, spec)
    options = PlanOptions(time_limit_s=time_limit_s, churn_usd_per_replica=churn_usd)
    checks = 0
    while True:
        fleet, inputs = load_inputs(path, load_catalog(), settings.profiles_dir)
        url = state_url(settings, inputs.environment, fleet.state.url)
        store = open_ledger(settings, inputs.environment, fleet.state.url)  # the state database, ledger tables included
        providers = providers_for(fleet, inputs.environment, store, url, settings)
        with environment_lock(store, inputs.environment):
            with errors.status("finishing an interrupted rebalance…"):
                resumed = resume(store, inputs.environment, providers, step_timeout_s=step_timeout_s)
            if resumed is not None:
                errors.print(f"resumed and finished run {resumed}")
            with errors.status("observing and planning…"):
                move = prepare(fleet, inputs, load_catalog(), providers, options, Path.cwd())
            worth_it = bool(move.steps) and (not watch or move.saving_per_hour >= min_saving_usd or _below_target(move))
            if output is OutputFormat.json and not watch:
                print_json(_move_json(move, applied=worth_it and not dry_run))
            else:
                render_move(move)
            if watch and move.steps and not worth_it:
                logger.info("rebalance %s: no move, saving $%.2f/h under the $%.2f/h threshold",
                            inputs.environment, move.saving_per_hour, min_saving_usd)
                errors.print(f"no move: saving ${move.saving_per_hour:,.2f}/h is under --min-saving-usd ${min_saving_usd:,.2f}/h")
            if worth_it and not dry_run and (yes or watch or typer.confirm("Apply these steps?", default=False, err=True)):
                _announce_new_gateway_key(settings, inputs.environment)
                run_id = apply(store, move, providers, step_timeout_s=step_timeout_s,
                               on_step=lambda seq, step: errors.print(f"  ✓ step {seq + 1}/{len(move.steps)}: {_describe(step)}"))
                save_placement(settings, move.target)
                record_placement(store, inputs.environment, move.target, dt.datetime.now(dt.UTC))
                errors.print(f"[green]✓[/] applied run {run_id}: ${move.cost_before:,.2f}/h → ${move.cost_after:,.2f}/h")
        store.close()
        checks += 1
        if not watch or (iterations is not None and checks >= iterations):
            return
        time.sleep(interval_s)


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


def _describe(step) -> str:
    if step.kind == "resize_pool":
        return f"pool {step.pool} → {step.nodes} nodes"
    verb = "start" if step.kind == "scale_up" else "drain to"
    return f"{verb} {step.count} × {step.model} in {step.pool}"


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
        console.print(f"  {index}. {_describe(step)}")
    for warning in move.warnings:
        console.print(f"[yellow]policy warning:[/] {warning}")


def _changed(before: int, after: int) -> str:
    return f"[bold]{after}[/]" if after != before else str(after)
