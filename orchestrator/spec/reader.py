"""Read a YAML document that may be hostile: bounded, YAML 1.2, every problem located by line.

A fleet spec (and the `policies.data` inside it, and policy data files) is read here:

- only a regular file of at most `MAX_BYTES` (a FIFO, `/dev/zero` or a 50 MB file is refused
  before it is read);
- YAML 1.2 core schema (ruamel.yaml): `1:30` is a string, not 90; `yes`/`no`/`on`/`off` are
  strings, not booleans; `.inf` and `.nan` are floats the models then refuse;
- nesting at most `MAX_DEPTH` deep and at most `MAX_NODES` nodes with every alias expanded
  (the bound Kubernetes' YAML reader puts on "billion laughs"), counted on the parser's
  events before anything is built, so neither an alias bomb nor `a: &a [*a]` costs memory;
- a key given twice in one mapping is an error naming both lines (not "the last one wins").

Problems raise `SpecError` with one `SpecIssue` (line, what is wrong, what is allowed).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import InputError, SpecError, SpecIssue

MAX_BYTES = 256 << 10
"""Largest YAML file read, bytes (256 KiB; the hybrid example is 6 KiB, and a pure-Python parser reads ~150 KiB/s)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences (a spec needs under 10; the rest is room for policies.data)."""
MAX_NODES = 50_000
"""Most nodes a document may hold with every alias expanded (scalars, mappings and sequences; the hybrid example has 600)."""

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Document:
    """A YAML document read safely: its data and the 1-based line of every path in it."""

    data: Any
    lines: dict[Loc, int]


def format_path(loc: Loc) -> str:
    """('pools', 2, 'max_nodes') -> 'pools[2].max_nodes'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_text(path: Path, what: str = "file", max_bytes: int = MAX_BYTES) -> str:
    """A regular UTF-8 file's text, refusing devices, FIFOs, directories and files over `max_bytes` before reading."""
    fix = f"To fix: pass a regular {what} of at most {max_bytes // 1024} KiB"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO with no writer must not block the open
    except FileNotFoundError:
        raise InputError(f"{path}: no such file. {fix}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open the {what} ({exc.strerror}). {fix}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        problem = f"not a regular file (a {_kind(info.st_mode)})" if not stat.S_ISREG(info.st_mode) else \
            f"{info.st_size:,} bytes is too large for a {what}"
        raise InputError(f"{path}: {problem}. {fix}")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(max_bytes + 1)  # the file may have grown since fstat
    if len(data) > max_bytes:
        raise InputError(f"{path}: more than {max_bytes:,} bytes is too large for a {what}. {fix}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}). To fix: save the {what} as UTF-8") from None


def _kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "directory", stat.S_ISFIFO: "FIFO", stat.S_ISCHR: "character device",
             stat.S_ISBLK: "block device", stat.S_ISSOCK: "socket"}
    return next((name for test, name in kinds.items() if test(mode)), "special file")


def parse_yaml(text: str, file: str) -> Document:
    """Parse one YAML 1.2 document within the bounds above; `file` is only used in messages."""
    yaml = YAML(typ="safe", pure=True)
    try:
        _check_bounds(yaml.parse(text), file)
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _error(file, f"not valid YAML: {exc.problem or exc.context}", mark.line + 1 if mark else None) from None
    except YAMLError as exc:
        raise _error(file, f"not valid YAML: {' '.join(str(exc).split())}", None) from None
    if node is None:
        return Document(None, {(): 1})
    lines: dict[Loc, int] = {}
    _walk(node, (), lines, file)
    try:
        data = yaml.constructor.construct_document(node)
    except MarkedYAMLError as exc:  # an explicit tag no safe loader builds (!!python/object, !custom)
        mark = exc.problem_mark or exc.context_mark
        raise _error(file, f"not allowed in a spec: {exc.problem or exc.context}; allowed: plain mappings, "
                     "lists, strings, numbers and booleans", mark.line + 1 if mark else None) from None
    except (YAMLError, TypeError, ValueError) as exc:  # e.g. a mapping used as a key
        raise _error(file, f"not allowed in a spec: {exc}", None) from None
    return Document(data, lines)


def _error(file: str, message: str, line: int | None, loc: Loc = ()) -> SpecError:
    return SpecError(file, [SpecIssue(format_path(loc), message, line)])


def _check_bounds(events: Any, file: str) -> None:
    """Depth and alias-expanded size counted over the parser's events, before any node is built."""
    stack: list[list[Any]] = []  # [anchor, expanded size] of each open mapping or sequence
    sizes: dict[str, int] = {}  # anchor -> expanded size of the node it names
    total = 0
    for event in events:
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise _error(file, f"nested more than {MAX_DEPTH} levels deep; allowed: at most {MAX_DEPTH}", line)
            stack.append([event.anchor, 1])
            size = 1
        elif isinstance(event, CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
            if stack:
                stack[-1][1] += size
            continue  # counted in `total` as its items arrived
        elif isinstance(event, ScalarEvent):
            size = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, AliasEvent):
            if any(anchor == event.anchor for anchor, _ in stack):
                raise _error(file, f"alias *{event.anchor} refers to a node that contains it (a cycle); "
                             "allowed: aliases to complete nodes", line)
            if event.anchor not in sizes:
                continue  # undefined: composing reports it with its line
            size = sizes[event.anchor]
        else:
            continue
        if not isinstance(event, CollectionStartEvent) and stack:
            stack[-1][1] += size
        total += size
        if total > MAX_NODES:
            raise _error(file, f"more than {MAX_NODES:,} values with every alias expanded; "
                         f"allowed: at most {MAX_NODES:,}", line)


def _walk(node: Node, loc: Loc, lines: dict[Loc, int], file: str) -> None:
    """Record the line of every path (aliases expanded: bounded above); a key twice in a mapping is an error."""
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        seen: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if not isinstance(key, ScalarNode):
                raise _error(file, "a mapping or list used as a key; allowed: plain scalar keys", line, loc)
            identity = (key.tag, key.value)
            if identity in seen and key.value != "<<":
                raise _error(file, f"duplicate key '{key.value}' (lines {seen[identity]} and {line}); "
                             "allowed: each key once per mapping", line, (*loc, key.value))
            seen.setdefault(identity, line)
            child = (*loc, key.value)
            lines[child] = line
            _walk(value, child, lines, file)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines, file)
