"""Promised vs measured capacity of the tiny model on this machine, per size bucket, and the fit's error.

    python -m bench.bench_calibration [--rates 1,2,4,8,16] [--seconds-per-rate 8]

Starts the local environment (one CPU vLLM replica of the tiny random-weight Llama behind the
gateway) in a throwaway GPUFLEET_HOME with a three-bucket size mix, runs `orchestrator profile
--per-size` (vLLM's serving benchmark at rising Poisson rates, per bucket: the highest rate whose
TTFT and TPOT p95 meet the SLO), and prints per bucket the capacity model's promise with the
bundled constants, the measured rate and the promise after `profile` fitted the model to the
measurements — and, as the honest error for sizes nobody measured, each bucket predicted by a
fit to the other two (leave one out). Stops the fleet at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.profiles import architecture, estimate_capacity
from orchestrator.profiles.capacity import load_sized_profiles
from orchestrator.profiles.fit import relative_error
from orchestrator.profiling.calibration import fit_efficiency

REPO = Path(__file__).resolve().parent.parent
MIX = [{"input_tokens": 32, "output_tokens": 16, "share": 0.5, "label": "short"},
       {"input_tokens": 128, "output_tokens": 32, "share": 0.3, "label": "chat"},
       {"input_tokens": 400, "output_tokens": 100, "share": 0.2, "label": "long"}]


def cli(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GPUFLEET_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1,2,4,8,16")
    parser.add_argument("--seconds-per-rate", default="8")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="gpufleet-bench-calibration-"))
    spec = yaml.safe_load((REPO / "environments" / "local.yaml").read_text())
    spec["environment"] = "bench-calibration"
    spec["demand"] = [{"model": "tiny-llama", "region": "local", "requests_per_second": 0.5, "size_mix": MIX}]
    path = home / "bench-calibration.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        up = cli(home, "up", "--spec", str(path), "--no-demo")
        if up.returncode:
            sys.exit(f"up failed: {up.stderr[-2000:]}")
        run = cli(home, "profile", "--spec", str(path), "--model", "tiny-llama", "--pool", "local", "--per-size",
                  "--rates", args.rates, "--seconds-per-rate", args.seconds_per_rate, "--format", "json", timeout=3600)
        if run.returncode:
            sys.exit(f"profile failed: {run.stderr[-2000:]}")
        report = json.loads(run.stdout)
    finally:
        cli(home, "down", "--spec", str(path))
    fit = report["fit"]
    print(f"tiny-llama on this machine's CPU vLLM (local pool), SLO TTFT p95 {spec['models'][0]['slo']['ttft_p95_ms']} ms, "
          f"TPOT p95 {spec['models'][0]['slo']['tpot_p95_ms']} ms; rates {args.rates} req/s, {args.seconds_per_rate} s each")
    if fit is None:
        print("no bucket met the SLO at the lowest rate: nothing to fit")
        return
    profiles = load_sized_profiles(home / "profiles", "tiny-llama", "CPU")
    arch, gpu = architecture("tiny-llama"), gpu_spec("CPU")
    held_out = {}
    for left in profiles:
        rest = [p for p in profiles if p is not left and p.rps > 0]
        if rest and left.rps > 0:
            one = fit_efficiency(arch, gpu, rest)
            held_out[(left.mix.input_tokens, left.mix.output_tokens)] = estimate_capacity(
                arch, gpu, left.gpus_per_replica, left.slo, left.mix, left.dtype, scales=one.scales).rps
    print(f"{'in/out tokens':>14} {'measured':>9} {'promised (bundled)':>19} {'ratio':>6} {'fitted':>8} {'ratio':>6} "
          f"{'left out':>9} {'ratio':>6}")
    for p in fit["points"]:
        key = (p["input_tokens"], p["output_tokens"])
        m = p["measured_rps"]
        loo = held_out.get(key)
        loo_text = f"{loo:>9.2f} {loo / m:>6.2f}" if loo is not None else f"{'—':>9} {'':>6}"
        print(f"{p['input_tokens']:>7g}/{p['output_tokens']:<6g} {m:>9.2f} {p['estimated_rps']:>19.2f} {p['estimated_rps'] / m:>6.2f} "
              f"{p['fitted_rps']:>8.2f} {p['fitted_rps'] / m:>6.2f} {loo_text}")
    measured = [p["measured_rps"] for p in fit["points"] if (p["input_tokens"], p["output_tokens"]) in held_out]
    loo_error = relative_error([held_out[(p["input_tokens"], p["output_tokens"])] for p in fit["points"]
                                if (p["input_tokens"], p["output_tokens"]) in held_out], measured) if measured else None
    print(f"fit: compute x {fit['compute_scale']:.3g}, memory x {fit['memory_scale']:.3g}; mean |promised/measured - 1|: "
          f"bundled {fit['error_before']:.0%}, fitted {fit['error_after']:.0%}"
          + (f", left out {loo_error:.0%}" if loo_error is not None else ""))


if __name__ == "__main__":
    main()
