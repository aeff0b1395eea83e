"""`orchestrator up | down | status | profile`: an environment's fleet, end to end.

`up` builds the tiny model when the spec needs it, runs `rebalance --yes` (the same journaled,
make-before-break move), and sends a few requests through the gateway. `down` drains and
stops every replica; `status` reports what answers now (from any process) and the drift
from the last applied plan; `profile` measures a replica's capacity with vLLM's serving
benchmark for the planner to prefer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.common import (
    EnvOption, FormatOption, OutputFormat, SpecOption, console, errors, print_json, spec_path,
)
from orchestrator.errors import InputError
from orchestrator.settings import Settings, load_settings

if TYPE_CHECKING:
    from orchestrator.gateway.demo import DemoAnswer
    from orchestrator.planner import Placement
    from orchestrator.profiles.fit import EfficiencyFit
    from orchestrator.providers.base import FleetState, Provider
    from orchestrator.spec import FleetSpec
    from orchestrator.status import RolloutStatus
    from orchestrator.state import StateStore

DOWN_MARGIN_S = 60.0


def _open(env: str | None, spec: Path | None) -> tuple[Path, FleetSpec, str]:
    from orchestrator.spec import load_spec

    path = spec_path(env, spec)
    fleet = load_spec(path)
    return path, fleet, fleet.environment or path.stem


def _state(fleet: FleetSpec, name: str, settings: Settings) -> tuple[str, StateStore]:
    """The environment's state database: its URL and one store for the whole command."""
    from orchestrator.ledger import open_ledger
    from orchestrator.state import state_url

    return state_url(settings, name, fleet.state.url), open_ledger(settings, name, fleet.state.url)


def _providers(fleet: FleetSpec, name: str, settings: Settings, state: tuple[str, StateStore]) -> dict[str, Provider]:
    from orchestrator.rebalance.run import providers_for

    url, store = state
    return providers_for(fleet, name, store, url, settings)


def _observe(fleet: FleetSpec, name: str, settings: Settings, state: tuple[str, StateStore]) -> FleetState:
    """What every provider of the environment sees now (probed)."""
    from orchestrator.rebalance.run import observe

    return observe(_providers(fleet, name, settings, state))


def up(
    env: EnvOption = None,
    spec: SpecOption = None,
    output: FormatOption = OutputFormat.table,
    demo: Annotated[bool, typer.Option(help="Send a few requests through the gateway once the replicas are ready.")] = True,
) -> None:
    """Bring the environment to the planner's placement, then ask the gateway a few questions.

    Builds the tiny test model if the spec names it and it is absent, then rebalances (as
    `rebalance --yes`: journaled, make-before-break; a progress bar while replicas load), then
    sends a few chat requests through the gateway and shows which replica answered, tokens,
    latency and cost. Safe to repeat.
    """
    from orchestrator.cli.rebalance import rebalance_once
    from orchestrator.gateway import gateway_api_key
    from orchestrator.planner import PlanOptions
    from orchestrator.providers.local.environment import build_missing_tiny_models
    from orchestrator.status import fleet_status

    settings = load_settings()
    path, fleet, name = _open(env, spec)
    for built in build_missing_tiny_models(fleet, settings):
        errors.print(f"built the tiny random-weight model at {built}")
    move, _run = rebalance_once(path, settings, PlanOptions(), decide=lambda move: bool(move.steps),
                                step_timeout_s=settings.replica_ready_timeout_s,
                                transient=output is OutputFormat.json)
    state = _observe(fleet, name, settings, _state(fleet, name, settings))
    key = gateway_api_key(settings, name).value.get_secret_value()
    answers = _demo(move.target, state, key) if demo and state.gateway else []
    if output is OutputFormat.json:
        print_json({**fleet_status(fleet, name, state, move.target).model_dump(mode="json"), "answers": [vars(a) for a in answers]})
        return
    render_status(fleet, name, state, move.target)
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


def down(env: EnvOption = None, spec: SpecOption = None, output: FormatOption = OutputFormat.table) -> None:
    """Stop the environment's replicas (each leaves the gateway, then drains) and its local gateway.

    Cloud node pools keep their size: shrink them with a rebalance to a plan without them, or the stacks.
    An unfinished rollout ends rolled back: neither version runs any more.
    """
    from orchestrator.providers.local.environment import release_all
    from orchestrator.rollout.journal import end_in_flight

    settings = load_settings()
    _path, fleet, name = _open(env, spec)
    database = _state(fleet, name, settings)
    with errors.status(f"draining and stopping {name}…"):
        for provider in {id(p): p for p in _providers(fleet, name, settings, database).values()}.values():
            release_all(provider, settings.replica_drain_timeout_s + DOWN_MARGIN_S)
    end_in_flight(database[1], name, "the environment was stopped (`orchestrator down`)")
    if output is OutputFormat.json:
        print_json({"environment": name, "stopped": True})
        return
    errors.print(f"[green]✓[/] {name}: replicas and gateway stopped")


def status(env: EnvOption = None, spec: SpecOption = None, output: FormatOption = OutputFormat.table) -> None:
    """What runs now: gateway, pools, replicas (probed), $/h, and drift from the last applied plan.

    The gateway's API key is never shown.
    """
    from orchestrator.ledger import collect_tokens
    from orchestrator.rebalance.journal import last_applied
    from orchestrator.rollout.journal import rollout_status
    from orchestrator.status import fleet_status

    settings = load_settings()
    _path, fleet, name = _open(env, spec)
    database = _state(fleet, name, settings)
    state = _observe(fleet, name, settings, database)
    _show_strays(fleet, name, settings, database)
    collect_tokens(database[1], name)  # tokens served since the last look, for the ledger
    applied = last_applied(database[1], name)  # drift is measured from the last applied run
    rollout = rollout_status(database[1], name)
    if output is OutputFormat.json:
        print_json(fleet_status(fleet, name, state, applied, rollout).model_dump(mode="json"))
        return
    render_status(fleet, name, state, applied, rollout)


def _show_strays(fleet: FleetSpec, name: str, settings: Settings, state: tuple[str, StateStore]) -> None:
    """On stderr (both formats): local processes of the environment that no running supervisor owns."""
    from orchestrator.providers.local import LocalProvider

    for provider in {id(p): p for p in _providers(fleet, name, settings, state).values()}.values():
        for stray in provider.stray_processes() if isinstance(provider, LocalProvider) else []:
            errors.print(f"[red]stray[/] pid {stray.pid}: {escape(stray.command)} — no supervisor owns it; "
                         f"`orchestrator down` stops it, `orchestrator up` replaces it", highlight=False)


def render_status(fleet: FleetSpec, name: str, state: FleetState, applied: Placement | None,
                  rollout: RolloutStatus | None = None) -> None:
    from orchestrator.status import NodeDrift, fleet_status

    report = fleet_status(fleet, name, state, applied, rollout)
    gateway = report.gateway
    console.print(f"[bold]{name}[/]: ${report.cost_per_hour:.3f}/h; gateway "
                  + (f"{gateway.url} ({'[green]healthy[/]' if gateway.healthy else '[red]down[/]'})" if gateway else "not running"))
    pools = Table(header_style="bold")
    for column in ("pool", "nodes", "healthy nodes", "requested"):
        pools.add_column(column, justify="left" if column == "pool" else "right")
    for p in report.pools:
        pools.add_row(p.pool, str(p.nodes), str(p.healthy_nodes), "-" if p.requested is None else str(p.requested))
    console.print(pools)
    table = Table(header_style="bold")
    for column in ("model", "version", "pool", "url", "pid", "restarts", "healthy"):
        table.add_column(column)
    for r in report.replicas:
        version = f"{r.version or '-'}{' (canary)' if r.canary else ''}"
        table.add_row(r.model, version, r.pool, r.url, str(r.pid or "-"), str(r.restarts),
                      "[green]yes[/]" if r.healthy else "[red]no[/]")
    console.print(table)
    for a in report.asleep:
        console.print(f"[cyan]asleep[/] {a.model}@{a.pool}: idle, its {a.replicas} replicas start on the next request")
    if report.rollout is not None:
        r = report.rollout
        console.print(f"[cyan]rollout[/] {r.model} {r.from_version} → {r.to_version}: step {r.step} of {r.steps}, "
                      f"{r.percent:g} % on {r.to_version} (since {r.started_at})")
    for d in report.drift:
        if isinstance(d, NodeDrift):
            console.print(f"[yellow]drift[/] pool {d.pool}: {d.running} nodes, {d.planned} planned")
        else:
            console.print(f"[yellow]drift[/] {d.model}@{d.pool}: {d.healthy} healthy of {d.running} running, {d.planned} planned")


def profile(
    model: Annotated[str, typer.Option(help="Model name in the spec.")],
    pool: Annotated[str, typer.Option(help="Pool whose replica is measured (it must be up).")],
    env: EnvOption = None,
    spec: SpecOption = None,
    rates: Annotated[str | None, typer.Option(help="Request rates to try, req/s, comma-separated, rising (default: 0.5, 1, 2, 4 ... until the SLO breaks).")] = None,
    seconds_per_rate: Annotated[float, typer.Option("--seconds-per-rate", help="Load duration at each rate.", min=1.0)] = 20.0,
    per_size: Annotated[bool, typer.Option("--per-size", help="Measure each size bucket of the model's demand "
                                           "(its size_mix) on its own; the planner prefers these per bucket.")] = False,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Measure one replica's capacity with vLLM's serving benchmark at rising load.

    Writes the highest request rate meeting the model's TTFT and TPOT p95 SLOs at the
    demand's token mix to the profiles directory; the planner prefers it over its estimate.
    With --per-size, one profile per size bucket of the demand's size_mix, each measured at
    that bucket's tokens: the planner's capacity for that bucket is then the measured one.
    """
    from orchestrator.gateway import gateway_api_key
    from orchestrator.profiling import measure_capacity, parse_rates
    from orchestrator.profiling.runner import size_buckets

    settings = load_settings()
    path, fleet, name = _open(env, spec)
    sizes = size_buckets(fleet, model) if per_size else [None]
    ladder = parse_rates(rates)
    replicas = [r for r in _observe(fleet, name, settings, _state(fleet, name, settings)).replicas
                if (r.model, r.pool) == (model, pool) and r.healthy]
    if not replicas:
        raise InputError(f"no healthy replica of {model} in pool {pool} of {name}. To fix: orchestrator up --env {name}")
    results = []
    for size in sizes:
        at = f" at in {size.input_tokens:g} / out {size.output_tokens:g} tokens" if size else ""
        with errors.status(f"profiling {model}@{pool}{at} with vLLM's serving benchmark…"):
            results.append(measure_capacity(fleet, model, pool, replicas[0].url, gateway_api_key(settings, name).value,
                                            settings, ladder, seconds_per_rate, mix=size))
    fit = None
    if per_size:
        from orchestrator.profiling.calibration import fit_and_save

        with errors.status(f"fitting the capacity model to {model}@{pool}'s measurements…"):
            fit = fit_and_save(fleet, model, results[0].profile.gpu, settings.profiles_dir, path.parent)
    if output is OutputFormat.json:
        payload = [{"profile": r.profile.model_dump(mode="json"), "path": str(r.path), "steps": [vars(s) for s in r.steps]}
                   for r in results]
        print_json({"profiles": payload, "fit": fit.model_dump(mode="json") if fit else None} if per_size else payload[0])
        return
    for result in results:
        mix = result.profile.mix
        table = Table(title=f"{model}@{pool}, in {mix.input_tokens:g} / out {mix.output_tokens:g} tokens: "
                      "vLLM serving benchmark at rising load", header_style="bold")
        for column in ("offered req/s", "achieved req/s", "TTFT p95 ms", "TPOT p95 ms", "within SLO"):
            table.add_column(column, justify="right")
        for s in result.steps:
            table.add_row(f"{s.rate:g}", f"{s.achieved_rps:.2f}", f"{s.ttft_p95_ms:.0f}", f"{s.tpot_p95_ms:.1f}",
                          "[green]yes[/]" if s.within_slo else "[red]no[/]")
        console.print(table)
        console.print(f"[green]✓[/] capacity {result.profile.rps:.2f} req/s per replica → {result.path}")
    if fit is not None:
        _render_fit(fit)


def _render_fit(fit: EfficiencyFit) -> None:
    """The fitted scales and, per measured size, measured vs estimated before and after the fit."""
    table = Table(title=f"{fit.model} on {fit.gpu}: the capacity model fitted to what was measured", header_style="bold")
    for column in ("in / out tokens", "measured req/s", "estimate before", "fitted"):
        table.add_column(column, justify="right")
    for p in fit.points:
        table.add_row(f"{p.input_tokens:g} / {p.output_tokens:g}", f"{p.measured_rps:.3g}", f"{p.estimated_rps:.3g}", f"{p.fitted_rps:.3g}")
    console.print(table)
    console.print(f"[green]✓[/] compute × {fit.compute_scale:.3g}, memory × {fit.memory_scale:.3g}; fit error "
                  f"{fit.error_before:.0%} → {fit.error_after:.0%} over {len(fit.points)} sizes. Other sizes, SLOs and "
                  "replica counts of this model and GPU are now estimated with the fit (source 'fitted').")
