"""Read a fleet spec file into a `FleetSpec`, or fail with every problem located.

A problem names the file, the line, the path inside the document (`pools[2].max_nodes`),
what is wrong and what is allowed. Nothing here writes anything.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.errors import InputError, SpecError, SpecIssue
from orchestrator.spec.checks import check_spec, did_you_mean
from orchestrator.spec.models import NAME_PATTERN, FleetSpec
from orchestrator.spec.reader import Loc, format_path, parse_yaml, read_text

# Pydantic tags union members in error locations; they are not part of the document path.
_UNION_TAGS = {"str", "Coordinates"}


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    while loc not in lines and loc:
        loc = loc[:-1]
    return lines.get(loc)


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The spec model class a document path points into (to suggest its field names)."""
    current: Any = FleetSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = current.model_fields[part].annotation
        while typing.get_origin(current) in (list, typing.Union, types.UnionType):
            current = next((a for a in typing.get_args(current) if a is not type(None)), None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _issue_from_pydantic(error: Any, lines: dict[Loc, int]) -> SpecIssue:
    loc: Loc = tuple(p for p in error["loc"] if p not in _UNION_TAGS)
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        message = f"unknown key '{loc[-1]}'.{did_you_mean(str(loc[-1]), allowed)}"
        if allowed:
            message += f" Allowed keys: {', '.join(allowed)}"
    elif kind == "missing":
        message = "required field is missing"
    else:
        message = error["msg"]
        if not isinstance(value, (dict, list)):
            message += f" (got {value!r})"
    return SpecIssue(format_path(loc), message, _line_of(loc, lines))


def _issues_from_pydantic(exc: ValidationError, lines: dict[Loc, int]) -> list[SpecIssue]:
    """One issue per wrong field; a union's "not a string" is dropped when a member's field explains more."""
    issues = {}
    for error in exc.errors():
        issue = _issue_from_pydantic(error, lines)
        issues.setdefault((issue.path, issue.message), issue)
    paths = {issue.path for issue in issues.values()}
    return [i for i in issues.values() if not any(p.startswith(i.path + ".") for p in paths)]


def parse_spec(text: str, file: str) -> FleetSpec:
    """Validate YAML text as a fleet spec; `file` is only used in messages."""
    document = parse_yaml(text, file)
    data, lines = document.data, document.lines
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise SpecError(file, [SpecIssue("", f"a fleet spec is a mapping with pools, models and demand; got {got}", 1)])
    try:
        spec = FleetSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(file, _issues_from_pydantic(exc, lines)) from None
    issues = check_spec(spec)
    if issues:
        raise SpecError(file, locate(issues, lines), spec=spec)  # the spec goes along: later checks can still report on it
    return spec


def locate(issues: list[SpecIssue], lines: dict[Loc, int]) -> list[SpecIssue]:
    """The same issues with the line of the field each one names."""
    return [SpecIssue(i.path, i.message, i.line or _line_of(_parse_path(i.path), lines)) for i in issues]


def line_map(text: str) -> dict[Loc, int]:
    """Lines of every path in a YAML text (for issues found after loading)."""
    return parse_yaml(text, "<spec>").lines


def _parse_path(path: str) -> Loc:
    """'pools[2].max_nodes' -> ('pools', 2, 'max_nodes'), to find a check's line."""
    loc: list[str | int] = []
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            loc.append(int(part.strip("[]")))
        elif part:
            loc.append(part)
    return tuple(loc)


def load_spec(path: Path) -> FleetSpec:
    """Load and validate a spec file; its environment name defaults to the file's stem (when that is a name)."""
    if not path.exists():
        raise InputError(f"{path}: no such file. To fix: pass an existing spec with --spec, or --env NAME for environments/NAME.yaml")
    spec = parse_spec(read_text(path, "fleet spec"), str(path))
    if spec.environment is None:
        if not re.fullmatch(NAME_PATTERN, path.stem):
            raise SpecError(str(path), [SpecIssue("environment", f"required: the file name '{path.stem}' is not an environment "
                                                  "name; allowed: 1-63 lower-case letters, digits, '.', '_' and '-', starting "
                                                  "and ending with a letter or digit (set `environment:` or rename the file)", 1)])
        spec = spec.model_copy(update={"environment": path.stem})
    return spec
