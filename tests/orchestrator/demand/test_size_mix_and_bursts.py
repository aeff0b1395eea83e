"""Demand as a distribution: a trace's size mix, its burst factor, and the options that reach them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.demand import demand_for, derive_demand
from orchestrator.demand.traces import INPUT_EDGES, OUTPUT_EDGES, burst_factor, merge_cells, size_mix_of
from orchestrator.errors import InputError
from orchestrator.spec import load_spec
from orchestrator.spec.models import SizeBucket
from tests.conftest import ENVIRONMENTS
from tests.conftest import run_cli as run
from tests.orchestrator.demand.test_traces import write_azure, write_mooncake

N_OUT = len(OUTPUT_EDGES) + 1


def derive(path: Path, **kwargs: object):
    return derive_demand(path, model="llama-8b", region="us-east", **kwargs)


# --- size mix ---------------------------------------------------------------------------------


def test_the_mix_of_a_small_trace_is_its_grid_cells(tmp_path: Path) -> None:
    requests = [(0, 100, 10), (1, 201, 31), (2, 300, 10), (3, 5000, 300), (4, 20000, 3000), (5, 1024, 64)]
    d = derive(write_azure(tmp_path, requests), window_s=None)
    # in<=256 out<=64: 100/10 and 201/31 (means 150.5 / 20.5, rounded up); in<=1024 out<=64: 300/10 and
    # 1024/64 (bounds are inclusive); 5000/300 alone; 20000/3000 is above every edge.
    assert d.size_mix == [
        SizeBucket(input_tokens=151, output_tokens=21, share=2 / 6, label="in<=256 out<=64"),
        SizeBucket(input_tokens=662, output_tokens=37, share=2 / 6, label="in<=1024 out<=64"),
        SizeBucket(input_tokens=5000, output_tokens=300, share=1 / 6, label="in<=16384 out<=1024"),
        SizeBucket(input_tokens=20000, output_tokens=3000, share=1 / 6, label="in>16384 out>2048"),
    ]
    demand = d.to_demand()
    assert demand.size_mix == d.size_mix
    assert (demand.input_tokens, demand.output_tokens) == (round(d.input_tokens_mean), round(d.output_tokens_mean))


def test_small_cells_merge_into_larger_ones_at_the_larger_means() -> None:
    # 10 requests, min share 0.15: the 1-request cells (10 %) are merged upward.
    rows = [(100, 50)] + [(500, 20)] * 4 + [(2000, 100)] * 4 + [(20000, 10)]
    inputs, outputs = (np.array(column) for column in zip(*rows, strict=True))
    assert size_mix_of(inputs, outputs, min_share=0.15) == [
        # 100/50 joins in<=1024 out<=64 (same column, next row): input from 500, output from its own 50.
        SizeBucket(input_tokens=500, output_tokens=50, share=0.5, label="in<=1024 out<=64"),
        SizeBucket(input_tokens=2000, output_tokens=100, share=0.4, label="in<=4096 out<=256"),
        # In the largest row it moves along the output columns, up to the last cell (never merged);
        # the label says what the bucket holds, not the empty cell it was parked in.
        SizeBucket(input_tokens=20000, output_tokens=10, share=0.1, label="in>16384 out<=64"),
    ]


def test_at_most_max_buckets() -> None:
    # One request in each of the 25 cells: 25 buckets unless capped.
    ins, outs = [256, 1024, 4096, 16384, 20000], [64, 256, 1024, 2048, 3000]
    inputs = np.array([i for i in ins for _ in outs])
    outputs = np.array([o for _ in ins for o in outs])
    assert len(size_mix_of(inputs, outputs, max_buckets=25)) == 25
    capped = size_mix_of(inputs, outputs)  # MAX_BUCKETS, 16
    assert len(capped) == 16 and math.fsum(b.share for b in capped) == pytest.approx(1)


TOKENS = st.one_of(st.integers(0, 300), st.integers(0, 5000), st.integers(0, 40_000))


@settings(max_examples=150, deadline=None)
@given(requests=st.lists(st.tuples(TOKENS, TOKENS), min_size=1, max_size=300),
       min_share=st.floats(0, 0.4), max_buckets=st.integers(1, 25))
def test_a_mix_keeps_every_request_and_never_shrinks_one(requests: list[tuple[int, int]], min_share: float,
                                                         max_buckets: int) -> None:
    inputs, outputs = (np.array(column, dtype=np.int64) for column in zip(*requests, strict=True))
    mix = size_mix_of(inputs, outputs, min_share=min_share, max_buckets=max_buckets)
    assert math.fsum(b.share for b in mix) == pytest.approx(1, abs=1e-12)
    assert 1 <= len(mix) <= max_buckets
    # Each request's own cell, and its means, by plain Python.
    cells: dict[int, list[tuple[int, int]]] = {}
    for n_in, n_out in requests:
        row = next((k for k, edge in enumerate(INPUT_EDGES) if n_in <= edge), len(INPUT_EDGES))
        col = next((k for k, edge in enumerate(OUTPUT_EDGES) if n_out <= edge), len(OUTPUT_EDGES))
        cells.setdefault(row * N_OUT + col, []).append((n_in, n_out))
    counts = np.bincount(list(cells), weights=[len(v) for v in cells.values()], minlength=N_OUT * N_OUT)
    into = merge_cells(counts.astype(np.int64), N_OUT, min_share, max_buckets)
    finals = sorted({int(into[c]) for c in cells})
    assert len(finals) == len(mix)
    for c, members in cells.items():
        final = int(into[c])
        assert final // N_OUT >= c // N_OUT and final % N_OUT >= c % N_OUT  # a larger (or the same) cell
        bucket = mix[finals.index(final)]
        assert bucket.input_tokens >= math.ceil(sum(i for i, _ in members) / len(members))
        assert bucket.output_tokens >= math.ceil(sum(o for _, o in members) / len(members))
    for final, bucket in zip(finals, mix, strict=True):
        held = sum(len(members) for c, members in cells.items() if into[c] == final)
        assert bucket.share == pytest.approx(held / len(requests))
        # Only the largest cell may stay under the minimum share (it has nowhere larger to go).
        assert final == N_OUT * N_OUT - 1 or held >= min_share * len(requests)


# --- bursts -----------------------------------------------------------------------------------

# 1 request/s at whole seconds 0..300, plus 200 requests in [100, 102): 501 requests over 300 s.
BACKGROUND = [float(s) for s in range(301)]
BURST = [100 + k * 0.01 for k in range(200)]


def test_the_burst_factor_of_a_known_burst() -> None:
    t = np.sort(np.array(BACKGROUND + BURST))
    mean = 501 / 300
    # 10-s windows every 1 s, starting at 0..290: 9 hold the whole burst (210 requests, 21 req/s),
    # 2 half of it (110), 279 only the background (10) and the last, closed at 300 s, 11.
    # Request-weighted: 1890 of 4911 requests see 21 req/s, 220 see 11, the rest 1 or 1.1.
    assert burst_factor(t, 0, 300, 10, 99) == pytest.approx(21 / mean)
    assert burst_factor(t, 0, 300, 10, 60) == pytest.approx(11 / mean)  # 2790 + 11 + 220 >= 60 % of 4911
    assert burst_factor(t, 0, 300, 10, 50) == 1  # the background's 1 req/s is under the mean: at least 1
    assert burst_factor(t, 0, 300, 0, 99) == 1
    assert burst_factor(t, 0, 300, 300, 99) == 1  # no window shorter than the measured one


def test_derived_demand_carries_the_burst(tmp_path: Path) -> None:
    trace = write_mooncake(tmp_path, [(round(s * 1000), 100, 10) for s in BACKGROUND + BURST])
    d = derive(trace, window_s=None, scale=2)
    assert d.peak_factor == pytest.approx(21 / (501 / 300))
    assert d.peak_rps == pytest.approx(42)  # x scale
    assert d.peak_source == "p99 of 10 s windows (request-weighted) in the whole trace of trace.jsonl: 21 req/s"
    demand = d.to_demand()
    assert (demand.peak_factor, demand.peak_source) == (d.peak_factor, d.peak_source)
    # The busiest 60 s holds the burst too; its mean is higher, so its factor is lower.
    peak = derive(trace, window_s=60)
    assert peak.window.requests == 260 and peak.peak_factor == pytest.approx(21 / (260 / 60))


def test_burst_window_zero_gives_factor_one(tmp_path: Path) -> None:
    trace = write_mooncake(tmp_path, [(round(s * 1000), 100, 10) for s in BACKGROUND + BURST])
    d = derive(trace, window_s=None, burst_window_s=0)
    assert d.peak_factor == 1 and d.peak_rps == pytest.approx(d.requests_per_second)
    assert d.to_demand().peak_source == "bursts off (--burst-window-s 0): the mean of the whole trace of trace.jsonl"


def test_a_long_file_name_is_shortened_to_fit_the_spec(tmp_path: Path) -> None:
    trace = write_mooncake(tmp_path, [(0, 1, 1), (5000, 1, 1), (20_000, 1, 1)], name="x" * 200 + ".jsonl")
    source = derive(trace, window_s=None).to_demand().peak_source
    assert source is not None and len(source) <= 200 and source.endswith("xxx.jsonl: 0.2 req/s")  # 2 of 3 in the first 10 s


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"burst_window_s": -1}, "burst_window_s must be seconds >= 0 (0 turns bursts off), not -1"),
    ({"burst_window_s": math.nan}, "burst_window_s must be seconds >= 0"),
    ({"burst_percentile": 0}, "burst_percentile must be a percentile above 0 and at most 100, not 0"),
    ({"burst_percentile": 100.5}, "burst_percentile must be a percentile above 0 and at most 100, not 100.5"),
])
def test_bad_burst_arguments_are_input_errors(tmp_path: Path, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        derive(write_mooncake(tmp_path, [(0, 1, 1), (5000, 1, 1)]), **kwargs)


# --- through demand_for and the CLI ------------------------------------------------------------


@pytest.fixture
def burst_trace(tmp_path: Path) -> Path:
    return write_mooncake(tmp_path, [(round(s * 1000), 100 if s < 200 else 3000, 10) for s in BACKGROUND + BURST])


def test_demand_for_puts_the_mix_and_the_factor_in_the_spec(burst_trace: Path) -> None:
    spec = load_spec(ENVIRONMENTS / "local.yaml")
    replaced, notes = demand_for(spec, trace=burst_trace, window_s=60)
    (row,) = [d for d in replaced.demand if d.region == "local"]
    assert [(b.label, b.share) for b in row.size_mix or []] == [("in<=256 out<=64", 1.0)]
    assert row.peak_factor == pytest.approx(21 / (260 / 60)) and "p99 of 10 s windows" in (row.peak_source or "")
    assert "1 size bucket" in notes[-1] and "peak factor 4.85" in notes[-1]
    off, notes = demand_for(spec, trace=burst_trace, window_s=60, burst_window_s=0)
    assert off.demand[-1].peak_factor == 1 and "peak factor 1 (bursts off" in notes[-1]


def test_plan_trace_plans_with_the_mix_and_the_factor(capsys: pytest.CaptureFixture[str], burst_trace: Path) -> None:
    code, out, err = run(capsys, "plan", "--env", "local", "--trace", str(burst_trace), "--window-s", "60",
                         "--burst-percentile", "99", "--format", "json", "--no-baselines", "--no-save")
    assert code == 0, err
    (row,) = json.loads(out)["demand"]
    assert (row["model"], row["region"], row["input_tokens"]) == ("tiny-llama", "local", 100)
    # The placement's demand rows do not carry the mix or the factor (yet): the note on stderr does.
    assert "1 size bucket; peak factor 4.85 (p99 of 10 s windows (request-weighted) in the busiest 60 s" in " ".join(err.split())


@pytest.mark.parametrize(("args", "message"), [
    (["--burst-window-s", "-1"], "Invalid value for '--burst-window-s': -1.0 is not a number of seconds >= 0"),
    (["--burst-window-s", "nan"], "Invalid value for '--burst-window-s': nan is not a number of seconds >= 0"),
    (["--burst-percentile", "0"], "Invalid value for '--burst-percentile': 0.0 is not a percentile above 0 and at most 100"),
    (["--burst-percentile", "101"], "Invalid value for '--burst-percentile': 101.0 is not a percentile above 0"),
])
@pytest.mark.parametrize("command", ["plan", "rebalance"])
def test_bad_burst_options_exit_2(capsys: pytest.CaptureFixture[str], burst_trace: Path, command: str,
                                  args: list[str], message: str) -> None:
    code, _, err = run(capsys, command, "--env", "local", "--trace", str(burst_trace), *args, "--no-save"
                       if command == "plan" else "--dry-run")
    assert code == 2 and message in " ".join(err.replace("│", " ").split()), err


def test_rebalance_passes_the_burst_options_on(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                               burst_trace: Path) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr("orchestrator.cli.rebalance.rebalance_once", lambda *a, **kw: seen.update(kw["demand"].options()))
    code, _, err = run(capsys, "rebalance", "--env", "local", "--trace", str(burst_trace), "--burst-window-s", "30",
                       "--burst-percentile", "95", "--dry-run")
    assert code == 0, err
    assert (seen["burst_window_s"], seen["burst_percentile"]) == (30, 95)


def test_measured_demand_keeps_the_specs_peak_factor() -> None:
    import datetime as dt

    from orchestrator.demand.measured import MeasuredRates, with_measured_demand

    spec = load_spec(ENVIRONMENTS / "local.yaml")
    end = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rates = {"tiny-llama": MeasuredRates(model="tiny-llama", requests=600, prompt_tokens=600 * 64,
                                         generation_tokens=600 * 16, start=end - dt.timedelta(seconds=300), end=end,
                                         replicas=1)}
    (row,) = with_measured_demand(spec, rates, window_s=300)[0].demand
    assert (row.requests_per_second, row.peak_factor, row.peak_source) == (2, 1, None)  # the spec states none
    bursty = spec.model_copy(update={"demand": [spec.demand[0].model_copy(
        update={"peak_factor": 3.0, "peak_source": "ops estimate"})]})
    replaced, notes = with_measured_demand(bursty, rates, window_s=300)
    (row,) = replaced.demand
    assert (row.requests_per_second, row.peak_factor, row.peak_source) == (2, 3, "ops estimate")
    assert "the spec's peak factor kept (local x3)" in notes[0]
