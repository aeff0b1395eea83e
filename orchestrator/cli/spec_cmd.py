"""`orchestrator spec ...`: JSON Schemas of the fleet spec (for editors and CI linters) and of the
documents the commands write for programs (placement, move, status, replay report; docs/contracts.md)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import errors
from orchestrator.contracts import CONTRACTS

app = typer.Typer(help="The fleet spec format, and the contracts of what the commands print for programs.", no_args_is_help=True)

Contract = enum.Enum("Contract", {name.replace("-", "_"): name for name in CONTRACTS}, type=str)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.", dir_okay=False)] = None,
    contract: Annotated[Contract, typer.Option("--contract", help="fleet-spec (spec files), placement (plan --format json), "
                                               "move (rebalance), status, or replay-report.")] = Contract.fleet_spec,
) -> None:
    """Print (or write) the JSON Schema of fleet spec files (default) or of another contract.

    Point your editor's YAML language server at the spec's, e.g. a first line
    `# yaml-language-server: $schema=../docs/fleet-spec.schema.json`; every contract's schema is
    in docs/ (docs/contracts.md), written by `python -m orchestrator.contracts`.
    """
    text = CONTRACTS[contract.value].text()
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    errors.print(f"wrote {out}")
