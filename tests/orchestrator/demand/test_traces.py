"""Demand from traces: both formats, window choice, scaling, errors, and the bundled traces' figures."""

from __future__ import annotations

import gzip
import json
import random
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.demand import TraceFormat, derive_demand, detect_format, read_trace
from orchestrator.errors import InputError
from orchestrator.settings import load_settings
from orchestrator.spec.models import Demand

AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens"
T0 = datetime(2023, 11, 16, 18, 0, 0)
# (seconds from T0, prompt tokens, generated tokens), deliberately out of order.
REQUESTS = [(110, 400, 40), (0, 100, 10), (400, 600, 60), (10, 200, 20), (120, 500, 50), (100, 300, 30)]


def azure_line(seconds: float, n_in: int, n_out: int) -> str:
    """A row as the 2023 release writes it: naive wall clock with 7 fractional digits."""
    return f"{T0 + timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S.%f}0,{n_in},{n_out}"


def write_azure(tmp_path: Path, requests: list[tuple[float, int, int]], name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([AZURE_HEADER, *(azure_line(*r) for r in requests)]) + "\n")
    return path


def write_mooncake(tmp_path: Path, requests: list[tuple[float, int, int]], name: str = "trace.jsonl") -> Path:
    """Records as Mooncake writes them: `timestamp` in ms from the start."""
    path = tmp_path / name
    path.write_text("".join(json.dumps({"timestamp": t_ms, "input_length": n_in, "output_length": n_out,
                                        "hash_ids": [0, 1]}) + "\n" for t_ms, n_in, n_out in requests))
    return path


def derive(path: Path, **kwargs: object):
    return derive_demand(path, model="llama-8b", region="us-east", **kwargs)


# --- windows, hand-computed on REQUESTS (span 400 s) --------------------------------------------


def test_the_peak_window_is_the_one_with_most_requests(tmp_path: Path) -> None:
    # 60-s windows: [0,60) 2, [10,70) 1, [100,160) 3, [110,170) 2, [120,180) 1, [340,400] 1.
    d = derive(write_azure(tmp_path, REQUESTS), window_s=60)
    assert (d.window.kind, d.window.start_s, d.window.end_s, d.window.requests) == ("peak", 100, 160, 3)
    assert d.requests_per_second == pytest.approx(3 / 60)
    assert (d.input_tokens_mean, d.output_tokens_mean) == pytest.approx((400, 40))
    assert (d.total_requests, d.trace_span_s) == (6, pytest.approx(400))
    assert d.trace_start == T0.replace(tzinfo=UTC)


def test_scale_multiplies_the_rate_but_not_the_token_means(tmp_path: Path) -> None:
    d = derive(write_azure(tmp_path, REQUESTS), window_s=60, scale=2.5)
    assert d.requests_per_second == pytest.approx(2.5 * 3 / 60)
    assert (d.input_tokens_mean, d.output_tokens_mean, d.scale) == pytest.approx((400, 40, 2.5))


def test_a_fixed_start_measures_that_window(tmp_path: Path) -> None:
    d = derive(write_azure(tmp_path, REQUESTS), window_s=60, start_s=0)
    assert (d.window.kind, d.window.start_s, d.window.end_s, d.window.requests) == ("fixed", 0, 60, 2)
    assert d.requests_per_second == pytest.approx(2 / 60)
    assert (d.input_tokens_mean, d.output_tokens_mean) == pytest.approx((150, 15))


def test_window_none_measures_the_whole_trace(tmp_path: Path) -> None:
    d = derive(write_azure(tmp_path, REQUESTS), window_s=None)
    assert (d.window.kind, d.window.start_s, d.window.end_s, d.window.requests) == ("whole", 0, 400, 6)
    assert d.requests_per_second == pytest.approx(6 / 400)
    assert (d.input_tokens_mean, d.output_tokens_mean) == pytest.approx((350, 35))


def test_windows_are_half_open_and_ties_go_to_the_earliest(tmp_path: Path) -> None:
    # 10-s windows each hold one request ([0,10) excludes t=10): the first one wins.
    d = derive(write_azure(tmp_path, REQUESTS), window_s=10)
    assert (d.window.start_s, d.window.requests) == (0, 1)


def test_a_window_ending_at_the_last_request_counts_it(tmp_path: Path) -> None:
    # Busiest at the end: 5-s windows from 0 and 50 hold 1; the last one, [95, 100], holds 3.
    d = derive(write_azure(tmp_path, [(0, 1, 1), (50, 1, 1), (98, 1, 1), (99, 1, 1), (100, 1, 1)]), window_s=5)
    assert (d.window.start_s, d.window.end_s, d.window.requests) == (95, 100, 3)
    whole = derive(write_azure(tmp_path, REQUESTS), window_s=400)
    assert (whole.window.requests, whole.requests_per_second) == (6, pytest.approx(6 / 400))


def test_mooncake_peak_window_from_unsorted_ms_timestamps(tmp_path: Path) -> None:
    # Seconds 5, 0, 1.5, 1, 1.999, 3. 1-s windows: [0,1) 1, [1,2) 3, [1.5,2.5) 2, [1.999,2.999) 1,
    # [3,4) 1, [4,5] 1.
    path = write_mooncake(tmp_path, [(5000, 1000, 100), (0, 10, 1), (1500, 30, 3), (1000, 20, 2),
                                     (1999, 50, 5), (3000, 40, 4)])
    d = derive(path, window_s=1, scale=0.5)
    assert (d.format, d.window.start_s, d.window.end_s, d.window.requests) == (TraceFormat.MOONCAKE, 1, 2, 3)
    assert d.requests_per_second == pytest.approx(0.5 * 3 / 1)
    assert (d.input_tokens_mean, d.output_tokens_mean) == pytest.approx((100 / 3, 10 / 3))
    assert (d.total_requests, d.trace_span_s, d.trace_start) == (6, 5, None)
    assert d.to_demand().model_dump(exclude={"size_mix", "peak_factor", "peak_source"}) == Demand(
        model="llama-8b", region="us-east", requests_per_second=1.5, input_tokens=33, output_tokens=3).model_dump(
        exclude={"size_mix", "peak_factor", "peak_source"})


def test_mooncake_fixed_window_and_simultaneous_requests(tmp_path: Path) -> None:
    path = write_mooncake(tmp_path, [(0, 10, 1), (0, 20, 2), (0, 30, 3), (10_000, 40, 4)])
    peak = derive(path, window_s=5)
    assert (peak.window.start_s, peak.window.requests, peak.requests_per_second) == (0, 3, pytest.approx(0.6))
    fixed = derive(path, window_s=5, start_s=5)
    assert (fixed.window.kind, fixed.window.requests, fixed.input_tokens_mean) == ("fixed", 1, 40)


def test_the_peak_window_matches_brute_force(tmp_path: Path) -> None:
    rng = random.Random(7)
    times = [round(rng.uniform(0, 600), 3) for _ in range(300)] + [0, 600]
    path = write_mooncake(tmp_path, [(round(t * 1000), 1, 1) for t in times])
    d = derive(path, window_s=37)
    ms = sorted(round(t * 1000) for t in times)
    # Arrivals are whole ms, so starts on a 1-ms grid see every distinct window; the last is closed.
    last = ms[-1] - 37_000
    best = max(bisect_left(ms, s + 37_000) - bisect_left(ms, s) for s in range(last))
    best = max(best, len(ms) - bisect_left(ms, last))
    assert d.window.requests == best
    assert d.requests_per_second == pytest.approx(best / 37)


def test_to_demand_rounds_token_means_to_at_least_one(tmp_path: Path) -> None:
    d = derive(write_azure(tmp_path, [(0, 3, 0), (60, 4, 0)]), window_s=None)
    assert d.to_demand().model_dump(exclude={"size_mix", "peak_factor", "peak_source"}) == Demand(
        model="llama-8b", region="us-east", requests_per_second=2 / 60, input_tokens=4, output_tokens=1).model_dump(
        exclude={"size_mix", "peak_factor", "peak_source"})
    # Zero generated tokens still make a bucket of at least 1 token (the spec's minimum).
    assert [(b.input_tokens, b.output_tokens, b.share) for b in d.to_demand().size_mix or []] == [(4, 1, 1.0)]


# --- reading ----------------------------------------------------------------------------------


def test_read_trace_streams_rows_in_file_order(tmp_path: Path) -> None:
    rows = list(read_trace(write_azure(tmp_path, REQUESTS[:2])))
    start = T0.replace(tzinfo=UTC).timestamp()
    assert [(t - start, n_in, n_out) for t, n_in, n_out in rows] == [
        (pytest.approx(110), 400, 40), (pytest.approx(0), 100, 10)]
    assert list(read_trace(write_mooncake(tmp_path, [(1500, 7, 8)]))) == [(1.5, 7, 8)]


def test_azure_2024_timestamps_carry_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "AzureLLMInferenceTrace_code_1week.csv"
    path.write_text(f"{AZURE_HEADER}\n2024-05-10 00:00:00.009930+00:00,10,1\n"
                    "2024-05-10 01:00:10+01:00,30,3\n2024-05-10 00:00:05+00:00,20,2\n")
    d = derive(path, window_s=None)
    assert d.trace_start == datetime(2024, 5, 10, 0, 0, 0, 9930, tzinfo=UTC)
    assert (d.trace_span_s, d.input_tokens_mean) == (pytest.approx(9.99007), 20)


def test_azure_columns_in_any_order_with_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes("\ufeffGeneratedTokens,TIMESTAMP,ContextTokens\r\n7,2023-11-16 18:00:00,70\r\n\r\n"
                     "9,2023-11-16 18:00:10.5,90\r\n".encode())
    d = derive(path, window_s=None)
    assert (d.total_requests, d.trace_span_s, d.input_tokens_mean, d.output_tokens_mean) == (2, 10.5, 80, 8)


@pytest.mark.parametrize(
    ("name", "first_line", "fmt"),
    [("trace.csv", "anything", TraceFormat.AZURE), ("trace.JSONL", "anything", TraceFormat.MOONCAKE),
     ("trace.ndjson", "anything", TraceFormat.MOONCAKE), ("trace.log", AZURE_HEADER, TraceFormat.AZURE),
     ("trace", '{"timestamp": 0}', TraceFormat.MOONCAKE)],
)
def test_format_from_extension_else_first_line(tmp_path: Path, name: str, first_line: str, fmt: TraceFormat) -> None:
    path = tmp_path / name
    path.write_text(f"\n{first_line}\n")
    assert detect_format(path) is fmt


def test_a_named_format_overrides_detection(tmp_path: Path) -> None:
    path = write_mooncake(tmp_path, [(0, 5, 6), (30_000, 7, 8)], name="misnamed.csv")
    with pytest.raises(InputError, match=r"misnamed.csv:1: missing column\(s\) TIMESTAMP.*or name the format"):
        derive(path, window_s=None)
    assert derive(path, window_s=None, fmt=TraceFormat.MOONCAKE).total_requests == 2


def test_an_unknown_format_asks_for_one(tmp_path: Path) -> None:
    path = tmp_path / "trace.txt"
    path.write_text("time;tokens\n")
    with pytest.raises(InputError, match=r"cannot tell the trace format from the extension '\.txt' or the first "
                                         r"line 'time;tokens'\. To fix: name the file \*\.csv \(Azure\) or \*\.jsonl"):
        derive(path)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["not-a-time,1,2"], r":3: TIMESTAMP 'not-a-time' is not a date-time like '2023-11-16 18:17:03.9799600'"),
        (["2023-11-16 18:00:05,-5,2"], r":3: ContextTokens '-5' is not a whole number >= 0"),
        (["2023-11-16 18:00:05,5,2.5"], r":3: GeneratedTokens '2.5' is not a whole number >= 0"),
        (["2023-11-16 18:00:05,5"], r":3: expected 3 fields, found 2"),
        (["", "2023-11-16 18:00:05,5,"], r":4: GeneratedTokens '' is not a whole number"),
    ],
)
def test_bad_azure_rows_name_their_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("\n".join([AZURE_HEADER, azure_line(0, 1, 1), *lines]) + "\n")
    with pytest.raises(InputError, match=message + r".*To fix: correct or delete it"):
        derive(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{bad", r":2: not valid JSON"),
        ("[1, 2]", r":2: expected a JSON object, found list"),
        ('{"timestamp": 5, "input_length": 1}', r":2: missing field\(s\) output_length"),
        ('{"timestamp": 5, "input_length": "12", "output_length": 1}', r":2: input_length '12' is not a whole"),
        ('{"timestamp": 5, "input_length": 1, "output_length": -1}', r":2: output_length -1 is not a whole"),
        ('{"timestamp": null, "input_length": 1, "output_length": 1}', r":2: timestamp None is not a number"),
        ('{"timestamp": NaN, "input_length": 1, "output_length": 1}', r":2: timestamp nan is not a number"),
    ],
)
def test_bad_mooncake_lines_name_their_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 1, "output_length": 1}\n' + line + "\n")
    with pytest.raises(InputError, match=message):
        derive(path)


def test_missing_azure_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("TIMESTAMP,Tokens\n2023-11-16 18:00:00,5\n")
    with pytest.raises(InputError, match=r"trace.csv:1: missing column\(s\) ContextTokens, GeneratedTokens"):
        derive(path)


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope.csv: no such trace file"):
        derive(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"nope: no such trace file"):
        derive(tmp_path / "nope")


def test_a_compressed_trace_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes(gzip.compress(f"{AZURE_HEADER}\n{azure_line(0, 1, 1)}\n".encode()))
    with pytest.raises(InputError, match=r"not a text trace .*To fix: decompress it"):
        derive(path)


@pytest.mark.parametrize(("name", "text"), [("t.csv", ""), ("t.csv", AZURE_HEADER + "\n"), ("t.jsonl", ""),
                                            ("t.jsonl", "\n\n")])
def test_an_empty_trace_is_an_input_error(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=r"the trace holds no requests"):
        derive(path)


def test_a_window_longer_than_the_trace_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"window \(500 s\) is longer than the trace \(400 s .*at most 400 s"):
        derive(write_azure(tmp_path, REQUESTS), window_s=500)
    with pytest.raises(InputError, match=r"window \(300 s\) is longer than the trace \(0 s"):
        derive(write_azure(tmp_path, [(0, 1, 1)]))
    with pytest.raises(InputError, match=r"same instant"):
        derive(write_azure(tmp_path, [(0, 1, 1)]), window_s=None)


def test_a_fixed_window_must_lie_inside_the_trace_and_hold_requests(tmp_path: Path) -> None:
    path = write_azure(tmp_path, REQUESTS)
    with pytest.raises(InputError, match=r"window 350-410 s ends after the trace \(400 s.*at most at 340 s"):
        derive(path, window_s=60, start_s=350)
    with pytest.raises(InputError, match=r"no requests arrive in the window 200-260 s"):
        derive(path, window_s=60, start_s=200)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0}, r"scale must be a positive number, not 0"),
        ({"scale": -1.5}, r"scale must be a positive number, not -1.5"),
        ({"scale": float("nan")}, r"scale must be a positive number, not nan"),
        ({"window_s": 0}, r"window_s must be a positive number"),
        ({"start_s": -1}, r"start_s must be seconds from the trace's first request \(>= 0\)"),
        ({"start_s": 0, "window_s": None}, r"start_s picks a window of window_s seconds"),
        ({"model": ""}, r"names no model or user region"),
    ],
)
def test_bad_arguments_are_input_errors(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args = {"model": "llama-8b", "region": "us-east", **kwargs}
    with pytest.raises(InputError, match=message):
        derive_demand(write_azure(tmp_path, REQUESTS), **args)


# --- the bundled traces (SOURCE.md's figures) --------------------------------------------------


@pytest.fixture
def traces_dir() -> Path:
    path = load_settings().shared_data / "llm_traces"
    if not path.is_dir():
        pytest.skip(f"the shared trace data is not here ({path}); set GPUFLEET_SHARED_DATA to run these")
    return path


def test_azure_code_trace_totals_and_means(traces_dir: Path) -> None:
    d = derive(traces_dir / "azure_llm_2023_code.csv", window_s=None)
    assert (d.format, d.total_requests, d.window.requests) == (TraceFormat.AZURE, 8819, 8819)
    assert 56 * 60 < d.trace_span_s < 58 * 60
    assert d.trace_start == datetime(2023, 11, 16, 18, 17, 3, 979960, tzinfo=UTC)
    assert (round(d.input_tokens_mean), round(d.output_tokens_mean, 1)) == (2048, 27.9)


def test_azure_code_trace_peak_five_minutes(traces_dir: Path) -> None:
    d = derive(traces_dir / "azure_llm_2023_code.csv")
    assert (d.window.kind, d.window.requests, round(d.window.start_s, 1)) == ("peak", 1379, 568.5)
    assert (round(d.requests_per_second, 2), round(d.input_tokens_mean), round(d.output_tokens_mean, 1)) == (
        4.6, 1917, 28.8)


def test_mooncake_trace_totals_means_and_peak(traces_dir: Path) -> None:
    path = traces_dir / "mooncake_fast25_synthetic_trace.jsonl"
    whole = derive(path, window_s=None)
    assert (whole.format, whole.total_requests, whole.trace_span_s) == (TraceFormat.MOONCAKE, 3993, 1022.025)
    assert (round(whole.input_tokens_mean), round(whole.output_tokens_mean, 1)) == (15325, 149.1)
    peak = derive(path)
    assert (peak.window.requests, peak.window.start_s, round(peak.requests_per_second, 2)) == (1244, 714.202, 4.15)
