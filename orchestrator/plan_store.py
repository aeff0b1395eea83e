"""Placements on disk: every plan an environment made, and which one is the latest.

`policy check`, `rebalance` and reviewers read `<state dir>/plans/latest.json`; the
timestamped copies beside it are the history. Writes are atomic.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from orchestrator.errors import InputError
from orchestrator.planner.placement import Placement
from orchestrator.settings import Settings

LATEST = "latest.json"


def plans_dir(settings: Settings, environment: str) -> Path:
    return settings.state_dir(environment) / "plans"


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_placement(settings: Settings, placement: Placement) -> Path:
    """Store a placement as the environment's latest plan (and a timestamped copy); returns the copy's path."""
    directory = plans_dir(settings, placement.environment)
    directory.mkdir(parents=True, exist_ok=True)
    text = placement.model_dump_json(indent=2)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    copy = directory / f"plan-{stamp}.json"
    _write_atomic(copy, text)
    _write_atomic(directory / LATEST, text)
    return copy


def read_placement(path: Path) -> Placement:
    """A placement JSON file (the placement contract), with a clear error if it is not one."""
    try:
        return Placement.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such placement file. To fix: run `orchestrator plan` first or pass an existing file") from None
    except ValidationError as exc:
        raise InputError(f"{path}: not a placement ({_problems(exc)}). To fix: pass the JSON `orchestrator plan --format json` writes") from None
    except ValueError as exc:
        raise InputError(f"{path}: not a placement ({str(exc).splitlines()[0]}). To fix: pass the JSON `orchestrator plan --format json` writes") from None


def _problems(exc: ValidationError, most: int = 3) -> str:
    """The first few problems, each as `path.in.document: what is wrong`."""
    errors = exc.errors()
    shown = [f"{'.'.join(str(part) for part in e['loc']) or '(top)'}: {e['msg']}" for e in errors[:most]]
    more = f"; and {len(errors) - most} more" if len(errors) > most else ""
    return "; ".join(shown) + more


def latest_placement(settings: Settings, environment: str) -> Placement | None:
    """The environment's latest stored plan, or None if it has never been planned."""
    path = plans_dir(settings, environment) / LATEST
    return read_placement(path) if path.exists() else None
