"""`orchestrator rollout`: move a model to a new version with traffic in steps, promote or roll back on its metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.cli.common import EnvOption, FormatOption, OutputFormat, SpecOption, console, errors, print_json, spec_path
from orchestrator.cli.rebalance import NOTE_STYLES
from orchestrator.settings import load_settings

if TYPE_CHECKING:
    from orchestrator.rollout.run import RolloutReport


def rollout(
    env: EnvOption = None,
    spec: SpecOption = None,
    model: Annotated[str, typer.Option("--model", help="The model to move (models[].name).")] = ...,  # type: ignore[assignment]
    to: Annotated[str | None, typer.Option("--to", help="The version to move to (the model's `version` or one of its `versions`).")] = None,
    abort: Annotated[bool, typer.Option("--abort", help="Roll the model's unfinished rollout back instead.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan (replicas per step, pool growth); change nothing.")] = False,
    output: FormatOption = OutputFormat.table,
    step_timeout_s: Annotated[float, typer.Option(help="Longest a single change may take, seconds.", min=1.0)] = 1800.0,
) -> None:
    """Start the new version beside the old one, shift traffic in the model's `rollout.steps`, judge each step
    on the new version's error rate and TTFT/TPOT against the old one's, then promote it or roll back.

    Capacity never drops: the old replicas all serve until the promotion. Every step is
    recorded: a rollout that dies is resumed by the same command. Exit 0 when promoted (or
    nothing to do), 1 when rolled back or failed, 2 on bad input.
    """
    from orchestrator.errors import InputError
    from orchestrator.rollout.run import RolloutUI, rollout as run_rollout

    if (to is None) == (not abort):
        raise InputError("give --to VERSION to roll out, or --abort to roll back the unfinished rollout (not both)")
    quiet = output is OutputFormat.json
    ui = RolloutUI(note=_note, progress=lambda title, total: _progress(title, total, transient=quiet))
    report = run_rollout(spec_path(env, spec), load_settings(), model, to, abort=abort, dry_run=dry_run,
                         step_timeout_s=step_timeout_s, ui=ui)
    if quiet:
        print_json(report.model_dump(mode="json"))
    else:
        render(report)
    if report.outcome == "rolled_back":
        raise typer.Exit(1)


def _note(text: str, kind: str) -> None:
    from rich.markup import escape

    errors.print(NOTE_STYLES.get(kind, "{}").format(escape(text)), highlight=False)


@contextmanager
def _progress(title: str, total: int, transient: bool) -> Iterator[Callable[[int, str], None]]:
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=errors, transient=transient)
    with progress:
        task = progress.add_task(title, total=total)
        yield lambda completed, description: progress.update(task, completed=completed, description=description)


def render(report: RolloutReport) -> None:
    """The plan (replicas of the new version per pool at each step) and what happened."""
    if report.plan is not None:
        plan = report.plan
        table = Table(title=f"Rollout of {plan.model}: {plan.from_version} → {plan.to_version}", box=box.SIMPLE_HEAD,
                      header_style="bold")
        table.add_column("pool")
        table.add_column(f"{plan.from_version} replicas", justify="right")
        for percent in plan.steps:
            table.add_column(f"{plan.to_version} at {percent:g} %", justify="right")
        table.add_column("nodes", justify="right")
        for pool in plan.pools:
            nodes = f"{pool.nodes} → {pool.grow_to} → {pool.nodes}" if pool.grow_to else str(pool.nodes)
            table.add_row(pool.pool, str(pool.stable), *(str(c) for c in pool.canary), nodes)
        console.print(table)
    for verdict in report.verdicts:
        console.print(f"  step {verdict.step + 1} ({verdict.percent:g} %): {verdict.decision} after {verdict.elapsed_s:.0f} s — "
                      f"new {_figures(verdict.new)}; old {_figures(verdict.old)}")
    style = {"promoted": "green", "unchanged": "green", "planned": "cyan", "rolled_back": "red"}[report.outcome]
    console.print(f"[{style}]{report.outcome.replace('_', ' ')}[/]" + (f": {report.reason}" if report.reason else ""))


def _figures(figures) -> str:  # noqa: ANN001 (gate.Figures)
    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.0f} ms"

    rate = "–" if figures.error_rate is None else f"{figures.error_rate:.1%}"
    return (f"{figures.requests} requests, errors {rate}, TTFT p95 {ms(figures.ttft_p95_ms)}, "
            f"TPOT p95 {ms(figures.tpot_p95_ms)}")
