"""`orchestrator up | down | status | profile`: the local fleet, end to end.

`up` is the interim way to run a placement until `rebalance` lands: it builds the tiny model
when the spec needs it, plans, brings the environment's local pools to the planned replica
counts behind the gateway, and sends a few requests through it. `down` drains and stops
everything; `status` reports what answers now (from any process); `profile` measures a
replica's capacity with vLLM's serving benchmark for the planner to prefer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.cli.catalog import load_catalog
from orchestrator.cli.common import (
    EnvOption, FormatOption, OutputFormat, SpecOption, console, errors, print_json, spec_path,
)
from orchestrator.errors import InputError
from orchestrator.settings import load_settings

if TYPE_CHECKING:
    from orchestrator.gateway.demo import DemoAnswer
    from orchestrator.planner import Placement
    from orchestrator.providers.base import FleetState
    from orchestrator.providers.local import LocalProvider
    from orchestrator.spec import FleetSpec

DOWN_MARGIN_S = 60.0


def _open(env: str | None, spec: Path | None) -> tuple[Path, FleetSpec, str, LocalProvider]:
    from orchestrator.providers.local.environment import open_local_provider
    from orchestrator.spec import load_spec

    path = spec_path(env, spec)
    fleet = load_spec(path)
    name = fleet.environment or path.stem
    return path, fleet, name, open_local_provider(fleet, name, load_settings())


def up(
    env: EnvOption = None,
    spec: SpecOption = None,
    output: FormatOption = OutputFormat.table,
    demo: Annotated[bool, typer.Option(help="Send a few requests through the gateway once the replicas are ready.")] = True,
) -> None:
    """Run the environment's local pools at the planner's replica counts, behind the gateway.

    Builds the tiny test model if the spec names it and it is absent, plans, starts CPU vLLM
    replicas (a Rich progress bar while they load), then sends a few chat requests through
    the gateway and shows which replica answered, tokens, latency and cost. Safe to repeat.
    """
    from orchestrator.gateway import gateway_api_key
    from orchestrator.inputs import load_inputs
    from orchestrator.planner import plan_fleet
    from orchestrator.providers.local.environment import apply_steps, build_missing_tiny_models, placement_steps

    settings = load_settings()
    path, fleet, name, provider = _open(env, spec)
    for built in build_missing_tiny_models(fleet, settings):
        errors.print(f"built the tiny random-weight model at {built}")
    fleet, inputs = load_inputs(path, load_catalog(), settings.profiles_dir)
    placement = plan_fleet(fleet, inputs)
    key = gateway_api_key(settings, name)
    if key.created:
        errors.print(f"[bold]Gateway API key (shown once; kept in {key.source}, mode 0600):[/] "
                     f"{key.value.get_secret_value()}", highlight=False)
    steps = placement_steps(fleet, placement)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=errors, transient=output is OutputFormat.json) as progress:
        bars = {(s.model, s.pool): progress.add_task(f"{s.model}@{s.pool} replicas ready", total=s.count)
                for s in steps if s.kind == "scale_up"}

        def show(state: FleetState) -> None:
            for (model, pool), bar in bars.items():
                progress.update(bar, completed=sum(r.healthy for r in state.replicas if (r.model, r.pool) == (model, pool)))

        state = apply_steps(provider, steps, settings.replica_ready_timeout_s, show)
        show(state)
    answers = _demo(placement, state, key.value.get_secret_value()) if demo and state.gateway else []
    if output is OutputFormat.json:
        print_json({**status_report(fleet, name, state), "answers": [vars(a) for a in answers]})
        return
    render_status(fleet, name, state)
    if answers:
        _render_answers(answers)


def _demo(placement: Placement, state: FleetState, api_key: str) -> list[DemoAnswer]:
    from orchestrator.gateway.demo import ask_through_gateway

    pools = {p.pool: p for p in placement.pools}
    running = [r for r in placement.replicas if r.count > 0]
    if not running:
        return []
    model, pool = running[0].model, pools[running[0].pool]
    gpus = next((c.gpus_per_replica for c in placement.capacity if (c.model, c.pool) == (model, pool.pool)), 1)
    replicas = [r for r in state.replicas if (r.model, r.pool) == (model, pool.pool) and r.healthy]
    return ask_through_gateway(state.gateway.url, api_key, model, replicas,
                               pool.cost_per_node_hour / pool.gpus_per_node * gpus)


def _render_answers(answers: list[DemoAnswer]) -> None:
    table = Table(title="Requests through the gateway (random weights: the text is gibberish)", header_style="bold")
    for column in ("prompt", "answered by (pid)", "tokens in/out", "seconds", "cost USD"):
        table.add_column(column, justify="left" if column in ("prompt", "answered by (pid)") else "right",
                         no_wrap=column != "prompt")
    for a in answers:
        where = f"{a.replica_url.removeprefix('http://')} ({a.pid})" if a.replica_url else "?"
        table.add_row(a.prompt, where, f"{a.prompt_tokens}/{a.completion_tokens}", f"{a.seconds:.2f}",
                      f"{a.cost_usd:.2e}")
    console.print(table)


def down(env: EnvOption = None, spec: SpecOption = None) -> None:
    """Stop the environment's local replicas (each leaves the gateway, then drains) and its gateway."""
    from orchestrator.providers.local.environment import release_all

    settings = load_settings()
    _path, _fleet, name, provider = _open(env, spec)
    with errors.status(f"draining and stopping {name}…"):
        release_all(provider, settings.replica_drain_timeout_s + DOWN_MARGIN_S)
    errors.print(f"[green]✓[/] {name}: replicas and gateway stopped")


def status(env: EnvOption = None, spec: SpecOption = None, output: FormatOption = OutputFormat.table) -> None:
    """What runs now: gateway, pools, replicas (probed), and drift from the planned counts.

    The gateway's API key is never shown.
    """
    from orchestrator.ledger import collect_tokens, open_ledger

    _path, fleet, name, provider = _open(env, spec)
    state = provider.observe()
    collect_tokens(open_ledger(load_settings(), name, fleet.state.url), name)  # tokens served since the last look, for the ledger
    if output is OutputFormat.json:
        print_json(status_report(fleet, name, state))
        return
    render_status(fleet, name, state)


def status_report(fleet: FleetSpec, name: str, state: FleetState) -> dict:
    """The status contract (DESIGN.md): gateway, pools, replicas, cost and drift."""
    costs = {p.name: p.cost_per_hour or 0.0 for p in fleet.pools}
    drift = []
    for key, planned in sorted(state.planned.items()):
        model, pool = key.split("@", 1)
        mine = [r for r in state.replicas if (r.model, r.pool) == (model, pool)]
        if len(mine) != planned or not all(r.healthy for r in mine):
            drift.append({"model": model, "pool": pool, "planned": planned, "running": len(mine),
                          "healthy": sum(r.healthy for r in mine)})
    return {
        "environment": name,
        "cost_per_hour": round(sum(p.nodes * costs.get(p.pool, 0.0) for p in state.pools), 6),
        "gateway": {"url": state.gateway.url, "healthy": state.gateway.healthy} if state.gateway else None,
        "pools": [p.model_dump() for p in state.pools],
        "replicas": [r.model_dump(include={"model", "pool", "url", "healthy", "pid", "restarts"}) for r in state.replicas],
        "drift": drift,
    }


def render_status(fleet: FleetSpec, name: str, state: FleetState) -> None:
    report = status_report(fleet, name, state)
    gateway = report["gateway"]
    console.print(f"[bold]{name}[/]: ${report['cost_per_hour']:.3f}/h; gateway "
                  + (f"{gateway['url']} ({'[green]healthy[/]' if gateway['healthy'] else '[red]down[/]'})" if gateway else "not running"))
    table = Table(header_style="bold")
    for column in ("model", "pool", "url", "pid", "restarts", "healthy"):
        table.add_column(column)
    for r in report["replicas"]:
        table.add_row(r["model"], r["pool"], r["url"], str(r["pid"] or "-"), str(r["restarts"]),
                      "[green]yes[/]" if r["healthy"] else "[red]no[/]")
    console.print(table)
    for d in report["drift"]:
        console.print(f"[yellow]drift[/] {d['model']}@{d['pool']}: {d['healthy']} healthy of {d['running']} running, "
                      f"{d['planned']} planned")


def profile(
    model: Annotated[str, typer.Option(help="Model name in the spec.")],
    pool: Annotated[str, typer.Option(help="Pool whose replica is measured (it must be up).")],
    env: EnvOption = None,
    spec: SpecOption = None,
    rates: Annotated[str | None, typer.Option(help="Request rates to try, req/s, comma-separated, rising (default: 0.5, 1, 2, 4 ... until the SLO breaks).")] = None,
    seconds_per_rate: Annotated[float, typer.Option("--seconds-per-rate", help="Load duration at each rate.", min=1.0)] = 20.0,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Measure one replica's capacity with vLLM's serving benchmark at rising load.

    Writes the highest request rate meeting the model's TTFT and TPOT p95 SLOs at the
    demand's token mix to the profiles directory; the planner prefers it over its estimate.
    """
    from orchestrator.gateway import gateway_api_key
    from orchestrator.profiling import measure_capacity, parse_rates

    settings = load_settings()
    _path, fleet, name, provider = _open(env, spec)
    replicas = [r for r in provider.observe().replicas if (r.model, r.pool) == (model, pool) and r.healthy]
    if not replicas:
        raise InputError(f"no healthy replica of {model} in pool {pool} of {name}. To fix: orchestrator up --env {name}")
    with errors.status(f"profiling {model}@{pool} with vLLM's serving benchmark…"):
        result = measure_capacity(fleet, model, pool, replicas[0].url, gateway_api_key(settings, name).value,
                                  settings, parse_rates(rates), seconds_per_rate)
    if output is OutputFormat.json:
        print_json({"profile": result.profile.model_dump(mode="json"), "path": str(result.path),
                    "steps": [vars(s) for s in result.steps]})
        return
    table = Table(title=f"{model}@{pool}: vLLM serving benchmark at rising load", header_style="bold")
    for column in ("offered req/s", "achieved req/s", "TTFT p95 ms", "TPOT p95 ms", "within SLO"):
        table.add_column(column, justify="right")
    for s in result.steps:
        table.add_row(f"{s.rate:g}", f"{s.achieved_rps:.2f}", f"{s.ttft_p95_ms:.0f}", f"{s.tpot_p95_ms:.1f}",
                      "[green]yes[/]" if s.within_slo else "[red]no[/]")
    console.print(table)
    console.print(f"[green]✓[/] capacity {result.profile.rps:.2f} req/s per replica → {result.path}")
