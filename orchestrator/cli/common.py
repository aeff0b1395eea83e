"""What every command shares: choosing the spec, the output format, and printing."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from orchestrator.errors import InputError
from orchestrator.settings import load_settings
from orchestrator.spec.checks import did_you_mean

DEFAULT_ENVIRONMENT = "local"

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages stay one line each, for grep and logs


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"


EnvOption = Annotated[str | None, typer.Option("--env", "-e", help="Environment name: environments/NAME.yaml (default: local).")]
SpecOption = Annotated[Path | None, typer.Option("--spec", help="Path to a fleet spec file (instead of --env).", dir_okay=False)]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="table for people, json for programs (stdout holds only the JSON).")]


def spec_path(env: str | None, spec: Path | None) -> Path:
    """The spec file chosen by --env or --spec (the local environment when neither is given)."""
    if env and spec:
        raise InputError("--env and --spec both given; pass one. To fix: drop one of them")
    if spec:
        return spec
    directory = load_settings().environments_dir
    name = env or DEFAULT_ENVIRONMENT
    path = directory / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in directory.glob("*.yaml"))
        raise InputError(
            f"no environment '{name}' (looked for {path}).{did_you_mean(name, known)} "
            f"Known environments: {', '.join(known) or 'none'}. "
            "To fix: pass --env with one of them, --spec PATH, or set GPUFLEET_ENVIRONMENTS_DIR"
        )
    return path


def print_json(payload: Any) -> None:
    """Machine output: JSON alone on stdout."""
    typer.echo(json.dumps(payload, indent=2, default=str))
