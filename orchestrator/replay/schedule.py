"""Which requests a replay sends, and when: a window of a trace, sped up, thinned or duplicated.

Arrival times are seconds from the window's start divided by `speed`. `scale` multiplies the
traffic: every request is kept `floor(scale)` times and once more with probability
`scale - floor(scale)` (a seeded RNG, so a replay is repeatable); copies arrive together.
Lengths longer than a model serves are clipped (its `max_model_len`: output to at most a
quarter of it, the prompt to the rest), and counted, so a report says it measured shorter
requests than the trace's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from orchestrator.demand.traces import TraceFormat, TraceWindow, _choose_window, detect_format, read_labeled_trace
from orchestrator.errors import InputError
from orchestrator.spec import FleetSpec

OUTPUT_SHARE_OF_CONTEXT = 4  # a clipped request keeps at most max_model_len / 4 generated tokens


@dataclass(frozen=True)
class ReplayRequest:
    """One request to send: when (seconds from the replay's start), how long, for which model and region."""

    at_s: float
    input_tokens: int
    output_tokens: int
    model: str
    region: str | None = None
    clipped: bool = False


@dataclass(frozen=True)
class Schedule:
    requests: list[ReplayRequest]
    source: str
    format: TraceFormat
    window: TraceWindow
    speed: float
    scale: float
    seed: int
    clipped: int = 0
    limits: dict[str, int] = field(default_factory=dict)  # model -> max_model_len used to clip

    @property
    def duration_s(self) -> float:
        """Seconds the schedule spans: the window's length at the replay's speed."""
        return self.window.length_s / self.speed

    def by_model(self) -> dict[str, list[ReplayRequest]]:
        out: dict[str, list[ReplayRequest]] = {}
        for r in self.requests:
            out.setdefault(r.model, []).append(r)
        return out


def build_schedule(path: str | Path, spec: FleetSpec, *, model: str | None = None, region: str | None = None,
                   window_s: float | None = None, start_s: float | None = None, speed: float = 1.0,
                   scale: float = 1.0, seed: int = 0, fmt: TraceFormat | None = None,
                   max_requests: int | None = None) -> Schedule:
    """The requests to replay from `path` against `spec`'s models (see the module docstring).

    `window_s`/`start_s` pick the window as `plan --trace` does (the busiest `window_s` seconds
    unless `start_s` is given; the whole trace without `window_s`). Requests that name no model
    go to `model`, else to the spec's only model. `max_requests` keeps the first ones.
    """
    for name, value in (("--speed", speed), ("--scale", scale)):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a number above 0, not {value}. To fix: pass e.g. {name} 1")
    if window_s is not None and not (math.isfinite(window_s) and window_s > 0):
        raise InputError(f"--window-s must be seconds above 0, not {window_s}. To fix: pass e.g. --window-s 300")
    if start_s is not None and window_s is None:
        raise InputError("--start-s picks a window of --window-s seconds. To fix: give --window-s too, or drop --start-s")
    if start_s is not None and not (math.isfinite(start_s) and start_s >= 0):
        raise InputError(f"--start-s must be seconds from the trace's first request (>= 0), not {start_s}.")
    names = [m.name for m in spec.models]
    if model is not None and model not in names:
        raise InputError(f"--model {model}: no such model in the spec; allowed: {', '.join(names)}")
    fmt = fmt or detect_format(path)
    rows = sorted(read_labeled_trace(path, fmt), key=lambda r: r[0])
    if not rows:
        raise InputError(f"{path}: the trace holds no requests. To fix: point at a trace with at least one row.")
    t = np.array([r[0] for r in rows]) - rows[0][0]
    if window_s is None:
        span = float(t[-1])
        window, lo, hi = TraceWindow(kind="whole", start_s=0.0, end_s=span, requests=len(rows)), 0, len(rows)
    else:
        window, lo, hi = _choose_window(t, float(t[-1]), window_s, start_s, path)
    rng = np.random.default_rng(seed)
    whole, frac = divmod(scale, 1.0)
    copies = int(whole) + (rng.random(hi - lo) < frac)
    limits = {m.name: m.max_model_len for m in spec.models if m.max_model_len}
    requests, clipped = [], 0
    for k, i in enumerate(range(lo, hi)):
        _t, n_in, n_out, named_model, named_region = rows[i]
        target = named_model or model or _only_model(names, path)
        if target not in names:
            raise InputError(f"{path}: a request names model {target!r}, which the spec does not serve; "
                             f"allowed: {', '.join(names)}. To fix: edit the trace's model field or the spec")
        n_in, n_out = max(1, n_in), max(1, n_out)
        short_in, short_out = _clip(n_in, n_out, limits.get(target))
        was_clipped = (short_in, short_out) != (n_in, n_out)
        at = (float(t[i]) - window.start_s) / speed
        for _ in range(int(copies[k])):
            requests.append(ReplayRequest(at_s=at, input_tokens=short_in, output_tokens=short_out, model=target,
                                          region=named_region or region, clipped=was_clipped))
            clipped += was_clipped
    if max_requests is not None:
        requests = requests[:max_requests]
        clipped = sum(r.clipped for r in requests)
    if not requests:
        raise InputError(f"{path}: no request left to replay (window {window.start_s:g}-{window.end_s:g} s, "
                         f"--scale {scale:g}). To fix: raise --scale or pick a longer window")
    return Schedule(requests=requests, source=str(path), format=fmt, window=window, speed=speed, scale=scale,
                    seed=seed, clipped=clipped, limits=limits)


def _only_model(names: list[str], path: str | Path) -> str:
    if len(names) == 1:
        return names[0]
    raise InputError(f"{path}: the trace names no model and the spec serves {len(names)}: {', '.join(names)}. "
                     "To fix: pass --model NAME (or add a model field to each record of a plain JSONL trace)")


def _clip(n_in: int, n_out: int, max_model_len: int | None) -> tuple[int, int]:
    """Lengths a model with `max_model_len` serves: prompt + output within it, output at most a quarter of it."""
    if max_model_len is None or n_in + n_out <= max_model_len:
        return n_in, n_out
    n_out = max(1, min(n_out, max_model_len // OUTPUT_SHARE_OF_CONTEXT))
    return max(1, min(n_in, max_model_len - n_out)), n_out
