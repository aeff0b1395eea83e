"""What the gateway costs: its OpenAI front over vllm-router alone, and both over a replica directly.

    python -m bench.bench_gateway

Starts one CPU vLLM replica of the tiny model behind the gateway (`orchestrator up` in a
throwaway GPUFLEET_HOME). Three paths to the same replica, taken in turn so that drift hits
all alike: `direct` (the replica), `router` (vllm-router's own port, what clients used before
the front) and `gateway` (the front, then the router):

- added latency: single-token completions one at a time, p50 and p99 of one path minus
  another's (target for the front, gateway - router: p50 <= 1 ms);
- throughput: 16 concurrent streams of 64 tokens, generated tokens per second over direct's
  (target: >= 95 %), with time to first token under that load.

Then the front alone, where vLLM's and the router's noise cannot hide it: in front of
`instant_upstream` (a stand-in for the router and a replica that answers at once), its p50
and p99 over the upstream's own, one request at a time; twice: with the worker registered
under the model's own name, and as `<model>@v1`, as the supervisor registers a version's
replicas (the front then rewrites each body's `model`: gateway/lanes.py).

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
ALONE_REQUESTS = 3000
ALONE_KEY = "bench-key"


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


async def measure(targets: dict[str, str], headers: dict) -> dict[str, dict[str, list[float]]]:
    samples = {name: {"latency": [], "tps": [], "ttft": []} for name in targets}
    names = list(targets)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as http:
        for name in names:  # warm every path (connections, vLLM's first batches)
            await asyncio.gather(*(stream(http, targets[name], headers) for _ in range(STREAMS)))
            for _ in range(20):
                await one_token(http, targets[name], headers)
        for i in range(LATENCY_REQUESTS * len(names)):
            name = names[i % len(names)]
            samples[name]["latency"].append(await one_token(http, targets[name], headers))
        for i in range(THROUGHPUT_ROUNDS * len(names)):
            name = names[i % len(names)]
            start = time.perf_counter()
            results = await asyncio.gather(*(stream(http, targets[name], headers) for _ in range(STREAMS)))
            elapsed = time.perf_counter() - start
            samples[name]["tps"].append(sum(t for t, _ in results) / elapsed)
            samples[name]["ttft"].extend(first for _, first in results)
    return samples


def report(samples: dict[str, dict[str, list[float]]]) -> None:
    for path, base, target_ms in (("gateway", "router", 1.0), ("router", "direct", None), ("gateway", "direct", None)):
        for q in (0.5, 0.99):
            ours, theirs = quantile(samples[path]["latency"], q), quantile(samples[base]["latency"], q)
            line = (f"added latency p{round(q * 100)}, {path} - {base} ({base} {theirs * 1000:.1f} ms)"
                    f"{(ours - theirs) * 1000:10.2f} ms")
            target = target_ms if q == 0.5 else None
            print(line + (f"   target {target:5.1f} ms   ratio {(ours - theirs) * 1000 / target:5.2f}" if target else ""))
    direct = statistics.median(samples["direct"]["tps"])
    spread = {name: f"{min(s['tps']):.0f}-{max(s['tps']):.0f}" for name, s in samples.items()}
    print(f"throughput, {STREAMS} concurrent streams x {STREAM_TOKENS} tokens, median of {THROUGHPUT_ROUNDS} rounds: "
          + ", ".join(f"{name} {statistics.median(s['tps']):.0f} tok/s ({spread[name]})" for name, s in samples.items()))
    for name in ("router", "gateway"):
        ratio = statistics.median(samples[name]["tps"]) / direct
        print(f"    -> {name} / direct {ratio:6.3f}   target >= 0.950   ratio {0.95 / ratio:5.2f}")
    print(f"TTFT p50 under {STREAMS} streams: "
          + ", ".join(f"{name} {quantile(s['ttft'], 0.5) * 1000:.1f} ms" for name, s in samples.items()))


def router_url(home: str) -> str:
    """The gateway's vllm-router port, from the gateway process's command line (`--router-port`)."""
    import sqlite3

    import psutil

    with sqlite3.connect(Path(home) / "state" / "local" / "state.db") as db:
        (pid,) = db.execute("SELECT pid FROM gateways").fetchone()
    argv = psutil.Process(pid).cmdline()
    return f"http://127.0.0.1:{argv[argv.index('--router-port') + 1]}"


async def instant_upstream(scope: dict, receive, send) -> None:
    """The router's worker list and a replica's completion, answered at once (ASGI, for uvicorn)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    here = f"http://127.0.0.1:{scope['server'][1]}"
    worker = os.environ.get("BENCH_WORKER_MODEL", MODEL)
    body = (json.dumps({"workers": [{"url": here, "model_id": worker, "is_healthy": True}]}) if scope["path"] == "/workers"
            else json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}) if scope["path"] == "/v1/models"
            else json.dumps({"object": "text_completion", "model": MODEL, "choices": [
                {"index": 0, "text": "x", "finish_reason": "length"}]})).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def front_app():
    """The gateway's front over `instant_upstream` (uvicorn --factory)."""
    from orchestrator.gateway.front import GatewayFront

    return GatewayFront(os.environ["BENCH_UPSTREAM"], ALONE_KEY).app


def front_alone(worker_model: str = MODEL) -> dict[str, list[float]]:
    """Seconds per 1-token completion, one at a time, to `instant_upstream` and through the front to it, the
    upstream's worker registered as `worker_model`."""
    from orchestrator.providers.local.processes import free_port

    upstream_port = free_port()
    front_port = free_port(avoid={upstream_port})
    urls = {"upstream": f"http://127.0.0.1:{upstream_port}", "front": f"http://127.0.0.1:{front_port}"}
    serve = [sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    servers = [subprocess.Popen([*serve, "bench.bench_gateway:instant_upstream", "--port", str(upstream_port)], cwd=REPO,
                                env=os.environ | {"BENCH_WORKER_MODEL": worker_model}),
               subprocess.Popen([*serve, "--factory", "bench.bench_gateway:front_app", "--port", str(front_port)],
                                cwd=REPO, env=os.environ | {"BENCH_UPSTREAM": urls["upstream"]})]
    headers = {"Authorization": f"Bearer {ALONE_KEY}"}
    body = {"model": MODEL, "prompt": "hi", "max_tokens": 1}
    samples: dict[str, list[float]] = {"upstream": [], "front": []}
    try:
        with httpx.Client(timeout=10) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if all(http.get(f"{url}/health").status_code == 200 for url in urls.values()):
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the front or its upstream did not start")
                time.sleep(0.1)
            for name in ("upstream", "front"):
                for _ in range(200):
                    http.post(f"{urls[name]}/v1/completions", headers=headers, json=body).raise_for_status()
            for i in range(ALONE_REQUESTS * 2):
                name = ("upstream", "front")[i % 2]
                start = time.perf_counter()
                http.post(f"{urls[name]}/v1/completions", headers=headers, json=body).raise_for_status()
                samples[name].append(time.perf_counter() - start)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
    return samples


def report_alone(samples: dict[str, list[float]], what: str = "") -> None:
    for q, target_ms in ((0.5, 1.0), (0.99, None)):
        front, upstream = quantile(samples["front"], q), quantile(samples["upstream"], q)
        line = (f"the front alone{what}, added p{round(q * 100)}, 1-token completion (upstream {upstream * 1000:.2f} ms)"
                f"{(front - upstream) * 1000:8.2f} ms")
        print(line + (f"   target {target_ms:5.1f} ms   ratio {(front - upstream) * 1000 / target_ms:5.2f}" if target_ms else ""))


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
            targets = {"direct": status["replicas"][0]["url"], "router": router_url(home),
                       "gateway": status["gateway"]["url"]}
            samples = asyncio.run(measure(targets, {"Authorization": f"Bearer {key}"}))
        finally:
            cli("down")
    report(samples)
    report_alone(front_alone())
    report_alone(front_alone(f"{MODEL}@v1"), ", body rewritten to a version's name")


if __name__ == "__main__":
    main()
