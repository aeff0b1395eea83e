"""How fast the foundation answers: catalog loads, spec validation, and resolving plan inputs.

    python -m bench.bench_inputs

The planner calls the capacity model once per (model, pool) and the latency model once per
(user region, pool), so inputs for the largest instances the planner issue targets
(1000 pools x 50 models x 100 user regions) must resolve in seconds, not minutes. Each line
prints the measurement and its ratio to a target (< 1.00 meets it), or to a baseline.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.instances import generated_spec
from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.inputs import resolve_inputs
from orchestrator.latency import load_latency_model
from orchestrator.spec import load_spec, parse_spec

REPO = Path(__file__).resolve().parent.parent


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Fastest of `repeat` runs, seconds (the least disturbed by the rest of the machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def report(name: str, seconds: float, target_s: float) -> None:
    print(f"{name:<58} {seconds * 1000:10.1f} ms   target {target_s * 1000:8.0f} ms   ratio {seconds / target_s:5.2f}")


def main() -> None:
    print(__doc__.splitlines()[0])
    print(f"python {sys.version.split()[0]}; best of several runs\n")
    report("price catalog load (bundled, 1852 offers)", best_of(5, lambda: load_price_catalog()), 0.1)
    report("latency model load (cold: parse + index)", best_of(1, lambda: load_latency_model()), 0.1)
    report("spec load + validate: environments/hybrid.yaml", best_of(5, lambda: load_spec(REPO / "environments/hybrid.yaml")), 0.05)

    catalog = load_price_catalog()
    hybrid = load_spec(REPO / "environments/hybrid.yaml")
    report("resolve inputs: hybrid (8 pools, 3 models, 7 regions)", best_of(5, lambda: resolve_inputs(hybrid, catalog)), 0.5)

    for pools, models, regions, target in [(100, 10, 20, 2.0), (1000, 50, 100, 10.0)]:
        spec = parse_spec(generated_spec(pools, models, regions), "generated.yaml")
        inputs = None

        def run() -> None:
            nonlocal inputs
            inputs = resolve_inputs(spec, catalog)

        seconds = best_of(1, run)
        report(f"resolve inputs: {pools} pools x {models} models x {regions} regions", seconds, target)
        print(f"{'':<4}-> {len(inputs.capacity)} capacity pairs, {len(inputs.latency)} RTT pairs, "
              f"{seconds / max(1, len(inputs.capacity) + len(inputs.latency)) * 1e6:.0f} us per pair")

    baseline = best_of(3, lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    cold = best_of(3, lambda: subprocess.run([sys.executable, "-m", "orchestrator", "validate", "--env", "hybrid", "--format", "json"],
                                             check=True, capture_output=True, cwd=REPO))
    report("CLI cold start: orchestrator validate --env hybrid --format json", cold, 2.0)
    print(f"{'':<4}-> {cold / baseline:.1f}x a bare `python -c pass` ({baseline * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
