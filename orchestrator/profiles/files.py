"""Profile and fit files: rewritten while planners read them, and read for every estimate.

So each is written whole and swapped in (readers see the old file or the new one), and read once per
version of the file (inode, mtime, size): the planner asks for every (model, pool, size).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.errors import InputError

Model = TypeVar("Model", bound=BaseModel)


def write_atomically(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file and a rename, so readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_versioned(path: Path, model: type[Model], what: str, fix: str) -> Model | None:
    """The file at `path` as a `model`, or None when there is none; an InputError naming `what` it is and
    how to `fix` it when it does not parse."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _read(path, (stat.st_ino, stat.st_mtime_ns, stat.st_size), model, what, fix)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1024)
def _read(path: Path, version: tuple[int, int, int], model: type[BaseModel], what: str, fix: str) -> BaseModel:
    try:  # version: only in the cache key, so a rewritten file is read again
        return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise InputError(f"{what} {path} is unreadable: {exc}. To fix: {fix}") from exc
