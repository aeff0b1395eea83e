"""What every command shares: choosing the spec, the output format, and printing."""

from __future__ import annotations

import enum
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions

from orchestrator.errors import GpufleetError, InputError
from orchestrator.settings import load_settings
from orchestrator.spec.checks import did_you_mean
from orchestrator.spec.models import NAME_PATTERN

DEFAULT_ENVIRONMENT = "local"

PIPE_WIDTH = 4096
"""Columns of stdout when it is not a terminal (a file, a pipe, a pager) and COLUMNS is unset."""


class StdoutConsole(Console):
    """Rich on stdout: as wide as the terminal on a terminal; elsewhere (a file, `| less`, `| grep`) as wide
    as the tables need (PIPE_WIDTH), so their cells are never cut to `aws-u…` at 80 columns. COLUMNS wins."""

    @property
    def size(self) -> ConsoleDimensions:
        if self._width is None and not self.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
            return ConsoleDimensions(PIPE_WIDTH, super().size.height)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


console = StdoutConsole()
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
    if not re.fullmatch(NAME_PATTERN, name):
        raise InputError(f"--env '{name}' is not an environment name; allowed: lower-case letters, digits, '.', '_' "
                         "and '-', starting and ending with a letter or digit. To fix: pass --spec PATH for a file elsewhere")
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
    """Machine output: JSON alone on stdout, and valid JSON (no NaN or Infinity: RFC 8259 has neither).

    Inputs are finite and bounded where they are read, so a non-finite number here is a bug; it
    fails the command (exit 1) rather than print what a JSON reader rejects."""
    try:
        text = json.dumps(payload, indent=2, default=str, allow_nan=False)
    except ValueError as exc:
        raise GpufleetError(f"the JSON output would hold a number that is not finite ({exc}); nothing was printed. "
                            "To fix: report this as a bug, with the command and spec") from None
    typer.echo(text)


def wants_json(argv: list[str]) -> bool:
    """Whether the command line asks for `--format json` (`--format json`, `--format=json`, `-f json`, `-fjson`)."""
    for index, arg in enumerate(argv):
        if arg == "--":
            return False
        if arg in ("--format", "-f") and index + 1 < len(argv) and argv[index + 1] == "json":
            return True
        if arg in ("--format=json", "-fjson", "-f=json"):
            return True
    return False


def error_json(kind: str, exit_code: int, message: str, error: Exception | None = None) -> dict[str, Any]:
    """An error as the JSON object `--format json` prints on stdout: `{"error": {kind, exit_code, message[, issues]}}`.

    kind: `input` (exit 2: bad input), `usage` (exit 2: a bad option or argument), `failure` (exit 1).
    A spec's problems are listed one by one under `issues` ({file, line, path, message}).
    """
    body: dict[str, Any] = {"kind": kind, "exit_code": exit_code, "message": message}
    issues = getattr(error, "issues", None)
    if issues is not None:
        body["issues"] = [{"file": getattr(error, "file", None), "line": i.line, "path": i.path, "message": i.message} for i in issues]
    return {"error": body}
