"""Demand from request traces: requests/s and mean token counts over a window of a trace.

Specs state demand as mean rates; real traffic arrives as a log of requests. This module reads
two public trace formats (see docs/demand.md) and measures one window of them, by default the
busiest one (the peak 5 minutes), because replicas are sized for the peak, not the average.
Traces name no model and no user region, so the caller assigns both.
"""

from __future__ import annotations

import csv
import json
import math
from contextlib import contextmanager
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import InputError
from orchestrator.spec.models import Demand

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE_FIELDS = ("timestamp", "input_length", "output_length")
AZURE_EXAMPLE_TIME = "2023-11-16 18:17:03.9799600"
_EPOCH_NAIVE = datetime(1970, 1, 1)  # subtracting beats .timestamp() threefold on a million rows
_EPOCH_UTC = _EPOCH_NAIVE.replace(tzinfo=UTC)
_ROW_DTYPE = np.dtype([("t", "f8"), ("input", "i8"), ("output", "i8")])

WindowKind = Literal["peak", "fixed", "whole"]


class TraceFormat(StrEnum):
    """Trace formats gpufleet reads; the value is the format's name in messages and output."""

    AZURE = "azure"  # Azure LLM inference trace CSV, 2023 and 2024 releases
    MOONCAKE = "mooncake"  # Mooncake FAST'25 JSONL

    @property
    def wall_clock(self) -> bool:
        """Whether timestamps are dates (Azure) rather than offsets from the trace's start."""
        return self is TraceFormat.AZURE


_SUFFIXES = {".csv": TraceFormat.AZURE, ".jsonl": TraceFormat.MOONCAKE, ".ndjson": TraceFormat.MOONCAKE}
_JSON_NUMBERS = (int, float)
FIX_ROW = "To fix: correct or delete it."
HOW_TO_NAME_FORMAT = "To fix: name the file *.csv (Azure) or *.jsonl (Mooncake), or pass the format (azure or mooncake)."


# One request: (arrival, prompt tokens, generated tokens). Arrival is on the trace's clock: POSIX
# seconds for Azure, seconds since the start for Mooncake. A plain tuple: a million rows stream fast.
TraceRequest = tuple[float, int, int]


class TraceWindow(BaseModel):
    """The stretch of a trace demand was measured over, in seconds from its first request."""

    model_config = ConfigDict(frozen=True)

    kind: WindowKind = Field(description="peak: the busiest window of its length; fixed: chosen by start_s; "
                             "whole: the trace from its first to its last request.")
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    requests: int = Field(gt=0, description="Requests that arrived in the window.")

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


class DerivedDemand(BaseModel):
    """Demand measured from a trace, with what it was measured over so it can be checked."""

    model_config = ConfigDict(frozen=True)

    model: str
    region: str
    source: str = Field(description="The trace file, as given.")
    format: TraceFormat
    requests_per_second: float = Field(gt=0, description="Requests in the window / window length x scale.")
    input_tokens_mean: float = Field(ge=0, description="Mean prompt tokens of the window's requests (not scaled).")
    output_tokens_mean: float = Field(ge=0, description="Mean generated tokens of the window's requests (not scaled).")
    scale: float = Field(gt=0, description="Factor applied to the request rate.")
    window: TraceWindow
    total_requests: int = Field(gt=0, description="Requests in the whole trace.")
    trace_span_s: float = Field(ge=0, description="Seconds from the trace's first request to its last.")
    trace_start: datetime | None = Field(None, description="Wall-clock time (UTC) of the first request; "
                                         "None for traces with relative timestamps.")

    def to_demand(self) -> Demand:
        """The spec's `Demand`; mean token counts are rounded to whole tokens, at least 1."""
        return Demand(model=self.model, region=self.region, requests_per_second=self.requests_per_second,
                      input_tokens=max(1, round(self.input_tokens_mean)),
                      output_tokens=max(1, round(self.output_tokens_mean)))


def detect_format(path: str | Path) -> TraceFormat:
    """The format by file extension, else by the first line (a JSON object or an Azure header)."""
    path = Path(path)
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    with _open(path, newline="") as f, _undecodable_as_input_error(path):
        first = next((line.strip() for line in f if line.strip()), "")
    if first.startswith("{"):
        return TraceFormat.MOONCAKE
    if AZURE_COLUMNS[0] in first.split(","):
        return TraceFormat.AZURE
    raise InputError(f"{path}: cannot tell the trace format from the extension {path.suffix!r} "
                     f"or the first line {first[:80]!r}. {HOW_TO_NAME_FORMAT}")


def read_trace(path: str | Path, fmt: TraceFormat | None = None) -> Iterator[TraceRequest]:
    """Stream a trace's requests in file order; the file and format are checked before this returns."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    _open(path).close()
    return _read_azure(path) if fmt is TraceFormat.AZURE else _read_mooncake(path)


def derive_demand(path: str | Path, *, model: str, region: str, window_s: float | None = 300.0,
                  scale: float = 1.0, start_s: float | None = None,
                  fmt: TraceFormat | None = None) -> DerivedDemand:
    """Demand of one model from one user region, measured over a window of a trace.

    The window is `window_s` seconds long, half-open `[start, start + window_s)` (closed when it
    ends at the last request), and lies inside the trace. With `start_s` (seconds from the first
    request) it starts there; without, it is the peak window: the earliest one holding the most
    requests. `window_s=None` measures the whole trace, first request to last. The request rate is multiplied by `scale` (traffic growth, or
    a region's share of the trace); token means are not scaled. Input may be in any order.
    """
    if not model or not region:
        raise InputError(f"{path}: a trace names no model or user region, so both must be given. "
                         "To fix: pass --trace-model and --trace-region.")
    _check_positive("scale", scale)
    if window_s is not None:
        _check_positive("window_s", window_s)
    if start_s is not None:
        if window_s is None:
            raise InputError("start_s picks a window of window_s seconds; the whole trace has no start to pick. "
                             "To fix: give window_s too, or drop start_s.")
        if not (math.isfinite(start_s) and start_s >= 0):
            raise InputError(f"start_s must be seconds from the trace's first request (>= 0), not {start_s}. "
                             "To fix: pass a non-negative start.")
    fmt = fmt or detect_format(path)
    rows = np.fromiter(read_trace(path, fmt), dtype=_ROW_DTYPE)
    if rows.size == 0:
        raise InputError(f"{path}: the trace holds no requests. To fix: point at a trace with at least one row.")
    rows = rows[np.argsort(rows["t"], kind="stable")]
    first_t = float(rows["t"][0])
    t = rows["t"] - first_t
    span_s = float(t[-1])
    window, lo, hi = _choose_window(t, span_s, window_s, start_s, path)
    return DerivedDemand(
        model=model, region=region, source=str(path), format=fmt,
        requests_per_second=window.requests / window.length_s * scale,
        input_tokens_mean=float(rows["input"][lo:hi].mean()),
        output_tokens_mean=float(rows["output"][lo:hi].mean()),
        scale=scale, window=window, total_requests=int(rows.size), trace_span_s=span_s,
        trace_start=datetime.fromtimestamp(first_t, UTC) if fmt.wall_clock else None,
    )


def _choose_window(t: np.ndarray, span_s: float, window_s: float | None, start_s: float | None,
                   path: str | Path) -> tuple[TraceWindow, int, int]:
    """The window and the slice of sorted requests in it (`t`: sorted seconds from the first)."""
    if window_s is None:
        if span_s == 0:
            raise InputError(f"{path}: all {t.size} request(s) arrive at the same instant, so the trace has "
                             "no length to measure a rate over. To fix: use a longer trace.")
        kind: WindowKind = "whole"
        start_s, end_s = 0.0, span_s
    elif window_s > span_s:
        raise InputError(f"{path}: the window ({window_s:g} s) is longer than the trace ({_down(span_s)} s from "
                         f"the first request to the last). To fix: use a window of at most {_down(span_s)} s, "
                         "or measure the whole trace.")
    elif start_s is None:
        kind = "peak"
        start_s, end_s = _peak_window(t, span_s, window_s)
    elif start_s + window_s > span_s:
        raise InputError(f"{path}: the window {start_s:g}-{start_s + window_s:g} s ends after the trace "
                         f"({_down(span_s)} s from the first request to the last). To fix: start at most at "
                         f"{_down(span_s - window_s)} s.")
    else:
        kind = "fixed"
        end_s = start_s + window_s
    lo, hi = _slice(t, span_s, np.array([start_s]), np.array([end_s]))
    if hi[0] == lo[0]:
        raise InputError(f"{path}: no requests arrive in the window {start_s:g}-{end_s:g} s. "
                         "To fix: pick another start, or a longer window.")
    window = TraceWindow(kind=kind, start_s=start_s, end_s=end_s, requests=int(hi[0] - lo[0]))
    return window, int(lo[0]), int(hi[0])


def _peak_window(t: np.ndarray, span_s: float, window_s: float) -> tuple[float, float]:
    """Start and end of the earliest window inside the trace with the most requests.

    A window's count only changes when an edge crosses a request, so the best start is a request's
    arrival, or the latest start that keeps the window inside the trace.
    """
    last_start = span_s - window_s
    starts = np.append(t[t <= last_start], last_start)
    ends = np.append(starts[:-1] + window_s, span_s)
    lo, hi = _slice(t, span_s, starts, ends)
    best = int(np.argmax(hi - lo))
    return float(starts[best]), float(ends[best])


def _slice(t: np.ndarray, span_s: float, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index ranges of the requests in windows `[start, end)`; a window reaching the trace's end
    is closed there, so its last request counts (as numpy.histogram's last bin)."""
    his = np.where(ends >= span_s, t.size, np.searchsorted(t, ends, side="left"))
    return np.searchsorted(t, starts, side="left"), his


def _read_azure(path: Path) -> Iterator[TraceRequest]:
    """Rows of an Azure LLM inference trace CSV (`TIMESTAMP,ContextTokens,GeneratedTokens`)."""
    with _open(path, newline="") as f, _undecodable_as_input_error(path):
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        missing = [column for column in AZURE_COLUMNS if column not in names]
        if missing:
            raise InputError(f"{path}:1: missing column(s) {', '.join(missing)} (header: {','.join(names)}). "
                             f"An Azure trace's header is {','.join(AZURE_COLUMNS)}. To fix: add the columns, "
                             "or name the format if this is not an Azure trace.")
        i_time, i_input, i_output = (names.index(column) for column in AZURE_COLUMNS)
        for row in rows:
            try:
                t_s, n_in, n_out = _wall_clock_s(row[i_time]), int(row[i_input]), int(row[i_output])
                if n_in < 0 or n_out < 0:
                    raise ValueError
            except (ValueError, IndexError):
                if not row:
                    continue
                problem = _azure_problem(row, len(names), i_time, i_input, i_output)
                raise InputError(f"{path}:{rows.line_num}: {problem}. {FIX_ROW}") from None
            yield t_s, n_in, n_out


def _wall_clock_s(text: str) -> float:
    """POSIX seconds of an ISO date-time; one without an offset is taken as UTC (Azure 2023 is)."""
    when = datetime.fromisoformat(text)
    return (when - (_EPOCH_UTC if when.tzinfo else _EPOCH_NAIVE)).total_seconds()


def _azure_problem(row: list[str], width: int, i_time: int, i_input: int, i_output: int) -> str:
    """What is wrong with a row the fast path rejected (kept off the fast path)."""
    if len(row) < width:
        return f"expected {width} fields, found {len(row)}"
    try:
        _wall_clock_s(row[i_time])
    except ValueError:
        return f"{AZURE_COLUMNS[0]} {row[i_time]!r} is not a date-time like {AZURE_EXAMPLE_TIME!r}"
    column, text = next((column, row[index]) for column, index in zip(AZURE_COLUMNS[1:], (i_input, i_output),
                                                                      strict=True) if not _is_count(row[index]))
    return f"{column} {text!r} is not a whole number >= 0"


def _is_count(text: str) -> bool:
    try:
        return int(text) >= 0
    except ValueError:
        return False


def _read_mooncake(path: Path) -> Iterator[TraceRequest]:
    """Records of a Mooncake JSONL trace (`timestamp` in ms from the start; `hash_ids` unused)."""
    decode = json.JSONDecoder().decode
    with _open(path) as f, _undecodable_as_input_error(path):
        for line_no, line in enumerate(f, start=1):
            try:
                record = decode(line)
                t_ms, n_in, n_out = record["timestamp"], record["input_length"], record["output_length"]
            except (ValueError, KeyError, TypeError):
                if not line.strip():
                    continue
                raise InputError(f"{path}:{line_no}: {_mooncake_problem(line)}. {FIX_ROW}") from None
            if (type(n_in) is not int or type(n_out) is not int or n_in < 0 or n_out < 0
                    or type(t_ms) not in _JSON_NUMBERS or not math.isfinite(t_ms)):
                raise InputError(f"{path}:{line_no}: {_mooncake_value_problem(t_ms, n_in, n_out)}. {FIX_ROW}")
            yield t_ms / 1000.0, n_in, n_out


def _mooncake_problem(line: str) -> str:
    """Why a line is not a Mooncake record (kept off the fast path)."""
    try:
        record = json.loads(line)
    except ValueError as e:
        return f"not valid JSON ({e})"
    if not isinstance(record, dict):
        return f"expected a JSON object, found {type(record).__name__}"
    missing = [field for field in MOONCAKE_FIELDS if field not in record]
    return f"missing field(s) {', '.join(missing)}"


def _mooncake_value_problem(t_ms: object, n_in: object, n_out: object) -> str:
    """Which of a record's values is unusable (kept off the fast path)."""
    if type(t_ms) not in _JSON_NUMBERS or not math.isfinite(t_ms):
        return f"timestamp {t_ms!r} is not a number of milliseconds"
    field, value = next((field, value) for field, value in zip(MOONCAKE_FIELDS[1:], (n_in, n_out), strict=True)
                        if type(value) is not int or value < 0)
    return f"{field} {value!r} is not a whole number >= 0"


def _down(seconds: float) -> str:
    """Seconds for a message, rounded down to the ms so a limit quoted back is within it."""
    return f"{math.floor(seconds * 1000) / 1000:.12g}"


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive number, not {value}. To fix: pass a value above 0.")


def _open(path: Path, newline: str | None = None) -> TextIO:
    """Open a trace for reading as text, turning a missing or unreadable file into an InputError."""
    try:
        return path.open(encoding="utf-8-sig", newline=newline)
    except FileNotFoundError:
        raise InputError(f"{path}: no such trace file. To fix: check the path.") from None
    except (IsADirectoryError, PermissionError) as e:
        raise InputError(f"{path}: cannot read the trace ({e.strerror}). To fix: point at a readable file.") from None


@contextmanager
def _undecodable_as_input_error(path: Path) -> Iterator[None]:
    """A file that is not UTF-8 text (often a compressed trace) is the user's to fix, not a crash."""
    try:
        yield
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: not a text trace ({e}). To fix: decompress it, or save it as UTF-8 text.") from None
