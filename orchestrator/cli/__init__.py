"""The `orchestrator` command: thin shells that parse, call one function, and render.

Exit codes: 0 ok, 1 failure, 2 bad input (errors print without a traceback). With
`--format json`, an error is also a JSON object on stdout (`common.error_json`), so a
program reading stdout always gets JSON. `--version`; shell completion with
`--install-completion` / `--show-completion`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli import (
    catalog, dashboard, manifests, plan, policy, rebalance, replay, rollout, serve, spec_cmd, spend, validate,
)
from orchestrator import __version__
from orchestrator.cli.common import error_json, errors, print_json, wants_json
from orchestrator.errors import GpufleetError, InputError
from orchestrator.settings import keep_files_private

PROG = "orchestrator"

app = typer.Typer(
    name="orchestrator",
    help="gpufleet: place LLM replicas across on-prem, AWS, GCP and Azure GPU pools by cost and latency.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} (gpufleet) {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """gpufleet: place LLM replicas across on-prem, AWS, GCP and Azure GPU pools by cost and latency."""


app.command(name="validate")(validate.validate)
app.command(name="plan")(plan.plan)
app.command(name="rebalance")(rebalance.rebalance)
app.command(name="rollout")(rollout.rollout)
app.command(name="dashboard")(dashboard.dashboard)
app.command(name="up")(serve.up)
app.command(name="down")(serve.down)
app.command(name="status")(serve.status)
app.command(name="profile")(serve.profile)
app.command(name="replay")(replay.replay)
app.command(name="manifests")(manifests.manifests)
app.add_typer(spend.app, name="spend")
app.add_typer(catalog.app, name="catalog")
app.add_typer(spec_cmd.app, name="spec")
app.add_typer(policy.app, name="policy")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn gpufleet's errors into messages and exit codes
    (and, with `--format json`, into a JSON object on stdout as well)."""
    keep_files_private()
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = wants_json(args)
    try:
        if not as_json:
            app(args=args, prog_name=PROG)
            return
        code = app(args=args, prog_name=PROG, standalone_mode=False)  # usage errors raise here, to be shown as JSON
    except typer.Abort:
        errors.print("Aborted!")
        sys.exit(1)
    except typer.TyperException as exc:  # raised only without standalone mode: a bad option or argument (Click's usage errors)
        message, exit_code = exc.format_message(), getattr(exc, "exit_code", 2)
        print_json(error_json("usage", exit_code, message))
        errors.print(f"[red]error:[/] {escape(message)}", highlight=False)
        sys.exit(exit_code)
    except InputError as exc:
        _fail(as_json, "input", 2, exc)
    except GpufleetError as exc:
        _fail(as_json, "failure", 1, exc)
    if isinstance(code, int) and code:
        sys.exit(code)


def _fail(as_json: bool, kind: str, exit_code: int, exc: GpufleetError) -> None:
    if as_json:
        print_json(error_json(kind, exit_code, str(exc), exc))
    errors.print(f"[red]{'error' if exit_code == 2 else 'failed'}:[/] {escape(str(exc))}", highlight=False)
    sys.exit(exit_code)
