"""`orchestrator dashboard`: serve an environment's spend page and Prometheus metrics until interrupted."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.common import EnvOption, SpecOption, errors
from orchestrator.cli.spend import DaysOption, open_spend
from orchestrator.errors import InputError
from orchestrator.settings import load_settings


def dashboard(
    env: EnvOption = None,
    spec: SpecOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default GPUFLEET_DASHBOARD_HOST, 127.0.0.1); "
                                             "anything but loopback requires a token.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default GPUFLEET_DASHBOARD_PORT, 8765; 0: any free port).",
                                             min=0, max=65535)] = None,
    days: DaysOption = None,
    collect: Annotated[bool, typer.Option(help="Collect the replicas' token counters into the ledger while serving.")] = True,
) -> None:
    """Serve the dashboard: spend by provider over time, $/1M tokens, planned vs billed, capacity shares,
    savings against one cloud, utilization per pool; serving against the SLO (TTFT/TPOT p50/p95, queue,
    KV cache, request rate against the plan, replays) per replica and pool; Prometheus metrics at /metrics.

    The page is self-contained (charts drawn as SVG on the server, nothing loaded from elsewhere);
    `orchestrator spend report --html FILE` writes its spend part to a file.
    """
    from orchestrator.dashboard import Dashboard, DashboardServer, TokenCollector, dashboard_token
    from orchestrator.dashboard.serving import ServingMonitor
    from orchestrator.plan_store import latest_placement

    settings = load_settings()
    _path, _fleet, name, store = open_spend(env, spec)
    host = host or settings.dashboard_host
    port = settings.dashboard_port if port is None else port
    token, generated = dashboard_token(settings, host)
    serving = ServingMonitor(store, name, lambda: latest_placement(settings, name))
    app = Dashboard(store, name, days or settings.spend_window_days, settings.dashboard_refresh_s,
                    settings.billing_tolerance_ratio, token, serving=serving)
    try:
        server = DashboardServer((host, port), app)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}. "
                         "To fix: pass --port with a free port (0 picks one), or another --host") from None
    collector = TokenCollector(store, name, settings.spend_scrape_interval_s) if collect else None
    if generated:
        errors.print(f"[bold]dashboard token (shown once; set GPUFLEET_DASHBOARD_TOKEN to choose it):[/] {token}", highlight=False)
    link = server.url + (f"?token={token}" if generated else "")
    errors.print(f"[green]✓[/] spend dashboard of {name}: {link}  (metrics: {server.url}metrics; Ctrl-C stops)", highlight=False)
    if collector is not None:
        collector.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if collector is not None:
            collector.stop()
        server.server_close()
        serving.close()
        store.close()
