"""Send a schedule with vLLM's serving benchmark and read back what each request measured.

Each model's requests become a `timed_trace` JSONL (vLLM 0.32+: `timestamp` seconds from the
start, `input_length`, `output_length`, `hash_ids`); `vllm bench serve --dataset-name
timed_trace` sends each one at its time, as a streaming completion whose prompt is exactly
`input_length` token ids of the served model's tokenizer, with `max_tokens` = `output_length`
and `ignore_eos`. Its detailed result (`--save-detailed`) gives per request TTFT, inter-token
latencies, end-to-end latency and error. The benchmark's ready check and warm-up are off, so
the replica sees the trace's requests and nothing else. One benchmark process per model, all at once.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import GpufleetError
from orchestrator.replay.schedule import ReplayRequest, Schedule

CHUNK_TOKENS = 16  # tokens per hash id (the benchmark's --timed-trace-chunk-hash-size)
TIMEOUT_MARGIN_S = 300.0
_PROGRESS = re.compile(r"(\d+)/(\d+) \[")


@dataclass(frozen=True)
class RequestResult:
    """What one replayed request measured (times in ms; None where it failed before that point)."""

    model: str
    region: str | None
    at_s: float
    input_tokens: int
    output_tokens: int
    ok: bool
    input_tokens_served: int  # prompt tokens the server counted (its usage), 0 when it failed
    ttft_ms: float | None
    tpot_ms: float | None
    e2e_ms: float | None
    output_tokens_served: int
    error: str | None = None


def timed_trace_lines(requests: list[ReplayRequest], first_hash: int = 0) -> list[str]:
    """The benchmark's timed_trace JSONL: each request's own hash ids, so no two share a cached prefix."""
    lines, next_hash = [], first_hash
    for r in requests:
        n = math.ceil(r.input_tokens / CHUNK_TOKENS)
        lines.append(json.dumps({"timestamp": r.at_s, "input_length": r.input_tokens,
                                 "output_length": r.output_tokens, "hash_ids": list(range(next_hash, next_hash + n))}))
        next_hash += n
    return lines


def bench_command(model: str, base_url: str, tokenizer: str, trace: Path, results: Path, count: int) -> list[str]:
    return [
        sys.executable, "-m", "orchestrator.profiling.vllm_bench",
        "--backend", "vllm", "--base-url", base_url, "--endpoint", "/v1/completions",
        "--model", model, "--tokenizer", tokenizer,
        "--dataset-name", "timed_trace", "--dataset-path", str(trace), "--num-prompts", str(count),
        "--timed-trace-chunk-hash-size", str(CHUNK_TOKENS), "--ignore-eos", "--seed", "0",
        "--ready-check-timeout-sec", "0", "--num-warmups", "0",
        "--percentile-metrics", "ttft,tpot,e2el", "--metric-percentiles", "50,95",
        "--save-result", "--save-detailed", "--result-dir", str(results.parent), "--result-filename", results.name,
    ]


def parse_detailed(requests: list[ReplayRequest], result: dict) -> list[RequestResult]:
    """Per-request results from the benchmark's detailed JSON (its lists are in the trace's order)."""
    ttfts, latencies, errors = result["ttfts"], result["latencies"], result["errors"]
    prompts = result.get("input_lens") or [r.input_tokens for r in requests]
    served, itls = result["output_lens"], result.get("itls") or [[] for _ in requests]
    if len(ttfts) != len(requests):
        raise GpufleetError(f"vLLM's serving benchmark reported {len(ttfts)} requests of the {len(requests)} sent")
    out = []
    for i, r in enumerate(requests):
        ok = not errors[i] and bool(latencies[i])
        n = served[i] or len(itls[i]) + 1
        tpot = (latencies[i] - ttfts[i]) / (n - 1) * 1000 if ok and n > 1 else (0.0 if ok else None)
        out.append(RequestResult(model=r.model, region=r.region, at_s=r.at_s, input_tokens=r.input_tokens,
                                 output_tokens=r.output_tokens, ok=ok,
                                 input_tokens_served=prompts[i] if ok else 0, ttft_ms=ttfts[i] * 1000 if ok else None,
                                 tpot_ms=tpot, e2e_ms=latencies[i] * 1000 if ok else None,
                                 output_tokens_served=served[i] if ok else 0,
                                 error=None if ok else (errors[i] or "no response")[:500]))
    return out


def run_replay(schedule: Schedule, base_url: str, api_key: str, tokenizers: dict[str, str],
               progress: Callable[[int, int], None] | None = None) -> list[RequestResult]:
    """Replay `schedule` against `base_url` (an OpenAI-compatible gateway); results in the schedule's order per model.

    `tokenizers`: each model's tokenizer (a directory or hub id), the one its replicas serve with.
    `progress(done, total)` is called as requests finish.
    """
    groups = schedule.by_model()
    total = len(schedule.requests)
    env = dict(os.environ, OPENAI_API_KEY=api_key, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    done: dict[str, int] = {m: 0 for m in groups}
    lock = threading.Lock()

    def follow(model: str, stream) -> list[str]:  # noqa: ANN001 (a text pipe)
        tail: list[str] = []
        buffer = ""
        while chunk := stream.read(256):
            buffer += chunk
            *parts, buffer = re.split(r"[\r\n]", buffer)
            for part in parts:
                if part.strip():
                    tail = (tail + [part])[-20:]
                if (m := _PROGRESS.search(part)) and int(m.group(2)) == len(groups[model]):
                    with lock:
                        done[model] = int(m.group(1))
                        if progress:
                            progress(sum(done.values()), total)
        return tail

    timeout = schedule.duration_s + TIMEOUT_MARGIN_S
    with tempfile.TemporaryDirectory(prefix="gpufleet-replay-") as work:
        runs = []
        for k, (model, requests) in enumerate(groups.items()):
            trace = Path(work) / f"trace-{k}.jsonl"
            trace.write_text("\n".join(timed_trace_lines(requests)) + "\n", encoding="utf-8")
            results = Path(work) / f"result-{k}.json"
            command = bench_command(model, base_url, tokenizers[model], trace, results, len(requests))
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            tails: list[list[str]] = []
            reader = threading.Thread(target=lambda p=process, m=model, t=tails: t.append(follow(m, p.stderr)), daemon=True)
            reader.start()
            runs.append((model, requests, results, process, reader, tails))
        out: list[RequestResult] = []
        for model, requests, results, process, reader, tails in runs:
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise GpufleetError(f"replaying {model} took longer than {timeout:.0f} s; stopped it") from None
            reader.join(timeout=10)
            if code != 0 or not results.exists():
                tail = " | ".join((tails[0] if tails else [])[-3:])
                raise GpufleetError(f"vLLM's serving benchmark failed replaying {model} (exit {code}): {tail}")
            out += parse_detailed(requests, json.loads(results.read_text(encoding="utf-8")))
    return out
