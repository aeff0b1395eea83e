"""Demand from request traces: requests/s, token counts and bursts over a window of a trace.

Specs state demand as mean rates; real traffic arrives as a log of requests. This module reads
two public trace formats (see docs/demand.md) and measures one window of them, by default the
busiest one (the peak 5 minutes), because replicas are sized for the peak, not the average.
From the window it takes the mean rate and token counts, the size mix (requests binned by
prompt and generated tokens) and the burst factor (a high request-weighted percentile of the
rate in short sliding windows over the window's mean). Traces name no model and no user
region, so the caller assigns both.
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
from orchestrator.spec.models import Demand, SizeBucket

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE_FIELDS = ("timestamp", "input_length", "output_length")
PLAIN_FIELDS = ("timestamp", "input_tokens", "output_tokens")
PLAIN_OPTIONAL = ("model", "region")
AZURE_EXAMPLE_TIME = "2023-11-16 18:17:03.9799600"
_EPOCH_NAIVE = datetime(1970, 1, 1)  # subtracting beats .timestamp() threefold on a million rows
_EPOCH_UTC = _EPOCH_NAIVE.replace(tzinfo=UTC)
_ROW_DTYPE = np.dtype([("t", "f8"), ("input", "i8"), ("output", "i8")])

WindowKind = Literal["peak", "fixed", "whole"]

# The size mix's default grid (upper bounds, tokens; a last row/column holds everything larger),
# and the share under which a cell is merged into a larger one. docs/demand.md, "Size mix and bursts".
INPUT_EDGES = (256, 1024, 4096, 16384)
OUTPUT_EDGES = (64, 256, 1024, 2048)
MIN_BUCKET_SHARE = 0.005
MAX_BUCKETS = 16
# Bursts: the rate in sliding windows of BURST_WINDOW_S seconds (every BURST_STEP_S), at the
# request-weighted BURST_PERCENTILE, over the measured window's mean.
BURST_WINDOW_S = 10.0
BURST_STEP_S = 1.0
BURST_PERCENTILE = 99.0
MAX_PEAK_FACTOR = 1000.0  # Demand.peak_factor's limit
_PEAK_SOURCE_MAX = 200  # Demand.peak_source's max_length


class TraceFormat(StrEnum):
    """Trace formats gpufleet reads; the value is the format's name in messages and output."""

    AZURE = "azure"  # Azure LLM inference trace CSV, 2023 and 2024 releases
    MOONCAKE = "mooncake"  # Mooncake FAST'25 JSONL
    JSONL = "jsonl"  # gpufleet's plain JSONL: {timestamp (s), input_tokens, output_tokens, model?, region?}

    @property
    def wall_clock(self) -> bool:
        """Whether timestamps are dates (Azure) rather than offsets from the trace's start."""
        return self is TraceFormat.AZURE


_SUFFIXES = {".csv": TraceFormat.AZURE, ".jsonl": TraceFormat.MOONCAKE, ".ndjson": TraceFormat.MOONCAKE}
_JSON_NUMBERS = (int, float)
FIX_ROW = "To fix: correct or delete it."
HOW_TO_NAME_FORMAT = ("To fix: name the file *.csv (Azure) or *.jsonl (Mooncake, or plain JSONL with input_tokens), "
                      "or pass the format (azure, mooncake or jsonl).")


# One request: (arrival, prompt tokens, generated tokens). Arrival is on the trace's clock: POSIX
# seconds for Azure, seconds since the start for Mooncake. A plain tuple: a million rows stream fast.
TraceRequest = tuple[float, int, int]
# A plain JSONL record: a TraceRequest and the model and user region it names (None when it names none).
LabeledRequest = tuple[float, int, int, str | None, str | None]


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
    size_mix: list[SizeBucket] = Field(default_factory=list, description="The window's requests binned by prompt "
                                       "and generated tokens (`size_mix`); empty only for a DerivedDemand built by hand.")
    peak_factor: float = Field(1.0, ge=1, description="Burst rate / window mean (at least 1); 1 when bursts are off.")
    peak_rps: float = Field(0.0, ge=0, description="The burst rate: requests/s at the percentile, x scale "
                            "(requests_per_second x peak_factor).")
    burst_window_s: float = Field(BURST_WINDOW_S, ge=0, description="Sliding window the burst rate was measured "
                                  "over, seconds; 0: bursts off.")
    burst_percentile: float = Field(BURST_PERCENTILE, gt=0, le=100, description="Request-weighted percentile of "
                                    "the sliding windows' rates.")
    peak_source: str | None = Field(None, description="Where peak_factor comes from, for the spec's `peak_source`.")

    def to_demand(self) -> Demand:
        """The spec's `Demand`: the rate, means rounded to whole tokens (at least 1), the size mix and the burst factor."""
        return Demand(model=self.model, region=self.region, requests_per_second=self.requests_per_second,
                      input_tokens=max(1, round(self.input_tokens_mean)),
                      output_tokens=max(1, round(self.output_tokens_mean)),
                      size_mix=list(self.size_mix) or None, peak_factor=self.peak_factor, peak_source=self.peak_source)


def detect_format(path: str | Path) -> TraceFormat:
    """The format by file extension, else by the first line (a JSON object or an Azure header).

    A JSON-lines trace whose first record has `input_tokens` is the plain JSONL format, else Mooncake.
    """
    path = Path(path)
    if _SUFFIXES.get(path.suffix.lower()) is TraceFormat.AZURE:
        return TraceFormat.AZURE
    with _open(path, newline="") as f, _undecodable_as_input_error(path):
        first = next((line.strip() for line in f if line.strip()), "")
    if path.suffix.lower() in _SUFFIXES or first.startswith("{"):
        return TraceFormat.JSONL if _is_plain_record(first) else TraceFormat.MOONCAKE
    if AZURE_COLUMNS[0] in first.split(","):
        return TraceFormat.AZURE
    raise InputError(f"{path}: cannot tell the trace format from the extension {path.suffix!r} "
                     f"or the first line {first[:80]!r}. {HOW_TO_NAME_FORMAT}")


def read_trace(path: str | Path, fmt: TraceFormat | None = None) -> Iterator[TraceRequest]:
    """Stream a trace's requests in file order; the file and format are checked before this returns."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    _open(path).close()
    if fmt is TraceFormat.JSONL:
        return (record[:3] for record in _read_plain(path))
    return _read_azure(path) if fmt is TraceFormat.AZURE else _read_mooncake(path)


def read_labeled_trace(path: str | Path, fmt: TraceFormat | None = None) -> Iterator[LabeledRequest]:
    """Stream a trace's requests with the model and region each names: only plain JSONL names them
    (else both are None). The file and format are checked before this returns."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt is TraceFormat.JSONL:
        _open(path).close()
        return _read_plain(path)
    return ((t, n_in, n_out, None, None) for t, n_in, n_out in read_trace(path, fmt))


def derive_demand(path: str | Path, *, model: str, region: str, window_s: float | None = 300.0,
                  scale: float = 1.0, start_s: float | None = None, fmt: TraceFormat | None = None,
                  burst_window_s: float = BURST_WINDOW_S, burst_percentile: float = BURST_PERCENTILE,
                  burst_step_s: float = BURST_STEP_S) -> DerivedDemand:
    """Demand of one model from one user region, measured over a window of a trace.

    The window is `window_s` seconds long, half-open `[start, start + window_s)` (closed when it
    ends at the last request), and lies inside the trace. With `start_s` (seconds from the first
    request) it starts there; without, it is the peak window: the earliest one holding the most
    requests. `window_s=None` measures the whole trace, first request to last. The request rate
    is multiplied by `scale` (traffic growth, or a region's share of the trace); token counts are
    not scaled. Input may be in any order.

    The window's requests also give the size mix (`size_mix`, on the default grid) and the burst
    factor (`burst_factor`: the `burst_percentile` request-weighted rate of `burst_window_s`
    sliding windows, every `burst_step_s`, over the window's mean; `burst_window_s=0` gives 1).
    """
    check_burst_options(burst_window_s, burst_percentile)
    _check_positive("burst_step_s", burst_step_s)
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
    inputs, outputs = rows["input"][lo:hi], rows["output"][lo:hi]
    mean_rps = window.requests / window.length_s
    factor = burst_factor(t[lo:hi], window.start_s, window.end_s, burst_window_s, burst_percentile, burst_step_s)
    if factor > MAX_PEAK_FACTOR:
        raise InputError(f"{path}: the p{burst_percentile:g} rate of {burst_window_s:g} s windows is {factor:.4g}x the "
                         f"window's mean, more than the {MAX_PEAK_FACTOR:g}x a demand may carry. To fix: measure a "
                         "shorter window (--window-s) or use a longer burst window (--burst-window-s).")
    return DerivedDemand(
        model=model, region=region, source=str(path), format=fmt,
        requests_per_second=mean_rps * scale,
        input_tokens_mean=float(inputs.mean()), output_tokens_mean=float(outputs.mean()),
        scale=scale, window=window, total_requests=int(rows.size), trace_span_s=span_s,
        trace_start=datetime.fromtimestamp(first_t, UTC) if fmt.wall_clock else None,
        size_mix=size_mix_of(inputs, outputs), peak_factor=factor, peak_rps=mean_rps * factor * scale,
        burst_window_s=burst_window_s, burst_percentile=burst_percentile,
        peak_source=_peak_source(Path(path).name, window, burst_window_s, burst_percentile, mean_rps * factor),
    )


def check_burst_options(burst_window_s: float, burst_percentile: float) -> None:
    """An InputError for a burst window that is not >= 0 seconds or a percentile outside (0, 100]."""
    if not (math.isfinite(burst_window_s) and burst_window_s >= 0):
        raise InputError(f"burst_window_s must be seconds >= 0 (0 turns bursts off), not {burst_window_s}. "
                         "To fix: pass e.g. 10.")
    if not (math.isfinite(burst_percentile) and 0 < burst_percentile <= 100):
        raise InputError(f"burst_percentile must be a percentile above 0 and at most 100, not {burst_percentile}. "
                         "To fix: pass e.g. 99.")


def size_mix_of(inputs: np.ndarray, outputs: np.ndarray, *, input_edges: tuple[int, ...] = INPUT_EDGES,
                output_edges: tuple[int, ...] = OUTPUT_EDGES, min_share: float = MIN_BUCKET_SHARE,
                max_buckets: int = MAX_BUCKETS) -> list[SizeBucket]:
    """Requests binned on a grid of (prompt, generated) token upper bounds, as `SizeBucket`s.

    A request with `edges[k-1] < tokens <= edges[k]` is in row/column k; the last one holds
    everything above the last edge. Each non-empty cell is a bucket: its mean tokens (rounded up,
    at least 1) and its share of the requests. Cells too small or too many are merged into larger
    ones (`merge_cells`). A merged bucket's tokens are the largest of its cells' means, so no
    request is represented smaller than its own cell's mean; shares add up to 1. A label gives
    the largest row and column bounds among the bucket's cells, e.g. `in<=4096 out<=256`.
    Ordered by grid cell (input bound, then output bound).
    """
    n_in, n_out = len(input_edges) + 1, len(output_edges) + 1
    total = int(inputs.size)
    if total == 0:
        return []
    cell = (np.searchsorted(np.asarray(input_edges), inputs, side="left") * n_out
            + np.searchsorted(np.asarray(output_edges), outputs, side="left"))
    counts = np.bincount(cell, minlength=n_in * n_out)
    full = np.flatnonzero(counts)
    mean_in = np.bincount(cell, weights=inputs, minlength=n_in * n_out)[full] / counts[full]
    mean_out = np.bincount(cell, weights=outputs, minlength=n_in * n_out)[full] / counts[full]
    into = merge_cells(counts, n_out, min_share, max_buckets)[full]
    buckets = []
    for final in np.unique(into):
        mine = into == final
        rows, cols = np.divmod(full[mine], n_out)
        buckets.append(SizeBucket(input_tokens=max(1, math.ceil(mean_in[mine].max())),
                                  output_tokens=max(1, math.ceil(mean_out[mine].max())),
                                  share=int(counts[full[mine]].sum()) / total,
                                  label=f"in{_bound(input_edges, rows.max())} out{_bound(output_edges, cols.max())}"))
    return buckets


def merge_cells(counts: np.ndarray, n_out: int, min_share: float = MIN_BUCKET_SHARE,
                max_buckets: int = MAX_BUCKETS) -> np.ndarray:
    """The cell each grid cell's requests end up in (`counts`: requests per cell, row-major, `n_out` columns).

    A non-empty cell under `min_share` of the requests is merged into the next larger input row
    of its output column, or, in the largest row, into the next larger output column; cells are
    visited column by column, rows upward, so merges cascade. Then, while more than `max_buckets`
    cells hold requests, the smallest (the earliest on a tie) is merged the same way. The last
    cell (largest input and output) is never merged, so requests only move to larger cells.
    """
    counts = counts.astype(np.int64)
    into = np.arange(counts.size)
    total, top, n_in = int(counts.sum()), counts.size - 1, counts.size // n_out

    def merge(c: int) -> None:
        d = c + n_out if c // n_out < n_in - 1 else c + 1
        counts[d] += counts[c]
        counts[c] = 0
        into[into == c] = d

    for c in sorted(range(top), key=lambda c: (c % n_out, c // n_out)):
        if 0 < counts[c] < min_share * total:
            merge(c)
    while np.count_nonzero(counts) > max(1, max_buckets):
        merge(min((c for c in range(top) if counts[c]), key=lambda c: (counts[c], c)))
    return into


def _bound(edges: tuple[int, ...], k: int) -> str:
    """A grid row's or column's upper bound for a label: `<=256`, or `>16384` for the last."""
    return f"<={edges[k]}" if k < len(edges) else f">{edges[-1]}"


def burst_rates(t: np.ndarray, start_s: float, end_s: float, burst_window_s: float,
                step_s: float = BURST_STEP_S) -> tuple[np.ndarray, np.ndarray]:
    """Rates (req/s) of the sliding windows `[s, s + burst_window_s)` inside `[start_s, end_s]`, and their counts.

    `t`: the sorted arrivals inside the measured window (seconds on the same clock). Windows start
    every `step_s` from `start_s`, plus one ending exactly at `end_s`; that last one counts every
    request from its start on, as the measured window does. Empty when the burst window is not
    shorter than the measured one.
    """
    last = end_s - burst_window_s
    if burst_window_s <= 0 or last <= start_s:
        return np.empty(0), np.empty(0, dtype=np.int64)
    starts = start_s + step_s * np.arange(math.floor((last - start_s) / step_s + 1e-9) + 1)
    if starts[-1] < last - 1e-9:
        starts = np.append(starts, last)
    ends = starts + burst_window_s
    his = np.where(ends >= end_s - 1e-9, t.size, np.searchsorted(t, ends, side="left"))
    counts = his - np.searchsorted(t, starts, side="left")
    return counts / burst_window_s, counts


def weighted_percentile(rates: np.ndarray, counts: np.ndarray, percentile: float) -> float:
    """The least rate at or under which `percentile` % of the windows' requests are (each window weighted by its count)."""
    order = np.argsort(rates, kind="stable")
    cumulative = np.cumsum(counts[order])
    if cumulative.size == 0 or cumulative[-1] == 0:
        return 0.0
    k = int(np.searchsorted(cumulative, percentile / 100 * cumulative[-1] * (1 - 1e-12), side="left"))
    return float(rates[order][min(k, cumulative.size - 1)])


def burst_factor(t: np.ndarray, start_s: float, end_s: float, burst_window_s: float = BURST_WINDOW_S,
                 percentile: float = BURST_PERCENTILE, step_s: float = BURST_STEP_S) -> float:
    """The request-weighted `percentile` rate of sliding `burst_window_s` windows over the mean of
    `[start_s, end_s]`, at least 1; 1 when bursts are off or the burst window is not shorter than that."""
    rates, counts = burst_rates(t, start_s, end_s, burst_window_s, step_s)
    if rates.size == 0 or t.size == 0:
        return 1.0
    return max(1.0, weighted_percentile(rates, counts, percentile) / (t.size / (end_s - start_s)))


def _peak_source(name: str, window: TraceWindow, burst_window_s: float, percentile: float, peak_rps: float) -> str:
    """The spec's `peak_source`: which windows, percentile and trace the factor comes from (at most 200 characters)."""
    where = {"peak": f"the busiest {window.length_s:g} s", "whole": "the whole trace",
             "fixed": f"{window.start_s:g}-{window.end_s:g} s"}[window.kind]
    if burst_window_s <= 0:
        head, tail = "bursts off (--burst-window-s 0): the mean of ", ""
    elif burst_window_s >= window.length_s:
        head, tail = "the mean: ", f" is no longer than the {burst_window_s:g} s burst window"
    else:
        head, tail = f"p{percentile:g} of {burst_window_s:g} s windows (request-weighted) in ", f": {peak_rps:.3g} req/s"
    room = _PEAK_SOURCE_MAX - len(head) - len(where) - len(" of ") - len(tail)
    if len(name) > room:
        name = "…" + name[-(room - 1):]
    return f"{head}{where} of {name}{tail}"


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


def _is_plain_record(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "input_tokens" in record


def _read_plain(path: Path) -> Iterator[LabeledRequest]:
    """Records of a plain JSONL trace: `timestamp` in seconds (any origin), token counts, optional model and region."""
    decode = json.JSONDecoder().decode
    with _open(path) as f, _undecodable_as_input_error(path):
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = decode(line)
            except ValueError as e:
                raise InputError(f"{path}:{line_no}: not valid JSON ({e}). {FIX_ROW}") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{line_no}: expected a JSON object, found {type(record).__name__}. {FIX_ROW}")
            missing = [field for field in PLAIN_FIELDS if field not in record]
            if missing:
                raise InputError(f"{path}:{line_no}: missing field(s) {', '.join(missing)}; a plain JSONL record has "
                                 f"{', '.join(PLAIN_FIELDS)} and optionally {', '.join(PLAIN_OPTIONAL)}. {FIX_ROW}")
            t_s, n_in, n_out = (record[field] for field in PLAIN_FIELDS)
            if type(t_s) not in _JSON_NUMBERS or not math.isfinite(t_s):
                raise InputError(f"{path}:{line_no}: timestamp {t_s!r} is not a number of seconds. {FIX_ROW}")
            for field, value in zip(PLAIN_FIELDS[1:], (n_in, n_out), strict=True):
                if type(value) is not int or value < 0:
                    raise InputError(f"{path}:{line_no}: {field} {value!r} is not a whole number >= 0. {FIX_ROW}")
            labels = []
            for field in PLAIN_OPTIONAL:
                value = record.get(field)
                if value is not None and (not isinstance(value, str) or not value):
                    raise InputError(f"{path}:{line_no}: {field} {value!r} is not a non-empty name. {FIX_ROW}")
                labels.append(value)
            yield float(t_s), n_in, n_out, labels[0], labels[1]


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
