"""Replay: the schedule (window, speed, scale, clipping), the report, and one replay through vLLM's
serving benchmark against a fake streaming OpenAI worker (no model: it streams as many tokens as asked)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import jsonschema
import pytest
from werkzeug.wrappers import Request, Response

from orchestrator.errors import InputError
from orchestrator.replay import build_report, build_schedule, run_replay
from orchestrator.replay.report import percentile, plan_promise
from orchestrator.replay.runner import RequestResult, parse_detailed, timed_trace_lines
from orchestrator.spec import load_spec
from tests.conftest import ENVIRONMENTS, REPO
from tests.fakes.openai_worker import FakeOpenAiWorker


class StreamingWorker(FakeOpenAiWorker):
    """Streams one SSE chunk per requested token after `ttft_s`, `tpot_s` apart; records each request's
    prompt length, max_tokens and ignore_eos; answers 500 to the requests whose index is in `fail`."""

    def __init__(self, model: str, ttft_s: float = 0.01, tpot_s: float = 0.002, fail: frozenset[int] = frozenset()):
        super().__init__(model)
        self.ttft_s, self.tpot_s, self.fail = ttft_s, tpot_s, fail
        self.seen: list[dict] = []
        self.sent_at: list[float] = []
        self._seen_lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        if request.path != "/v1/completions":
            return super().handle(request)
        body = request.get_json()
        with self._seen_lock:
            index = len(self.seen)
            self.seen.append(body)
            self.sent_at.append(time.monotonic())
        if index in self.fail:
            return Response('{"error": "boom"}', 500, content_type="application/json")
        n, prompt = body["max_tokens"], len(body["prompt"])

        def stream():
            time.sleep(self.ttft_s)
            for k in range(n):
                if k:
                    time.sleep(self.tpot_s)
                yield f'data: {json.dumps({"choices": [{"index": 0, "text": "x"}]})}\n\n'.encode()
            usage = {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n}
            yield f'data: {json.dumps({"choices": [], "usage": usage})}\n\n'.encode()
            yield b"data: [DONE]\n\n"

        return Response(stream(), 200, content_type="text/event-stream")


@pytest.fixture(scope="module")
def spec():
    return load_spec(ENVIRONMENTS / "local.yaml")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def plain_trace(tmp_path: Path, n: int = 10, gap_s: float = 1.0, tokens: tuple[int, int] = (20, 5)) -> Path:
    return write_jsonl(tmp_path / "trace.jsonl", [{"timestamp": 100 + i * gap_s, "input_tokens": tokens[0],
                                                   "output_tokens": tokens[1]} for i in range(n)])


def test_times_are_from_the_window_start_divided_by_speed(tmp_path, spec):
    s = build_schedule(plain_trace(tmp_path), spec, window_s=4, start_s=2, speed=2)
    assert [r.at_s for r in s.requests] == [0.0, 0.5, 1.0, 1.5]
    assert s.duration_s == 2 and s.format.value == "jsonl" and s.requests[0].model == "tiny-llama"


def test_without_a_start_the_window_is_the_busiest(tmp_path, spec):
    records = [{"timestamp": t, "input_tokens": 1, "output_tokens": 1} for t in (0, 10, 20, 20.5, 21, 21.5, 30)]
    s = build_schedule(write_jsonl(tmp_path / "t.jsonl", records), spec, window_s=2)
    assert (s.window.kind, s.window.start_s, len(s.requests)) == ("peak", 20, 4)


def test_scale_duplicates_whole_copies_and_thins_the_rest_repeatably(tmp_path, spec):
    path = plain_trace(tmp_path, n=400)
    assert len(build_schedule(path, spec, scale=2).requests) == 800
    half = build_schedule(path, spec, scale=0.5, seed=7)
    assert 160 < len(half.requests) < 240
    assert half.requests == build_schedule(path, spec, scale=0.5, seed=7).requests
    assert 560 < len(build_schedule(path, spec, scale=1.5).requests) < 640


def test_lengths_beyond_max_model_len_are_clipped_and_counted(tmp_path, spec):
    s = build_schedule(plain_trace(tmp_path, n=3, tokens=(2000, 400)), spec)
    assert {(r.input_tokens, r.output_tokens) for r in s.requests} == {(384, 128)}  # 512: out <= 512/4
    assert s.clipped == 3 and s.limits == {"tiny-llama": 512}
    assert build_schedule(plain_trace(tmp_path, n=3, tokens=(100, 0)), spec).requests[0].output_tokens == 1


def test_plain_jsonl_names_model_and_region_and_bad_records_say_where(tmp_path, spec):
    path = write_jsonl(tmp_path / "t.jsonl", [{"timestamp": 0, "input_tokens": 5, "output_tokens": 2,
                                               "region": "eu"}])
    assert build_schedule(path, spec).requests[0].region == "eu"
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"timestamp": 0, "input_tokens": 5, "output_tokens": 2},
                                               {"timestamp": 1, "input_tokens": -1, "output_tokens": 2}])
    with pytest.raises(InputError, match=r"bad.jsonl:2: input_tokens -1 is not a whole number >= 0"):
        build_schedule(bad, spec)
    other = write_jsonl(tmp_path / "m.jsonl", [{"timestamp": 0, "input_tokens": 5, "output_tokens": 2, "model": "gpt"}])
    with pytest.raises(InputError, match="model 'gpt', which the spec does not serve; allowed: tiny-llama"):
        build_schedule(other, spec)
    with pytest.raises(InputError, match="--speed must be a number above 0"):
        build_schedule(path, spec, speed=0)


def test_azure_and_mooncake_traces_replay_too(tmp_path, spec):
    azure = tmp_path / "a.csv"
    azure.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00.0,10,3\n2023-11-16 18:00:01.5,20,4\n")
    assert [(r.at_s, r.input_tokens) for r in build_schedule(azure, spec).requests] == [(0, 10), (1.5, 20)]
    moon = write_jsonl(tmp_path / "m.jsonl", [{"timestamp": 0, "input_length": 7, "output_length": 2, "hash_ids": [1]},
                                              {"timestamp": 500, "input_length": 9, "output_length": 2, "hash_ids": [1]}])
    s = build_schedule(moon, spec)
    assert (s.format.value, [r.at_s for r in s.requests]) == ("mooncake", [0, 0.5])


def test_the_benchmark_trace_gives_each_request_enough_unshared_hash_ids(tmp_path, spec):
    s = build_schedule(plain_trace(tmp_path, n=2, tokens=(33, 4)), spec)
    lines = [json.loads(line) for line in timed_trace_lines(s.requests)]
    assert lines[0] == {"timestamp": 0.0, "input_length": 33, "output_length": 4, "hash_ids": [0, 1, 2]}
    assert lines[1]["hash_ids"] == [3, 4, 5]


def result(ttft: float, tpot: float, ok: bool = True) -> RequestResult:
    return RequestResult(model="tiny-llama", region=None, at_s=0, input_tokens=1, output_tokens=2, ok=ok,
                         input_tokens_served=1 if ok else 0, ttft_ms=ttft if ok else None,
                         tpot_ms=tpot if ok else None, e2e_ms=ttft + tpot if ok else None,
                         output_tokens_served=2 if ok else 0, error=None if ok else "boom")


def test_attainment_counts_requests_within_both_bounds_and_failures_count_against(tmp_path, spec):
    s = build_schedule(plain_trace(tmp_path, n=20), spec)
    # local SLO: TTFT 5000 ms, TPOT 500 ms
    results = [result(100, 10)] * 17 + [result(6000, 10), result(100, 600), result(0, 0, ok=False)]
    report = build_report(spec, "local", "http://gw", s, results, None)
    m = report.models[0]
    assert (m.requests, m.errors, m.within_slo, m.attainment) == (20, 1, 17, 0.85)
    assert (m.ttft_p50_ms, m.tpot_p95_ms, m.meets_slo, m.plan) == (100, 600, False, None)  # 3 of 20 over: > p95
    ok = build_report(spec, "local", "http://gw", s, [result(100, 10)] * 19 + [result(6000, 10)], None).models[0]
    assert ok.meets_slo and ok.attainment == 0.95 and ok.offered_rps == pytest.approx(20 / 19)
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([], 95) is None


def test_the_plans_promise_is_its_planned_rate_and_placed_capacity(spec):
    from orchestrator.catalog.price_catalog import load_price_catalog
    from orchestrator.inputs import load_inputs
    from orchestrator.planner import plan_fleet

    local, inputs = load_inputs(ENVIRONMENTS / "local.yaml", load_price_catalog())
    placement = plan_fleet(local, inputs)
    promise = plan_promise(placement, "tiny-llama")
    capacity = next(c.rps_per_replica for c in placement.capacity if c.model == "tiny-llama")
    assert promise.planned_rps == pytest.approx(0.5) and promise.replicas >= 1
    assert promise.capacity_rps == pytest.approx(promise.replicas * capacity)
    assert plan_promise(None, "tiny-llama") is None


def test_parse_detailed_turns_the_benchmarks_lists_into_requests(tmp_path, spec):
    s = build_schedule(plain_trace(tmp_path, n=2, tokens=(20, 5)), spec)
    detailed = {"ttfts": [0.1, 0.0], "latencies": [0.5, 0.0], "errors": ["", "Bad Gateway"], "output_lens": [5, 0],
                "input_lens": [20, 20], "itls": [[0.1] * 4, []]}
    a, b = parse_detailed(s.requests, detailed)
    assert (a.ok, a.ttft_ms, a.tpot_ms, a.e2e_ms, a.input_tokens_served) == (True, 100, pytest.approx(100), 500, 20)
    assert (b.ok, b.ttft_ms, b.error) == (False, None, "Bad Gateway")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> str:
    from orchestrator.replica.tiny_model import ensure_tiny_model

    path = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    ensure_tiny_model(path)
    return str(path)


def test_a_replay_sends_each_request_at_its_time_with_exact_lengths_and_measures_it(tmp_path, spec, tokenizer):
    records = [{"timestamp": t, "input_tokens": n_in, "output_tokens": n_out}
               for t, n_in, n_out in ((0, 40, 6), (0.6, 17, 3), (1.2, 100, 8), (1.8, 5, 1), (2.4, 64, 4))]
    s = build_schedule(write_jsonl(tmp_path / "t.jsonl", records), spec, speed=2)
    worker = StreamingWorker("tiny-llama", ttft_s=0.02, tpot_s=0.005, fail=frozenset({3}))
    seen = []
    with worker.serve() as url:
        results = run_replay(s, url, "key", {"tiny-llama": tokenizer}, progress=lambda done, total: seen.append(total))
    assert [len(b["prompt"]) for b in worker.seen] == [40, 17, 100, 5, 64]
    assert [b["max_tokens"] for b in worker.seen] == [6, 3, 8, 1, 4]
    assert all(b["ignore_eos"] and b["stream"] for b in worker.seen)
    gaps = [b - a for a, b in zip(worker.sent_at, worker.sent_at[1:], strict=False)]
    assert all(0.15 < g < 0.55 for g in gaps), gaps  # 0.6 s apart in the trace, at speed 2: 0.3 s
    assert [r.ok for r in results] == [True, True, True, False, True]
    ok = [r for r in results if r.ok]
    assert all(15 <= r.ttft_ms < 1000 and r.e2e_ms >= r.ttft_ms for r in ok)
    assert [r.input_tokens_served for r in ok] == [40, 17, 100, 64] and [r.output_tokens_served for r in ok] == [6, 3, 8, 4]
    assert results[0].tpot_ms >= 4 and results[3].error
    report = build_report(spec, "local", url, s, results, None)
    assert report.models[0].errors == 1 and report.models[0].within_slo == 4


def test_the_command_reports_json_beside_the_plan_and_keeps_the_run(tmp_path, capsys, gpufleet_home, tokenizer):
    import sqlite3

    from tests.conftest import run_cli

    (gpufleet_home / "models").mkdir()
    (gpufleet_home / "models" / "tiny-llama").symlink_to(tokenizer)
    assert run_cli(capsys, "plan", "--env", "local", "--format", "json")[0] == 0
    trace = plain_trace(tmp_path, n=4, gap_s=0.2, tokens=(30, 3))
    worker = StreamingWorker("tiny-llama")
    with worker.serve() as url:
        code, out, err = run_cli(capsys, "replay", "--env", "local", "--trace", str(trace), "--gateway-url", url,
                                 "--scale", "2", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    jsonschema.validate(report, json.loads((REPO / "docs" / "replay-report.schema.json").read_text()))  # the contract
    m = report["models"][0]
    assert (report["requests"], m["requests"], m["errors"], m["attainment"], m["meets_slo"]) == (8, 8, 0, 1.0, True)
    assert m["plan"]["planned_rps"] == pytest.approx(0.5) and m["plan"]["capacity_rps"] > 0
    assert len(worker.seen) == 8
    with sqlite3.connect(gpufleet_home / "state" / "local" / "state.db") as db:
        rows = db.execute("SELECT environment, requests, all_met, report_json FROM replay_runs").fetchall()
    assert [(e, n, met) for e, n, met, _ in rows] == [("local", 8, 1)] and json.loads(rows[0][3]) == report


@pytest.mark.parametrize(("args", "message"), [
    (["--speed", "0"], "--speed must be a number above 0"),
    (["--window-s", "100"], "the window (100 s) is longer than the trace"),
    (["--model", "nope"], "--model nope: no such model in the spec; allowed: tiny-llama"),
])
def test_bad_input_exits_2_and_says_what_is_allowed(tmp_path, capsys, args, message):
    from tests.conftest import run_cli

    code, out, err = run_cli(capsys, "replay", "--env", "local", "--trace", str(plain_trace(tmp_path)), *args)
    assert code == 2 and message in err.replace("\n", " ") and out == ""


def test_plain_jsonl_is_detected_and_feeds_plan_trace_too(tmp_path):
    from orchestrator.demand import TraceFormat, derive_demand, detect_format

    path = plain_trace(tmp_path, n=5)
    assert detect_format(path) is TraceFormat.JSONL
    d = derive_demand(path, model="m", region="r", window_s=None)
    assert (d.format, d.total_requests, d.requests_per_second, d.input_tokens_mean) == (TraceFormat.JSONL, 5, 1.25, 20)
