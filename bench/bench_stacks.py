"""How fast and how lean `python -m stacks` synthesizes every stack of environments/hybrid.yaml.

    python -m bench.bench_stacks

Four cases, each in its own process so its memory is its own. Memory is the peak resident
set of the whole process tree (Python plus the jsii kernel, a Node.js child), sampled
every 20 ms:

- cold: a fresh process, the trimmed provider assemblies already cached (every synth
  after the first on a machine);
- warm: the second synth in one process (kernel up, assemblies loaded);
- first ever: a fresh process with an empty cache (trimmed assemblies built from the
  provider packages first);
- whole assemblies: a fresh process loading the provider packages as they ship, which is
  what importing any resource class does without `stacks.bindings`.

Ratios are to the target (<= 10 s warm, <= 1.5 GB) and to the anchor, cdktf's Python
bindings synthesizing the same kind of app (~49-53 s warm, 3.2 GB on a 2-core machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENT = REPO / "environments" / "hybrid.yaml"
TARGET_S, TARGET_BYTES = 10.0, 1.5e9
ANCHOR_S, ANCHOR_BYTES = 51.0, 3.2e9  # midpoint of 49-53 s
SILENT_NODE = {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}

CHILD = """
import json, sys, time
from stacks.app import build_app, load_environment
trim, outdir = sys.argv[1] == "trim", sys.argv[2]
times = []
for run in range(2):
    start = time.perf_counter()
    build_app([load_environment(__import__("pathlib").Path(sys.argv[3]))], f"{outdir}/{run}", trim=trim).synth()
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def _tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants (Linux /proc)."""
    total, todo, page = 0, [root], os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
            todo += [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
        except OSError:  # it ended meanwhile
            pass
    return total


def measured(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak tree RSS (bytes) and stdout of a command."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **SILENT_NODE, **env}, stdout=subprocess.PIPE, text=True)
    peak = 0

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, _ = process.communicate()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return time.perf_counter() - start, peak, out


def report(name: str, seconds: float, peak: int) -> None:
    print(f"{name:<46} {seconds:7.2f} s  {peak / 1e9:5.2f} GB   "
          f"target {seconds / TARGET_S:5.2f} {peak / TARGET_BYTES:5.2f}   anchor {seconds / ANCHOR_S:5.3f} {peak / ANCHOR_BYTES:5.2f}")


def main() -> None:
    print(__doc__.splitlines()[0])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; ratios: time, memory\n")
    with tempfile.TemporaryDirectory() as tmp:
        synth = [sys.executable, "-m", "stacks", "--spec", str(ENVIRONMENT)]
        measured([*synth, "--outdir", f"{tmp}/prime"], {})  # the trimmed assemblies exist from here on
        cold = [measured([*synth, "--outdir", f"{tmp}/cold{i}"], {}) for i in range(3)]
        seconds, peak, _ = min(cold)
        report("cold: fresh process (best of 3)", seconds, peak)

        total, peak, out = measured([sys.executable, "-c", CHILD, "trim", f"{tmp}/warm", str(ENVIRONMENT)], {})
        first, second = json.loads(out)
        report("warm: second synth in one process", second, peak)
        print(f"{'':<4}-> first synth in that process {first:.2f} s; the process, start to end, {total:.2f} s")

        seconds, peak, _ = measured([*synth, "--outdir", f"{tmp}/first"], {"XDG_CACHE_HOME": f"{tmp}/empty-cache"})
        report("first ever: empty cache, assemblies trimmed", seconds, peak)

        total, peak, out = measured([sys.executable, "-c", CHILD, "whole", f"{tmp}/whole", str(ENVIRONMENT)], {})
        first, second = json.loads(out)
        report("whole assemblies: first synth in a process", first, peak)
        print(f"{'':<4}-> second synth {second:.2f} s; the process, start to end, {total:.2f} s")


if __name__ == "__main__":
    main()
