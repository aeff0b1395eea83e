"""What scale-to-zero costs the first user after an idle spell: a request that wakes a sleeping model, end to end.

    python -m bench.bench_scale_to_zero [--rounds N] [--idle-after S]

Starts the local environment (`orchestrator up`, throwaway GPUFLEET_HOME) with the tiny model
set to `min_replicas: 0` and `scale_to_zero: {idle_after_s: S}`. Each round it waits, sending
nothing, until `status` reports the model asleep (its replica stopped), then sends one
completion through the gateway and times it: the gateway holds it while the supervisor starts
a replica, then forwards it. A second request right after is the warm baseline. Printed per
round and as medians:

- asleep after: the last request -> `status` shows the model asleep (idle_after_s plus the
  supervisor's and this script's polling);
- wake: the request that woke the model, sent -> answered (what its user waits);
- replica ready: the supervisor's own figure, the waking request -> the replica in the gateway;
- warm: the next request, and the ratio wake / warm.

bench/bench_cold_start.py breaks a replica's start itself into its phases. Everything runs on
127.0.0.1 and is stopped at the end (`orchestrator down`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
ASLEEP_TIMEOUT_S = 300.0
REQUEST = {"model": MODEL, "prompt": "Name a reason to keep replicas in two regions.", "max_tokens": 16}
READY_LINE = re.compile(r"awake, first replica ready ([0-9.]+) s after the request that woke it")


class Fleet:
    """The local environment with scale-to-zero, in a throwaway home, driven through the CLI."""

    def __init__(self, home: Path, idle_after_s: float) -> None:
        self.home = home
        self.spec = home / "local.yaml"
        self.env = {k: v for k, v in os.environ.items() if k != "GPUFLEET_API_KEY"} | {"GPUFLEET_HOME": str(home)}
        doc = yaml.safe_load((REPO / "environments" / "local.yaml").read_text())
        doc["models"][0] |= {"min_replicas": 0, "scale_to_zero": {"idle_after_s": idle_after_s, "hold_s": 300}}
        self.spec.write_text(yaml.safe_dump(doc))

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args, "--spec", str(self.spec)], env=self.env,
                              capture_output=True, text=True, timeout=900, check=True).stdout

    def status(self) -> dict:
        return json.loads(self.cli("status", "--format", "json"))

    def wait_asleep(self) -> float:
        start = time.monotonic()
        while not self.status()["asleep"]:
            if time.monotonic() - start > ASLEEP_TIMEOUT_S:
                raise SystemExit(f"the model did not fall asleep in {ASLEEP_TIMEOUT_S:.0f} s")
            time.sleep(1.0)
        return time.monotonic() - start

    def ready_figures(self) -> list[float]:
        log = (self.home / "state" / "local" / "logs" / "supervisor.log").read_text()
        return [float(m) for m in READY_LINE.findall(log)]


def timed(http: httpx.Client, url: str, key: str) -> float:
    start = time.monotonic()
    answer = http.post(f"{url}/v1/completions", json=REQUEST, headers={"Authorization": f"Bearer {key}"})
    answer.raise_for_status()
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-after", type=float, default=15.0, help="idle_after_s of the model, seconds")
    args = parser.parse_args(argv)
    print(f"# scale to zero, local tiny model, idle_after_s {args.idle_after:g}; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="gpufleet-bench-s2z-") as tmp:
        fleet = Fleet(Path(tmp), args.idle_after)
        try:
            fleet.cli("up")
            status = fleet.status()
            url, key = status["gateway"]["url"], (Path(tmp) / "state" / "local" / "gateway-api-key").read_text().strip()
            rows = []
            with httpx.Client(timeout=600) as http:
                timed(http, url, key)  # the last request before the idle spell
                for round_ in range(1, args.rounds + 1):
                    asleep = fleet.wait_asleep()
                    wake = timed(http, url, key)
                    warm = timed(http, url, key)
                    ready = fleet.ready_figures()[-1]
                    rows.append((asleep, wake, ready, warm))
                    print(f"round {round_}: asleep after {asleep:5.1f} s · wake {wake:5.1f} s (replica ready {ready:5.1f} s)"
                          f" · warm {warm * 1000:6.0f} ms · wake/warm {wake / warm:6.0f}x")
            med = [statistics.median(column) for column in zip(*rows, strict=True)]
            print(f"median: asleep after {med[0]:.1f} s · wake {med[1]:.1f} s [{min(r[1] for r in rows):.1f}–"
                  f"{max(r[1] for r in rows):.1f}] · replica ready {med[2]:.1f} s · warm {med[3] * 1000:.0f} ms · "
                  f"wake/warm {med[1] / med[3]:.0f}x")
        finally:
            subprocess.run([sys.executable, "-m", "orchestrator", "down", "--spec", str(fleet.spec)], env=fleet.env,
                           capture_output=True, timeout=300)


if __name__ == "__main__":
    main()
