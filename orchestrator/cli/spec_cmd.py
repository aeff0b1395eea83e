"""`orchestrator spec ...`: the fleet spec's JSON Schema, for editors and CI linters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import errors
from orchestrator.spec import FleetSpec

app = typer.Typer(help="The fleet spec format.", no_args_is_help=True)


def fleet_spec_schema() -> dict:
    """JSON Schema of a fleet spec file (draft 2020-12, as pydantic writes it)."""
    schema = FleetSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gpufleet fleet spec"
    return schema


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.", dir_okay=False)] = None,
) -> None:
    """Print (or write) the JSON Schema of fleet spec files.

    Point your editor's YAML language server at it, e.g. a first line
    `# yaml-language-server: $schema=../docs/fleet-spec.schema.json`.
    """
    text = json.dumps(fleet_spec_schema(), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    errors.print(f"wrote {out}")
