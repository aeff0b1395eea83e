"""`orchestrator spec ...`: JSON Schemas of the fleet spec (for editors and CI linters) and of the
placement contract `plan --format json` writes (for programs that read plans)."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import errors
from orchestrator.spec import FleetSpec

app = typer.Typer(help="The fleet spec format, and the placement contract's.", no_args_is_help=True)


class Contract(str, enum.Enum):
    fleet_spec = "fleet-spec"
    placement = "placement"


def fleet_spec_schema() -> dict:
    """JSON Schema of a fleet spec file (draft 2020-12, as pydantic writes it)."""
    schema = FleetSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gpufleet fleet spec"
    return schema


def placement_schema() -> dict:
    """JSON Schema of a placement (`plan --format json`, the stored plans), generated from the model the readers validate with."""
    from orchestrator.planner.placement import Placement

    schema = Placement.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gpufleet placement"
    return schema


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.", dir_okay=False)] = None,
    contract: Annotated[Contract, typer.Option("--contract", help="fleet-spec (spec files) or placement (plan --format json).")] = Contract.fleet_spec,
) -> None:
    """Print (or write) the JSON Schema of fleet spec files (default) or of placements.

    Point your editor's YAML language server at the spec's, e.g. a first line
    `# yaml-language-server: $schema=../docs/fleet-spec.schema.json`; the placement's is
    docs/placement.schema.json.
    """
    text = json.dumps(fleet_spec_schema() if contract is Contract.fleet_spec else placement_schema(), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    errors.print(f"wrote {out}")
