"""How long a local replica takes from nothing to its first token (a scale-to-zero wake), and what cuts it.

    python -m bench.bench_cold_start [--runs N] [--variants default,cold-cache,...]

Starts one CPU vLLM replica of the tiny model the way the local supervisor does (its own
`Supervisor._replica_env` environment, `processes.spawn`, `python -m orchestrator.replica`),
in a throwaway GPUFLEET_HOME, and times from the spawn:

- each phase, from the line vLLM logs as it ends it (the log is read as it grows, every
  POLL_S): the entrypoint, vLLM's import, the engine core and worker processes, weights,
  the torch.compile warm-up, KV cache, the HTTP routes;
- `/health` answering 200 (the supervisor's ready test; it polls every 0.5 s, so the gateway
  learns up to 0.5 s later);
- the first token of a streamed completion sent as soon as `/health` answers;
- stop: SIGTERM (the supervisor's drain of an idle replica) until the process group is gone.

Each variant runs N times (default 3); it prints the median and [min-max], and the ratio of its
median to the default's (< 1.00 is faster). torch.compile keeps its work in two caches: vLLM's
(VLLM_CACHE_ROOT: the AOT-compiled model) and inductor's (TORCHINDUCTOR_CACHE_DIR). The
default runs with both warm, as a workstation's second start does; `cold-cache` with both
empty (a fresh node); `pod-restart` with vLLM's warm and inductor's empty, as a Kubernetes
pod restarts (VLLM_CACHE_ROOT is on the cache volume, /tmp an emptyDir). `sleep` asks whether
vLLM's sleep mode is a cheaper wake on this CPU build: `--enable-sleep-mode` at start, then the
dev-mode `/sleep` and `/wake_up` routes (VLLM_SERVER_DEV_MODE=1) on a running replica, with
the memory the replica's processes hold before and after.

Everything runs on 127.0.0.1 and is stopped at the end. A second vLLM running on the machine
at the same time (tests, another bench) skews the numbers: the header prints the load average.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from orchestrator.providers.base import ReplicaSpec
from orchestrator.providers.local.processes import free_port, group_alive, kill_group, spawn
from orchestrator.providers.local.supervisor import REPLICA_MARKER, Replica, Supervisor
from orchestrator.replica.tiny_model import ensure_tiny_model
from orchestrator.settings import Settings
from orchestrator.state import open_state

MODEL = "tiny-llama"
SOURCE = "${GPUFLEET_HOME}/models/tiny-llama"  # as environments/local.yaml names it
MAX_MODEL_LEN = 512
ENVIRONMENT = "bench"
POLL_S = 0.05
READY_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 60.0
PHASES = (  # (what ends, a line vLLM logs when it has), in the order they are logged
    ("entrypoint: imports, weights fetch", "starting vLLM for"),
    ("API server: import vLLM, parse args", "non-default args"),
    ("engine core process up", "Initializing a V1 LLM engine"),
    ("worker process up", "Starting to load model"),
    ("weights load", "Loading weights took"),
    ("torch.compile warm-up", "Warming up done."),
    ("KV cache, rest of engine init", "init engine (profile, create kv cache, warmup model)"),
    ("API server routes up", "Starting vLLM server on"),
)
SLEEP_REFUSED = "Sleep mode is not supported on current platform"  # vllm/config/model.py
SLEEP_IGNORED = "sleep mode is not supported on CPU, ignore it"  # vllm/v1/worker/cpu_worker.py


@dataclass(frozen=True)
class Variant:
    label: str
    vllm_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    vllm_cache: str = "warm"  # warm: the bench's primed cache; empty: a new one per run
    inductor_cache: str = "warm"


VARIANTS = {
    "default": Variant("default flags, compile caches warm"),
    "cold-cache": Variant("both compile caches empty (a fresh node)", vllm_cache="empty", inductor_cache="empty"),
    "pod-restart": Variant("vLLM cache warm, inductor's empty (a pod restart)", inductor_cache="empty"),
    "eager": Variant("--enforce-eager", ("--enforce-eager",)),
    "O0": Variant("-O0", ("-O0",)),
    "in-process": Variant("--enforce-eager, engine and worker in the API process",
                          ("--enforce-eager", "--distributed-executor-backend", "uni"),
                          {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}),
}
DEFAULT_VARIANTS = ("cold-cache", "default", "pod-restart", "eager", "O0", "in-process", "sleep")


@dataclass
class Start:
    """One replica start: seconds from the spawn to each milestone (None: not reached or not logged)."""

    phases: dict[str, float] = field(default_factory=dict)  # the PHASES line -> seconds since spawn
    health_s: float | None = None
    first_token_s: float | None = None
    request_ttft_s: float | None = None  # the first request alone: sent -> first token
    stop_s: float | None = None
    failure: str | None = None
    contended: bool = False  # another vLLM (not this replica's) ran on the machine at spawn or at /health


class Bench:
    """Replicas started as the local supervisor starts them, in a throwaway home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.settings = Settings(home=home)
        ensure_tiny_model(home / "models" / MODEL)
        self.supervisor = Supervisor(ENVIRONMENT, open_state(f"sqlite:///{home / 'state.db'}"), self.settings)
        self.key = self.supervisor.api_key.get_secret_value()
        self.started = 0
        self.primed = False

    def close(self) -> None:
        self.supervisor.http.close()

    def launch(self, variant: Variant, extra_env: dict[str, str] | None = None) -> tuple[Replica, Path]:
        """Spawn one replica; (the replica, its log)."""
        self.started += 1
        spec = ReplicaSpec(source=SOURCE, served_name=MODEL, max_model_len=MAX_MODEL_LEN, vllm_args=variant.vllm_args)
        replica = Replica(self.started, MODEL, "local", spec, self.home / "logs" / f"replica-{self.started}.log")
        replica.port = free_port()
        env = self.supervisor._replica_env(replica) | variant.env | (extra_env or {}) | {
            "GPUFLEET_REPLICA_VLLM_ARGS": shlex.join(variant.vllm_args),
            "VLLM_CACHE_ROOT": str(self._cache("vllm", variant.vllm_cache)),
            "TORCHINDUCTOR_CACHE_DIR": str(self._cache("inductor", variant.inductor_cache)),
        }
        replica.process = spawn([sys.executable, "-m", REPLICA_MARKER], replica.log_path, env)
        return replica, replica.log_path

    def _cache(self, kind: str, state: str) -> Path:
        return self.home / f"cache-{kind}" if state == "warm" else Path(tempfile.mkdtemp(dir=self.home, prefix=f"cold-{kind}-"))

    def start(self, variant: Variant, extra_env: dict[str, str] | None = None,
              then: Callable[[Replica, Start], None] | None = None) -> Start:
        """Start a replica, time it to its first token, run `then` on it while it serves, stop it."""
        result = Start(contended=bool(other_vllm_processes(os.getpid())))
        replica, log = self.launch(variant, extra_env)
        spawned = time.monotonic()
        tail = LogTail(log)
        try:
            while result.health_s is None:
                now = time.monotonic() - spawned
                tail.mark(result.phases, now)
                if replica.process.poll() is not None:
                    result.failure = tail.reason()
                    return result
                if now > READY_TIMEOUT_S:
                    result.failure = f"no /health after {READY_TIMEOUT_S:.0f} s"
                    return result
                if self._healthy(replica):
                    result.health_s = time.monotonic() - spawned
                    result.contended |= bool(other_vllm_processes(os.getpid()))
                time.sleep(POLL_S)
            sent = time.monotonic()
            self.first_token(replica)
            result.first_token_s, result.request_ttft_s = time.monotonic() - spawned, time.monotonic() - sent
            tail.mark(result.phases, result.health_s)  # lines logged after the last poll, before /health answered
            if then is not None:
                then(replica, result)
            result.stop_s = stop(replica)
        finally:
            if replica.process.poll() is None or group_alive(replica.process.pid):
                kill_group(replica.process.pid)
                replica.process.wait()
        return result

    def prime(self) -> None:
        """One unmeasured start with default flags, so the warm caches hold the compiled model."""
        if not self.primed:
            failure = self.start(VARIANTS["default"]).failure
            if failure:
                raise SystemExit(f"the priming start failed: {failure}")
            self.primed = True

    def _healthy(self, replica: Replica) -> bool:
        try:
            return httpx.get(f"{replica.url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def first_token(self, replica: Replica) -> None:
        """Stream a one-token completion until its first chunk arrives."""
        body = {"model": MODEL, "prompt": "hi", "max_tokens": 1, "stream": True}
        with httpx.stream("POST", f"{replica.url}/v1/completions", json=body, headers=self.headers(), timeout=120) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    return
        raise RuntimeError("the completion stream ended without a token")


class LogTail:
    """A log file's lines as they are appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read().decode(errors="replace")
            self.offset = handle.tell()
        lines = (self.partial + data).split("\n")
        self.partial = lines.pop()
        return lines

    def mark(self, phases: dict[str, float], now: float) -> None:
        """Record `now` for each PHASES line that appeared since the last look."""
        for line in self.new_lines():
            for _, marker in PHASES:
                if marker in line and marker not in phases:
                    phases[marker] = now

    def reason(self) -> str:
        """Why the replica exited: its last error line (an exception's, or pydantic's "Value error, ...")."""
        lines = self.path.read_text(errors="replace").splitlines()
        errors = [line for line in lines if ("Error" in line or "error," in line) and "errors.pydantic.dev" not in line]
        return (errors or lines or ["(empty log)"])[-1].strip()[:300]


def other_vllm_processes(own: int) -> list[int]:
    """vLLM servers and engines on the machine that are not this bench's own (its replicas descend from `own`):
    an API server, or a process vLLM renamed (`VLLM::EngineCore`, `VLLM::Worker`); an idle gateway does not count."""
    mine = {own, *(p.pid for p in psutil.Process(own).children(recursive=True))}
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if process.info["pid"] not in mine and ("vllm.entrypoints" in command or command.startswith("VLLM::")):
            found.append(process.info["pid"])
    return found


def group_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, MiB (shared pages counted once per process)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def stop(replica: Replica) -> float:
    """SIGTERM to the replica's entrypoint (the supervisor's drain) until its whole group is gone, seconds."""
    start = time.monotonic()
    replica.process.send_signal(signal.SIGTERM)
    while group_alive(replica.process.pid) and time.monotonic() - start < STOP_TIMEOUT_S:
        replica.process.poll()
        time.sleep(POLL_S)
    return time.monotonic() - start


def median_range(values: list[float]) -> str:
    if not values:
        return f"{'-':>21}"
    return f"{statistics.median(values):6.1f} s [{min(values):5.1f}-{max(values):5.1f}]"


def run_variants(bench: Bench, names: list[str], runs: int) -> dict[str, list[Start]]:
    results: dict[str, list[Start]] = {}
    for name in names:
        variant = VARIANTS[name]
        if variant.vllm_cache == "warm" or variant.inductor_cache == "warm":
            bench.prime()
        results[name] = [bench.start(variant) for _ in range(runs)]
        print(f"  ran {name}: {', '.join(f'{r.first_token_s:.1f} s' if r.failure is None else 'failed' for r in results[name])}",
              file=sys.stderr)
    return results


def report_variants(results: dict[str, list[Start]]) -> None:
    base = [r.first_token_s for r in results.get("default", []) if r.failure is None]
    print(f"{'variant':<66}{'spawn -> /health':>24}{'spawn -> first token':>25}{'ratio':>7}{'stop':>8}"
          f"{'contended':>11}")
    for name, starts in results.items():
        label = f"{name}: {VARIANTS[name].label}"
        done = [r for r in starts if r.failure is None]
        if not done:
            print(f"{label:<66}  failed: {starts[0].failure}")
            continue
        token = [r.first_token_s for r in done]
        ratio = f"{statistics.median(token) / statistics.median(base):7.2f}" if base else f"{'-':>7}"
        print(f"{label:<66}{median_range([r.health_s for r in done]):>24}{median_range(token):>25}{ratio}"
              f"{statistics.median(r.stop_s for r in done):6.1f} s{sum(r.contended for r in starts):>7}/{len(starts)}")
    print("    -> the first request alone (sent -> first token), median: " + ", ".join(
        f"{name} {statistics.median(r.request_ttft_s for r in starts if r.failure is None) * 1000:.0f} ms"
        for name, starts in results.items() if any(r.failure is None for r in starts)))
    print("    -> contended: starts during which another vLLM ran on the machine (their times are inflated)")
    print("\nwhere the time goes: median seconds per phase (a phase whose line is not logged falls into the next)")
    names = [n for n, starts in results.items() if any(r.failure is None for r in starts)]
    print(f"{'phase':<40}" + "".join(f"{n:>13}" for n in names))
    for index, label in enumerate([label for label, _ in PHASES] + ["/health answers", "first token"]):
        cells = []
        for name in names:
            durations = [d for r in results[name] if r.failure is None and (d := phase_duration(r, index)) is not None]
            cells.append(f"{statistics.median(durations):13.1f}" if durations else f"{'-':>13}")
        print(f"{label:<40}" + "".join(cells))


def phase_duration(start: Start, index: int) -> float | None:
    """Seconds from the milestone reached before the `index`th (PHASES, then /health, then the first token) to it;
    None when it was not logged."""
    timeline = [start.phases.get(marker) for _, marker in PHASES] + [start.health_s, start.first_token_s]
    if timeline[index] is None:
        return None
    return timeline[index] - max((t for t in timeline[:index] if t is not None), default=0.0)


def sleep_probe(bench: Bench, restarts: list[Start]) -> None:
    """Is sleep mode a cheaper wake here? `--enable-sleep-mode` at start; then the dev-mode routes."""
    print("\nvLLM sleep mode on this CPU build")
    bench.prime()
    refused = bench.start(Variant("--enable-sleep-mode", ("--enable-sleep-mode",)))
    if refused.failure is not None:
        print(f"--enable-sleep-mode: the replica exits at start: {refused.failure}")
    else:
        print(f"--enable-sleep-mode: the replica started (first token {refused.first_token_s:.1f} s)")
    wakes: list[float] = []

    def cycle(replica: Replica, _start: Start) -> None:
        with httpx.Client(base_url=replica.url, headers=bench.headers(), timeout=120) as http:
            for level in (1, 2):
                before = group_rss_mib(replica.process.pid)
                began = time.monotonic()
                asleep = http.post("/sleep", params={"level": level})
                slept = time.monotonic() - began
                sleeping = http.get("/is_sleeping").json().get("is_sleeping") if asleep.status_code == 200 else None
                during = group_rss_mib(replica.process.pid)
                began = time.monotonic()
                woken = http.post("/wake_up")
                bench.first_token(replica)
                wakes.append(time.monotonic() - began)
                print(f"  VLLM_SERVER_DEV_MODE=1, /sleep?level={level}: HTTP {asleep.status_code} in {slept * 1000:.0f} ms, "
                      f"is_sleeping {sleeping}, replica RSS {before:.0f} -> {during:.0f} MiB; "
                      f"/wake_up HTTP {woken.status_code} + first token {wakes[-1] * 1000:.0f} ms")
        ignored = SLEEP_IGNORED in replica.log_path.read_text(errors="replace")
        print(f"  the CPU worker logged '{SLEEP_IGNORED}': {ignored}")

    awake = bench.start(VARIANTS["default"], {"VLLM_SERVER_DEV_MODE": "1"}, then=cycle)
    if awake.failure:
        print(f"  the dev-mode replica failed: {awake.failure}")
    restarted = [r.first_token_s for r in restarts if r.failure is None]
    if wakes and restarted:
        print(f"    -> /wake_up + first token / a restart's spawn -> first token (default): "
              f"{max(wakes) / statistics.median(restarted):.4f}")


def main(runs: int = 3, names: tuple[str, ...] = DEFAULT_VARIANTS) -> None:
    print(__doc__.splitlines()[0])
    import torch
    import vllm

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"vllm {vllm.__version__}, torch {torch.__version__}, {os.cpu_count()} cores, load average {load}; "
          f"{runs} start(s) per variant, median [min-max]\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed bench still stops its replica and removes its home
    home = Path(tempfile.mkdtemp(prefix="gpufleet-bench-cold-"))
    bench = Bench(home)
    try:
        results = run_variants(bench, [n for n in names if n != "sleep"], runs)
        report_variants(results)
        if "sleep" in names:
            sleep_probe(bench, results.get("default", []))
    finally:
        bench.close()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="starts per variant (default 3)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, in order, from {', '.join([*VARIANTS, 'sleep'])} (default: all)")
    args = parser.parse_args()
    chosen = tuple(v for v in args.variants.split(",") if v)
    unknown = [v for v in chosen if v not in VARIANTS and v != "sleep"]
    if unknown or args.runs < 1:
        print(f"bench_cold_start: --variants {','.join(unknown)} unknown (allowed: {', '.join([*VARIANTS, 'sleep'])}); "
              "--runs must be >= 1", file=sys.stderr)
        sys.exit(2)
    main(args.runs, chosen)
