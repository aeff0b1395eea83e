"""The spec's demand replaced from a trace or from measured samples (`with_trace_demand`, `demand_for`), and `plan`'s options."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from orchestrator.demand import demand_for, with_trace_demand
from orchestrator.errors import InputError
from orchestrator.ledger import ReplicaTokens, TokenScrape, open_ledger, record_tokens
from orchestrator.settings import load_settings
from orchestrator.spec import load_spec
from tests.conftest import ENVIRONMENTS
from tests.conftest import run_cli as run

NOW = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def hybrid():
    return load_spec(ENVIRONMENTS / "hybrid.yaml")


@pytest.fixture
def local():
    return load_spec(ENVIRONMENTS / "local.yaml")


def mooncake(tmp_path: Path, rows: list[tuple[float, int, int]]) -> Path:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"timestamp": t * 1000, "input_length": i, "output_length": o, "hash_ids": []}) + "\n"
                            for t, i, o in rows))
    return path


def demand_of(spec) -> dict[tuple[str, str], tuple[float, int, int]]:
    return {(d.model, d.region): (d.requests_per_second, d.input_tokens, d.output_tokens) for d in spec.demand}


def test_a_trace_replaces_one_model_and_region_and_nothing_else(hybrid, tmp_path: Path) -> None:
    trace = mooncake(tmp_path, [(t, 500, 50) for t in range(0, 20, 2)])  # 10 requests over 18 s
    before = demand_of(hybrid)
    after = demand_of(with_trace_demand(hybrid, trace, "qwen2.5-32b", "frankfurt", window_s=10, scale=2))
    # the busiest 10 s is [8, 18], closed as it ends at the last request: 6 requests
    assert after[("qwen2.5-32b", "frankfurt")] == (pytest.approx(6 / 10 * 2), 500, 50)
    del before[("qwen2.5-32b", "frankfurt")], after[("qwen2.5-32b", "frankfurt")]
    assert after == before
    assert demand_of(hybrid)[("qwen2.5-32b", "frankfurt")] == (10, 2048, 28)  # the input spec is not changed


def test_a_trace_defaults_to_the_only_model_and_region(local, tmp_path: Path) -> None:
    trace = mooncake(tmp_path, [(0, 100, 20), (1, 300, 40)])
    assert demand_of(with_trace_demand(local, trace, None, None, window_s=None)) == {("tiny-llama", "local"): (2.0, 200, 30)}


@pytest.mark.parametrize(("model", "region", "message"), [
    (None, "frankfurt", "--trace needs --trace-model: the spec has models llama-3.1-8b, llama-3.3-70b, qwen2.5-32b"),
    ("gpt", "frankfurt", "--trace-model 'gpt' is not a model of the spec; allowed: llama-3.1-8b, llama-3.3-70b, qwen2.5-32b"),
    ("qwen2.5-32b", None, "--trace needs --trace-region: the spec's demand comes from chicago, frankfurt, london"),
])
def test_a_trace_that_cannot_be_assigned_is_input_error(hybrid, tmp_path: Path, model, region, message) -> None:
    trace = mooncake(tmp_path, [(0, 1, 1), (1, 1, 1)])
    with pytest.raises(InputError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        with_trace_demand(hybrid, trace, model, region)


def test_without_a_source_the_spec_is_unchanged(hybrid) -> None:
    assert demand_for(hybrid) == (hybrid, [])


def test_the_trace_note_says_what_was_read(local, tmp_path: Path) -> None:
    trace = mooncake(tmp_path, [(0, 100, 20), (1, 300, 40)])
    spec, notes = demand_for(local, trace=trace, window_s=None, scale=3)
    assert demand_of(spec) == {("tiny-llama", "local"): (6.0, 200, 30)}  # 2 requests in 1 s, x3
    assert notes == [f"tiny-llama from local: 6 req/s, mean 200 prompt / 30 generated tokens, from {trace} "
                     "(whole window 0-1 s, 2 requests, x3); 2 size buckets; peak factor 1 (the mean: the whole trace "
                     "of t.jsonl is no longer than the 10 s burst window)"]


def test_measured_then_trace_the_trace_wins_its_region(hybrid, tmp_path: Path) -> None:
    store = open_ledger(load_settings(), "hybrid")
    for t, served in ((NOW - dt.timedelta(seconds=300), 0), (NOW, 1400)):  # 1400 requests in 300 s
        record_tokens(store, "hybrid", TokenScrape(at=t, replicas=[ReplicaTokens(
            replica="r1", model="llama-3.1-8b", pool="p", provider="aws", requests_total=served,
            prompt_tokens_total=served * 10, generation_tokens_total=served * 2)]))
    trace = mooncake(tmp_path, [(0, 700, 70), (1, 700, 70)])
    spec, notes = demand_for(hybrid, trace=trace, trace_model="llama-3.1-8b", trace_region="paris", window_s=None,
                             measured_window_s=300, store=store, sample=lambda: None, now=NOW)
    store.close()
    after = demand_of(spec)
    assert after[("llama-3.1-8b", "virginia")] == (pytest.approx(1400 / 300 * 40 / 140), 10, 2)  # measured, virginia's share
    assert after[("llama-3.1-8b", "paris")] == (2.0, 700, 70)  # the trace, not the measured share
    assert after[("qwen2.5-32b", "frankfurt")] == (10, 2048, 28)  # not sampled: the spec's
    assert notes[0].startswith("llama-3.1-8b: measured 4.667 req/s") and notes[-1].startswith("llama-3.1-8b from paris: 2 req/s")


def test_measured_demand_opens_the_specs_state_database_and_takes_a_fresh_sample(local) -> None:
    taken = []
    spec, notes = demand_for(local, measured_window_s=60, sample=lambda: taken.append(True))
    assert taken == [True] and spec == local
    assert notes == ["tiny-llama: no counter samples in the last 60 s to measure from; keeping the spec's demand (0.5 req/s). "
                     "(Samples are recorded by `orchestrator status`, `spend record` and a running dashboard.)"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"measured_window_s": -5}, "the measured window must be a positive number of seconds, not -5"),
    ({"measured_window_s": 0}, "the measured window must be a positive number of seconds, not 0"),
    ({"measured_window_s": float("nan")}, "the measured window must be a positive number of seconds, not nan"),
    ({"measured_window_s": 10 * 86400}, "longer than the 345600 s the ledger's counter samples allow"),
    ({"measured_window_s": 300, "scale": 0}, "scale must be a positive number, not 0"),
])
def test_bad_measured_options_are_input_errors_before_anything_is_scraped(local, kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        demand_for(local, sample=lambda: pytest.fail("scraped despite bad input"), **kwargs)


# --- `orchestrator plan` with the shared options ------------------------------------------------


def test_plan_measures_demand_from_the_recorded_samples(capsys: pytest.CaptureFixture[str]) -> None:
    store = open_ledger(load_settings(), "local")
    now = dt.datetime.now(dt.UTC)
    for t, served in ((now - dt.timedelta(seconds=100), 0), (now - dt.timedelta(seconds=1), 198)):
        record_tokens(store, "local", TokenScrape(at=t, replicas=[ReplicaTokens(
            replica="http://127.0.0.1:1#7", model="tiny-llama", pool="local", provider="local", requests_total=served,
            prompt_tokens_total=served * 64, generation_tokens_total=served * 16)]))
    store.close()
    # no replica is recorded as ready, so the fresh scrape reads nothing and the two samples above are the window
    code, out, err = run(capsys, "plan", "--env", "local", "--measured-window", "120", "--format", "json",
                         "--no-baselines", "--no-save")
    assert code == 0, err
    [demand] = json.loads(out)["demand"]
    assert (demand["model"], demand["region"], demand["input_tokens"], demand["output_tokens"]) == ("tiny-llama", "local", 64, 16)
    assert demand["rps"] == pytest.approx(2.0)  # 198 requests in 99 s
    assert "demand: tiny-llama: measured 2 req/s (198 requests in 99 s" in err


def test_plan_with_a_negative_measured_window_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "--env", "local", "--measured-window", "-1", "--no-save")
    assert code == 2 and "the measured window must be a positive number of seconds, not -1" in err
