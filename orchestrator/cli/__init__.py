"""The `orchestrator` command: thin shells that parse, call one function, and render.

Exit codes: 0 ok, 1 failure, 2 bad input (errors print without a traceback).
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from orchestrator.cli import catalog, dashboard, plan, policy, rebalance, replay, serve, spec_cmd, spend, validate
from orchestrator.cli.common import errors
from orchestrator.errors import GpufleetError, InputError

app = typer.Typer(
    name="orchestrator",
    help="gpufleet: place LLM replicas across on-prem, AWS, GCP and Azure GPU pools by cost and latency.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command(name="validate")(validate.validate)
app.command(name="plan")(plan.plan)
app.command(name="rebalance")(rebalance.rebalance)
app.command(name="dashboard")(dashboard.dashboard)
app.command(name="up")(serve.up)
app.command(name="down")(serve.down)
app.command(name="status")(serve.status)
app.command(name="profile")(serve.profile)
app.command(name="replay")(replay.replay)
app.add_typer(spend.app, name="spend")
app.add_typer(catalog.app, name="catalog")
app.add_typer(spec_cmd.app, name="spec")
app.add_typer(policy.app, name="policy")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn gpufleet's errors into messages and exit codes."""
    try:
        app(args=argv)
    except InputError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except GpufleetError as exc:
        errors.print(f"[red]failed:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
