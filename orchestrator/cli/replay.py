"""`orchestrator replay`: replay a request trace against an environment's gateway and report SLO attainment."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.cli.common import EnvOption, FormatOption, OutputFormat, SpecOption, console, errors, print_json
from orchestrator.errors import InputError

if TYPE_CHECKING:
    from orchestrator.replay import ReplayReport

TraceArg = Annotated[Path, typer.Option("--trace", help="Request trace: Azure LLM CSV, Mooncake JSONL, or plain JSONL "
                                        "({timestamp, input_tokens, output_tokens, model?, region?}).", dir_okay=False)]


def replay(
    trace: TraceArg,
    env: EnvOption = None,
    spec: SpecOption = None,
    window_s: Annotated[float | None, typer.Option("--window-s", help="Replay this many seconds of the trace (the "
                                                   "busiest ones unless --start-s; default: the whole trace).")] = None,
    start_s: Annotated[float | None, typer.Option("--start-s", help="Start of the window, seconds from the trace's first request.")] = None,
    speed: Annotated[float, typer.Option("--speed", help="Time runs this many times faster than in the trace.")] = 1.0,
    scale: Annotated[float, typer.Option("--scale", help="Multiply the traffic: keep each request floor(x) times and "
                                         "once more with probability frac(x) (seeded).")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --scale's sampling.")] = 0,
    model: Annotated[str | None, typer.Option("--model", help="Model of requests the trace names none for (default: the spec's only model).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="User region of requests the trace names none for.")] = None,
    max_requests: Annotated[int | None, typer.Option("--max-requests", min=1, help="Send at most this many (the first).")] = None,
    gateway_url: Annotated[str | None, typer.Option("--gateway-url", help="Replay against this OpenAI-compatible URL "
                                                    "instead of the environment's gateway.")] = None,
    store: Annotated[bool, typer.Option(help="Keep the report in the state database.")] = True,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Replay a trace against the environment's gateway with its real arrival times; report SLO attainment.

    Each request is sent at its trace time (divided by --speed) with a prompt of exactly its input
    tokens (the served model's tokenizer) and exactly its output tokens generated (ignore_eos), by
    vLLM's serving benchmark. Reports, per model, the share of requests within the SLO, p50/p95
    TTFT and TPOT and errors, beside the latest plan's promise. Lengths beyond a model's
    max_model_len are clipped, and counted. See docs/replay.md before replaying at production rates.
    """
    from orchestrator.cli.serve import _observe, _open, _state
    from orchestrator.gateway import gateway_api_key
    from orchestrator.plan_store import latest_placement
    from orchestrator.profiling.runner import _tokenizer
    from orchestrator.replay import build_report, build_schedule, run_replay
    from orchestrator.replay.tables import ReplayRun
    from orchestrator.settings import load_settings

    settings = load_settings()
    _path, fleet, name = _open(env, spec)
    schedule = build_schedule(trace, fleet, model=model, region=region, window_s=window_s, start_s=start_s,
                              speed=speed, scale=scale, seed=seed, max_requests=max_requests)
    database = _state(fleet, name, settings)
    if gateway_url is None:
        state = _observe(fleet, name, settings, database)
        if state.gateway is None or not state.gateway.healthy:
            raise InputError(f"{name} has no healthy gateway to replay against. To fix: orchestrator up --env {name}, "
                             "or pass --gateway-url")
        gateway_url = state.gateway.url
    key = gateway_api_key(settings, name).value.get_secret_value()
    tokenizers = {m.name: _tokenizer(m, settings) for m in fleet.models}
    started = dt.datetime.now(dt.UTC)
    with Progress(TextColumn("replaying {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=errors, transient=output is OutputFormat.json) as bar:
        task = bar.add_task(f"{Path(trace).name} ({schedule.duration_s:.0f} s)", total=len(schedule.requests))
        results = run_replay(schedule, gateway_url, key, tokenizers,
                             progress=lambda done, total: bar.update(task, completed=done))
        bar.update(task, completed=len(schedule.requests))
    report = build_report(fleet, name, gateway_url, schedule, results, latest_placement(settings, name))
    if store:
        with database[1].session() as session:
            session.add(ReplayRun(environment=name, started_at=started, trace=str(trace), speed=speed, scale=scale,
                                  requests=report.requests, errors=report.errors,
                                  all_met=all(m.meets_slo for m in report.models),
                                  report_json=json.dumps(report.to_json())))
    if output is OutputFormat.json:
        print_json(report.to_json())
        return
    render(report)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def render(report: ReplayReport) -> None:
    console.print(f"[bold]{report.environment}[/]: replayed {report.requests} requests of {report.trace} "
                  f"({report.window_start_s:g}-{report.window_end_s:g} s of the trace, speed {report.speed:g}x, "
                  f"scale {report.scale:g}x, {report.duration_s:.0f} s) against {report.gateway_url}")
    if report.clipped:
        console.print(f"[yellow]clipped[/] {report.clipped} request(s) to the model's max_model_len "
                      f"({', '.join(f'{m}: {n}' for m, n in report.max_model_len.items())}): the measured requests "
                      "are shorter than the trace's")
    if report.length_mismatches:
        console.print(f"[yellow]{report.length_mismatches} answered request(s) served other token counts than asked[/]")
    table = Table(title=f"Measured against each model's SLO, per {report.scope} (the gateway does not say which pool "
                        "answered)", header_style="bold")
    for column in ("model", "region", "requests", "errors", "within SLO", "TTFT ms p50/p95 (SLO)",
                   "TPOT ms p50/p95 (SLO)", "meets", "req/s offered", "plan: req/s planned/capacity"):
        table.add_column(column, justify="left" if column in ("model", "region") else "right")
    for m in [*report.models, *report.regions]:
        plan = m.plan
        promise = (f"{plan.planned_rps:.2f}/{plan.capacity_rps:.2f} ({plan.replicas} repl., {plan.capacity_source})"
                   if plan else ("-" if m.region else "no plan stored"))
        table.add_row(m.model, m.region or "all", str(m.requests), str(m.errors), f"{m.attainment:.1%}",
                      f"{_ms(m.ttft_p50_ms)}/{_ms(m.ttft_p95_ms)} ({m.slo_ttft_p95_ms:g})",
                      f"{_ms(m.tpot_p50_ms)}/{_ms(m.tpot_p95_ms)} ({m.slo_tpot_p95_ms:g})",
                      "[green]yes[/]" if m.meets_slo else "[red]no[/]", f"{m.offered_rps:.2f}", promise)
    console.print(table)
