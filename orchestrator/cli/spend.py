"""`orchestrator spend record | import | export | report`: the spend ledger from the command line.

`record` tells the ledger what runs when the fleet was moved by anything but `rebalance`
(which records its applies itself): it takes the environment's latest stored plan as applied now (an unchanged plan
records nothing, so it is safe on a schedule), re-prices the pools from the current catalog
and spec, and collects the replicas' token counters.
"""

from __future__ import annotations

import datetime as dt
import enum
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from orchestrator.cli.common import EnvOption, FormatOption, OutputFormat, SpecOption, console, errors, print_json, spec_path
from orchestrator.errors import InputError
from orchestrator.settings import Settings, load_settings

if TYPE_CHECKING:
    from orchestrator.catalog.price_catalog import PriceCatalog
    from orchestrator.inputs import FleetInputs
    from orchestrator.ledger import SpendSummary, Window
    from orchestrator.ledger.reconcile import ReconcileRow
    from orchestrator.planner.placement import Placement
    from orchestrator.spec import FleetSpec
    from orchestrator.state import StateStore

app = typer.Typer(help="The spend ledger: record applies and tokens, import FOCUS bills, export, report.", no_args_is_help=True)

TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
SinceOption = Annotated[dt.datetime | None, typer.Option(help="Window start, UTC (2026-11-01 or 2026-11-01T08:00).", formats=TIME_FORMATS)]
UntilOption = Annotated[dt.datetime | None, typer.Option(help="Window end, UTC (default: now).", formats=TIME_FORMATS)]
DaysOption = Annotated[float | None, typer.Option("--days", help="Window: this many days before its end "
                                                  "(default GPUFLEET_SPEND_WINDOW_DAYS, 30).", min=0.01)]


class ExportFormat(str, enum.Enum):
    focus = "focus"


def open_spend(env: str | None, spec: Path | None) -> tuple[Path, FleetSpec, str, StateStore]:
    """The spec file, the spec, the environment's name and its state database with the ledger's tables."""
    from orchestrator.ledger import open_ledger
    from orchestrator.spec import load_spec

    path = spec_path(env, spec)
    fleet = load_spec(path)
    name = fleet.environment or path.stem
    return path, fleet, name, open_ledger(load_settings(), name, fleet.state.url)


def window_of(since: dt.datetime | None, until: dt.datetime | None, days: float | None, settings: Settings) -> Window:
    """[start, end) from --since/--until/--days; naive times are UTC."""
    from orchestrator.ledger import Window

    end = until.replace(tzinfo=dt.UTC) if until else dt.datetime.now(dt.UTC)
    if since is not None and days is not None:
        raise InputError("--since and --days both given; pass one. To fix: drop one of them")
    start = since.replace(tzinfo=dt.UTC) if since else end - dt.timedelta(days=days or settings.spend_window_days)
    if start >= end:
        raise InputError(f"the window is empty: --since {start:%Y-%m-%dT%H:%M} is not before {end:%Y-%m-%dT%H:%M}. "
                         "To fix: pass a start before the end")
    return Window(start=start, end=end)


@app.command("record")
def record(
    env: EnvOption = None,
    spec: SpecOption = None,
    output: FormatOption = OutputFormat.table,
    plan: Annotated[bool, typer.Option(help="Record the plan as applied now (--no-plan: prices and tokens only).")] = True,
    placement_file: Annotated[Path | None, typer.Option("--placement", dir_okay=False,
                              help="A placement JSON (`plan --format json`) instead of the latest stored plan.")] = None,
    baseline: Annotated[bool, typer.Option(help="Compute the single-cloud baseline (a) for the savings (about a second).")] = True,
    tokens: Annotated[bool, typer.Option(help="Collect the ready replicas' token counters.")] = True,
) -> None:
    """Record what runs into the ledger: the latest plan as applied now, prices in force, tokens served.

    For fleets moved by anything but `rebalance` (which records its applies itself). An
    unchanged plan records nothing, so running it on a schedule is safe (e.g. every 5 minutes).
    """
    from orchestrator.cli.catalog import load_catalog
    from orchestrator.inputs import load_inputs
    from orchestrator.ledger import collect_tokens, record_placement, record_prices
    from orchestrator.ledger.record import latest_apply, placement_digest

    settings = load_settings()
    path, _fleet, name, store = open_spend(env, spec)
    now = dt.datetime.now(dt.UTC)
    catalog = load_catalog()
    fleet, inputs = load_inputs(path, catalog, settings.profiles_dir)
    report: dict = {"environment": name, "at": now.isoformat(), "placement": None, "repriced": [], "tokens": []}
    if plan:
        placement = _placement(settings, name, placement_file)
        last = latest_apply(store, name)
        recorded = False
        if last is None or last.placement_sha256 != placement_digest(placement):
            cost, detail = (_baseline(fleet, inputs, catalog, settings, placement) if baseline
                            else (None, "not computed (spend record --no-baseline)"))
            recorded = record_placement(store, name, placement, now, baseline_cost_per_hour=cost, baseline_detail=detail)
        applied = latest_apply(store, name)
        report["placement"] = {"recorded": recorded, "applied_at": applied.at.isoformat(), "cost_per_hour": applied.cost_per_hour,
                               "baseline_cost_per_hour": applied.baseline_cost_per_hour, "baseline_detail": applied.baseline_detail}
    report["repriced"] = record_prices(store, name, {p.pool: p.cost_per_node_hour for p in inputs.pools}, now)
    if tokens:
        added = collect_tokens(store, name)
        report["tokens"] = [{"model": m, "pool": p, "prompt_tokens": a, "generation_tokens": b} for (m, p), (a, b) in sorted(added.items())]
    store.close()
    if output is OutputFormat.json:
        print_json(report)
        return
    _render_record(report, tokens)


def _placement(settings: Settings, environment: str, file: Path | None) -> Placement:
    """The placement to record: `file` (what `plan --format json` writes), else the latest stored plan."""
    from orchestrator.plan_store import latest_placement, read_placement

    if file is None:
        placement = latest_placement(settings, environment)
        if placement is None:
            raise InputError(f"no stored plan for {environment}. To fix: run `orchestrator plan --env {environment}` "
                             "first, or pass --placement FILE")
        return placement
    placement = read_placement(file)
    if placement.environment != environment:
        raise InputError(f"{file}: a placement of '{placement.environment}', not of '{environment}'. "
                         f"To fix: pass --env {placement.environment}, or that environment's placement")
    return placement


def _baseline(fleet: FleetSpec, inputs: FleetInputs, catalog: PriceCatalog, settings: Settings,
              placement: Placement) -> tuple[float | None, str]:
    """Baseline (a)'s $/h and what it is: the one the plan carries (`plan` computed it), else computed as `plan` does
    (`orchestrator.planning`: the same guardrails and default options)."""
    from orchestrator.planning import planning, single_cloud_baseline, single_cloud_of

    if single_cloud_of(placement) is not None:
        return single_cloud_baseline(planning(fleet, inputs, root=Path.cwd()), catalog, placement)
    with errors.status("computing the single-cloud baseline…"):
        return single_cloud_baseline(planning(fleet, inputs, root=Path.cwd()), catalog, placement, settings.profiles_dir)


def _render_record(report: dict, tokens: bool) -> None:
    name, placement = report["environment"], report["placement"]
    if placement is not None:
        verb = "recorded as applied now" if placement["recorded"] else f"unchanged since {placement['applied_at'][:16]}"
        baseline = placement["baseline_cost_per_hour"]
        versus = (f" (one cloud: ${baseline:,.2f}/h, {1 - placement['cost_per_hour'] / baseline:.1%} less)" if baseline
                  else f" (no single-cloud baseline: {placement['baseline_detail']})")
        console.print(f"[green]✓[/] {name}: placement {verb}: ${placement['cost_per_hour']:,.2f}/h{versus}", highlight=False,
                      soft_wrap=True)
    if report["repriced"]:
        console.print(f"  re-priced from the catalog and spec: {', '.join(report['repriced'])}")
    if tokens:
        served = report["tokens"]
        if served:
            console.print(f"  tokens since the last scrape: {sum(t['prompt_tokens'] for t in served):,} prompt + "
                          f"{sum(t['generation_tokens'] for t in served):,} generated ({len(served)} model-pool pairs)")
        else:
            console.print("  tokens: nothing new (no ready replica, or none served since the last scrape)")


@app.command("import")
def import_bill(
    file: Annotated[Path, typer.Argument(help="FOCUS export: a .csv, .csv.gz or .parquet file, or a folder of parts.")],
    env: EnvOption = None,
    spec: SpecOption = None,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Import a FOCUS billing export (1.0-1.2: AWS Data Exports, Azure cost exports, GCP's FOCUS view).

    Checks the required columns, stores the billed cost per provider, account and day, and
    reconciles it against the ledger per provider and day (rows tagged `env=<environment>`).
    Importing a file again, or a later export of the same days, replaces the earlier one.
    """
    from orchestrator.billing import import_focus
    from orchestrator.ledger import refresh_entries
    from orchestrator.ledger.reconcile import reconcile

    settings = load_settings()
    _path, _fleet, name, store = open_spend(env, spec)
    with errors.status(f"reading {file}…"):
        result = import_focus(store, name, file)
    refresh_entries(store, name, dt.datetime.now(dt.UTC))
    rows = reconcile(store, name, result.first_day, result.last_day + dt.timedelta(days=1), settings.billing_tolerance_ratio)
    store.close()
    if output is OutputFormat.json:
        print_json({**vars(result), "reconciliation": [r.model_dump(mode="json") for r in rows]})
        return
    billed = ", ".join(f"{p} ${v:,.2f}" for p, v in result.billed_by_provider.items())
    console.print(f"[green]✓[/] imported {result.path}: FOCUS {result.focus_version}, {result.rows:,} rows, "
                  f"{result.first_day} … {result.last_day}; billed: {billed}", highlight=False, soft_wrap=True)
    if result.replaced_rows:
        console.print(f"  replaced {result.replaced_rows} provider-day sums of earlier imports (same provider, account and day)")
    if set(result.currencies) - {"USD"}:
        console.print(f"  [yellow]currencies {', '.join(result.currencies)}[/]: only USD rows are reconciled")
    if result.tagged_rows == 0:
        console.print(f"  [yellow]no row is tagged env={name}[/]: nothing of this bill is attributed to the environment. "
                      "The stacks tag every pool with env and pool; enable them as cost allocation tags (AWS) "
                      "or labels in the export (GCP, Azure).", soft_wrap=True)
    _render_reconciliation(rows)


def _render_reconciliation(rows: list[ReconcileRow]) -> None:
    if not rows:
        return
    table = Table(title="Ledger vs billed, per provider", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("provider", "days", "ledger $", "billed $", "difference $", "ok", "over", "under", "unbilled", "unplanned"):
        table.add_column(column, justify="left" if column == "provider" else "right")
    for provider in sorted({r.provider for r in rows}):
        mine = [r for r in rows if r.provider == provider]
        count = {s: sum(r.status == s for r in mine) for s in ("ok", "over", "under", "unbilled", "unplanned")}
        ledger, billed = sum(r.ledger_usd for r in mine), sum(r.billed_usd or 0.0 for r in mine)
        table.add_row(provider, str(len(mine)), f"{ledger:,.2f}", f"{billed:,.2f}", f"{billed - ledger:,.2f}", *map(str, count.values()))
    console.print(table)


@app.command("export")
def export(
    env: EnvOption = None,
    spec: SpecOption = None,
    export_format: Annotated[ExportFormat, typer.Option("--format", "-f", help="Row shape: FOCUS 1.0 (what FinOps tools load).")] = ExportFormat.focus,
    out: Annotated[Path | None, typer.Option(help="File to write (.csv, .csv.gz or .parquet); default: CSV on stdout.", dir_okay=False)] = None,
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """Write the ledger as FOCUS rows: one per hour, pool and model, tagged env/pool/model like the stacks."""
    from orchestrator.billing import export_focus
    from orchestrator.ledger import refresh_entries

    _path, _fleet, name, store = open_spend(env, spec)
    refresh_entries(store, name, dt.datetime.now(dt.UTC))
    start = since.replace(tzinfo=dt.UTC) if since else None
    end = until.replace(tzinfo=dt.UTC) if until else None
    if out is not None:
        count = export_focus(store, name, out, start, end)
        errors.print(f"[green]✓[/] wrote {count:,} {export_format.value.upper()} rows of {name} to {out}", highlight=False)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            staged = Path(scratch) / "ledger.csv"
            export_focus(store, name, staged, start, end)
            with staged.open() as handle:
                shutil.copyfileobj(handle, sys.stdout)
    store.close()


@app.command("report")
def report(
    env: EnvOption = None,
    spec: SpecOption = None,
    output: FormatOption = OutputFormat.table,
    html: Annotated[Path | None, typer.Option(help="Also write the dashboard page as one static HTML file to share.", dir_okay=False)] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    days: DaysOption = None,
) -> None:
    """Spend over a window: by provider, $/1M tokens by model, capacity shares, savings, planned vs billed."""
    from orchestrator.ledger import spend_summary

    settings = load_settings()
    _path, _fleet, name, store = open_spend(env, spec)
    window = window_of(since, until, days, settings)
    summary = spend_summary(store, name, window, dt.datetime.now(dt.UTC), settings.billing_tolerance_ratio)
    store.close()
    if html is not None:
        from orchestrator.dashboard import render_page

        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_page(summary), encoding="utf-8")
        errors.print(f"[green]✓[/] wrote the spend report of {name} to {html}", highlight=False)
    if output is OutputFormat.json:
        print_json(summary.model_dump(mode="json"))
        return
    render_summary(summary)


def render_summary(s: SpendSummary) -> None:
    """The summary as tables: totals, per provider, per model, capacity and savings."""
    tokens = s.prompt_tokens + s.generation_tokens
    per_million = "—" if s.usd_per_million_tokens is None else f"${s.usd_per_million_tokens:,.2f}"
    console.print(f"[bold]{s.environment}[/] {s.start:%Y-%m-%d %H:%M} – {s.end:%Y-%m-%d %H:%M} UTC: "
                  f"[bold green]${s.cost_usd:,.2f}[/], {tokens:,} tokens ({per_million} per 1M), "
                  f"running now ${s.cost_per_hour_now:,.2f}/h", highlight=False, soft_wrap=True)
    providers = Table(title="By provider", box=box.SIMPLE_HEAD, header_style="bold")
    for column in ("provider", "ledger $", "billed $ (env tag)", "billed $ (untagged)"):
        providers.add_column(column, justify="left" if column == "provider" else "right")
    spent: dict[str, float] = {}
    for point in s.over_time:
        spent[point.provider] = spent.get(point.provider, 0.0) + point.cost_usd
    billed = {b.provider: b for b in s.billed}
    for provider in sorted(spent.keys() | billed.keys()):
        b = billed.get(provider)
        providers.add_row(provider, f"{spent.get(provider, 0.0):,.2f}", f"{b.billed_usd:,.2f}" if b else "—",
                          f"{b.untagged_usd:,.2f}" if b else "—")
    console.print(providers)
    if s.per_million_tokens:
        models = Table(title="$ per 1M tokens", box=box.SIMPLE_HEAD, header_style="bold")
        for column in ("model", "provider", "cost $", "tokens", "$ / 1M"):
            models.add_column(column, justify="left" if column in ("model", "provider") else "right")
        for t in s.per_million_tokens:
            models.add_row(t.model, t.provider, f"{t.cost_usd:,.2f}", f"{t.prompt_tokens + t.generation_tokens:,}",
                           "—" if t.usd_per_million_tokens is None else f"{t.usd_per_million_tokens:,.2f}")
        console.print(models)
    if s.capacity:
        console.print("  capacity (cost share): " + "  ".join(f"{c.capacity} {c.cost_share:.0%}" for c in s.capacity))
    if s.savings and s.savings.baseline_cost_per_hour:
        console.print(f"  against one cloud on-demand (${s.savings.baseline_cost_per_hour:,.2f}/h): now "
                      f"${s.savings.current_cost_per_hour:,.2f}/h, ${s.savings.saved_usd:,.2f} saved over the window")
