"""What the gateway (vllm-router) costs over talking to a replica directly, on the local fleet.

    python -m bench.bench_gateway

Starts one CPU vLLM replica of the tiny model behind the gateway (`orchestrator up` in a
throwaway GPUFLEET_HOME), then, alternating direct and gateway runs so drift hits both alike:

- added latency: single-token completions one at a time, p50 and p99 through the gateway
  minus the same percentiles direct (target: p50 <= 1 ms);
- throughput: 16 concurrent streams of 64 tokens, generated tokens per second through the
  gateway over direct (target: >= 95 %), with time to first token under that load.

Everything runs on 127.0.0.1 and is stopped at the end (`orchestrator down`).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
MODEL = "tiny-llama"
LATENCY_REQUESTS = 300
STREAMS = 16
STREAM_TOKENS = 64
THROUGHPUT_ROUNDS = 12


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


async def one_token(http: httpx.AsyncClient, url: str, headers: dict) -> float:
    start = time.perf_counter()
    response = await http.post(f"{url}/v1/completions", headers=headers,
                               json={"model": MODEL, "prompt": "hi", "max_tokens": 1})
    response.raise_for_status()
    return time.perf_counter() - start


async def stream(http: httpx.AsyncClient, url: str, headers: dict) -> tuple[int, float]:
    """(generated tokens, seconds to the first byte of output) of one streamed completion.

    The body is read as raw bytes and only its usage chunk parsed: on 2 cores a client that
    parses every event takes CPU from vLLM, and more so on whichever path sends more events.
    """
    body = {"model": MODEL, "prompt": "hello", "max_tokens": STREAM_TOKENS, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}
    start, first, tail = time.perf_counter(), None, b""
    async with http.stream("POST", f"{url}/v1/completions", headers=headers, json=body) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            first = first if first is not None else time.perf_counter() - start
            tail = (tail + chunk)[-4096:]
    usage = tail[tail.rindex(b'"usage"'):]
    tokens = int(usage.split(b'"completion_tokens":')[1].split(b",")[0].split(b"}")[0])
    return tokens, first or 0.0


async def measure(direct: str, gateway: str, headers: dict) -> dict[str, dict[str, list[float]]]:
    samples = {name: {"latency": [], "tps": [], "ttft": []} for name in ("direct", "gateway")}
    targets = {"direct": direct, "gateway": gateway}
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as http:
        for name in ("direct", "gateway"):  # warm both paths (connections, vLLM's first batches)
            await asyncio.gather(*(stream(http, targets[name], headers) for _ in range(STREAMS)))
            for _ in range(20):
                await one_token(http, targets[name], headers)
        for i in range(LATENCY_REQUESTS * 2):
            name = ("direct", "gateway")[i % 2]
            samples[name]["latency"].append(await one_token(http, targets[name], headers))
        for i in range(THROUGHPUT_ROUNDS * 2):
            name = ("direct", "gateway")[i % 2]
            start = time.perf_counter()
            results = await asyncio.gather(*(stream(http, targets[name], headers) for _ in range(STREAMS)))
            elapsed = time.perf_counter() - start
            samples[name]["tps"].append(sum(t for t, _ in results) / elapsed)
            samples[name]["ttft"].extend(first for _, first in results)
    return samples


def report(samples: dict[str, dict[str, list[float]]]) -> None:
    direct, gateway = samples["direct"], samples["gateway"]
    for q, target_ms in ((0.5, 1.0), (0.99, None)):
        added = (quantile(gateway["latency"], q) - quantile(direct["latency"], q)) * 1000
        line = (f"added latency p{round(q * 100)}, 1-token completion (direct {quantile(direct['latency'], q) * 1000:.1f} ms)"
                f"{added:10.2f} ms")
        print(line + (f"   target {target_ms:5.1f} ms   ratio {added / target_ms:5.2f}" if target_ms else ""))
    ratio = statistics.median(gateway["tps"]) / statistics.median(direct["tps"])
    spread = {name: f"{min(s['tps']):.0f}-{max(s['tps']):.0f}" for name, s in samples.items()}
    print(f"throughput, {STREAMS} concurrent streams x {STREAM_TOKENS} tokens, median of {THROUGHPUT_ROUNDS} rounds: "
          f"direct {statistics.median(direct['tps']):.0f} tok/s ({spread['direct']}), "
          f"gateway {statistics.median(gateway['tps']):.0f} tok/s ({spread['gateway']})")
    print(f"    -> gateway / direct {ratio:6.3f}   target >= 0.950   ratio {0.95 / ratio:5.2f}")
    print(f"TTFT p50 under {STREAMS} streams: direct {quantile(direct['ttft'], 0.5) * 1000:.1f} ms, "
          f"gateway {quantile(gateway['ttft'], 0.5) * 1000:.1f} ms")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gpufleet-bench-") as home:
        doc = yaml.safe_load((REPO / "environments" / "local.yaml").read_text())
        doc["models"][0] |= {"source": "${GPUFLEET_HOME}/models/tiny-llama", "min_replicas": 1}
        spec = Path(home) / "local.yaml"
        spec.write_text(yaml.safe_dump(doc))
        env = {k: v for k, v in os.environ.items() if k != "GPUFLEET_API_KEY"} | {"GPUFLEET_HOME": home}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "orchestrator", *args, "--spec", str(spec)], env=env,
                                  capture_output=True, text=True, timeout=900, check=True)

        try:
            status = json.loads(cli("up", "--no-demo", "--format", "json").stdout)
            key = (Path(home) / "state" / "local" / "gateway-api-key").read_text().strip()
            samples = asyncio.run(measure(status["replicas"][0]["url"], status["gateway"]["url"],
                                          {"Authorization": f"Bearer {key}"}))
        finally:
            cli("down")
    report(samples)


if __name__ == "__main__":
    main()
