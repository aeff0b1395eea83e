"""Read a fleet spec file into a `FleetSpec`, or fail with every problem located.

A problem names the file, the line, the path inside the document (`pools[2].max_nodes`),
what is wrong and what is allowed. Nothing here writes anything.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import InputError, SpecError, SpecIssue
from orchestrator.spec.checks import check_spec, did_you_mean
from orchestrator.spec.models import FleetSpec

Loc = tuple[str | int, ...]
# Pydantic tags union members in error locations; they are not part of the document path.
_UNION_TAGS = {"str", "Coordinates"}


def format_path(loc: Loc) -> str:
    """('pools', 2, 'max_nodes') -> 'pools[2].max_nodes'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_map(node: yaml.Node, loc: Loc = (), lines: dict[Loc, int] | None = None) -> dict[Loc, int]:
    """1-based line of every mapping key and sequence item, keyed by document path."""
    lines = {} if lines is None else lines
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*loc, key.value)
            lines[child] = key.start_mark.line + 1
            _line_map(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*loc, index), lines)
    return lines


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
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(file, [SpecIssue("", f"not valid YAML: {problem}", mark.line + 1 if mark else None)]) from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise SpecError(file, [SpecIssue("", f"a fleet spec is a mapping with pools, models and demand; got {got}", 1)])
    lines = _line_map(node)
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
    return _line_map(yaml.compose(text, Loader=yaml.SafeLoader))


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
    """Load and validate a spec file; its environment name defaults to the file's stem."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file. To fix: pass an existing spec with --spec, or --env NAME for environments/NAME.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the spec ({exc}). To fix: check the file's permissions and that it is UTF-8 YAML") from None
    spec = parse_spec(text, str(path))
    if spec.environment is None:
        spec = spec.model_copy(update={"environment": path.stem})
    return spec
