"""The capacity model's promised rate per replica, checked by simulating the replica at that rate.

    python -m bench.bench_capacity_sim

For each (model, GPU, SLO, request sizes): the rate the closed form promises one replica
(`replica_capacity` for one size; for a mix, `best_mix_capacity`: the replica size it picks and
1 / Σ share_b / rate_b over the buckets it can serve, shares renormalised over those), then
`profiles.simulate` serves Poisson arrivals at that rate on one replica (vLLM v1's scheduler:
chunked prefill with vLLM 0.32's default token budget for the GPU, max_num_seqs 256, KV room
from the same ReplicaModel) and reports TTFT p95 and TPOT p95 against the SLO, the share of
requests within both, and the highest rate at which the simulated p95s meet the SLO
(bisection to 3 %) with its ratio to the promise: below 1, the closed form is optimistic.
`max*`/`ratio*`: the same with the mean TPOT in place of its p95, which is what the closed
form computes (its TPOT is a mean), so the two ratios separate the queueing arithmetic from
the assumption that a request's TPOT p95 stays near the mean.

Sizes: single sizes across the range (chat 200/200, 2k, 8k and 16k prompts with 256 output
tokens) and the size mixes of the shared traces' busiest 300 s (`derive_demand`, default grid),
each request at its bucket's mean tokens. Estimates only (an empty profiles dir).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.demand.traces import derive_demand
from orchestrator.profiles import Slo, TokenMix, architecture
from orchestrator.profiles.capacity import best_mix_capacity, replica_capacity
from orchestrator.profiles.perf_model import ReplicaModel, bundled_calibration
from orchestrator.profiles.simulate import (
    SimResult, default_max_num_batched_tokens, max_rate_within_slo, poisson_arrivals, sample_sizes, simulate, summarize,
)
from orchestrator.settings import load_settings
from orchestrator.spec.models import SizeBucket

SLOS = {"llama-3.1-8b": Slo(ttft_p95_ms=2000, tpot_p95_ms=100), "llama-3.3-70b": Slo(ttft_p95_ms=4000, tpot_p95_ms=100)}
SINGLES = {"chat": (200, 200), "2k": (2048, 256), "8k": (8192, 256), "16k": (16384, 256)}
TRACES = {"azure-code": "azure_llm_2023_code.csv", "mooncake": "mooncake_fast25_synthetic_trace.jsonl"}
CASES = [  # model, GPU, sizes
    *[("llama-3.1-8b", "L4", s) for s in ("chat", "2k")],
    *[("llama-3.1-8b", "H100", s) for s in (*SINGLES, *TRACES)],
    *[("llama-3.3-70b", "H100", s) for s in (*SINGLES, *TRACES)],
]
REQUESTS = 10000  # at the promised rate
SEARCH_REQUESTS = 2500  # per bisection step


def mix_of(model: str, sizes: str) -> list[SizeBucket]:
    if sizes in SINGLES:
        i, o = SINGLES[sizes]
        return [SizeBucket(input_tokens=i, output_tokens=o, share=1.0)]
    path = load_settings().shared_data / "llm_traces" / TRACES[sizes]
    return list(derive_demand(path, model=model, region="r").to_demand().size_mix)


def promise(model: str, gpu: str, slo: Slo, mix: list[SizeBucket], profiles: Path) -> tuple[int, float, str, list[SizeBucket], float, str]:
    """(GPUs per replica, promised req/s, binding, the servable buckets renormalised, their
    share, the closed form's own TTFT/TPOT at that rate for a single size)."""
    if len(mix) == 1:
        b = mix[0]
        est = replica_capacity(model, gpu, slo, TokenMix(input_tokens=b.input_tokens, output_tokens=b.output_tokens), profiles_dir=profiles)
        if est is None or est.rps == 0:
            return (est.gpus if est else 0), 0.0, (est.binding if est else "fit") or "", mix, 0.0, ""
        return est.gpus, est.rps, est.binding or "", mix, 1.0, f"{est.ttft_ms:,.0f}/{est.tpot_ms:.1f}"
    cap = best_mix_capacity(model, gpu, slo, mix, max_gpus=8, profiles_dir=profiles)
    servable = [(b, e) for b, e in zip(mix, cap.by_size) if e.rps > 0]
    total = sum(b.share for b, _ in servable)
    buckets = [b.model_copy(update={"share": b.share / total}) for b, _ in servable]
    return cap.gpus, cap.rps, cap.binding or "", buckets, cap.served_share, "per bucket"


def by_prompt(result: SimResult, slo: Slo) -> str:
    """Within-SLO share and TTFT p95 by prompt class (short <= 1k, mid <= 4k, long > 4k tokens)."""
    n = len(result.arrival_ms)
    sel_all = slice(int(0.1 * n), n - int(0.05 * n))
    ttft, tpot, inp = result.ttft_ms[sel_all], result.tpot_ms[sel_all], result.input_tokens[sel_all]
    ok = (ttft <= slo.ttft_p95_ms) & (np.isnan(tpot) | (tpot <= slo.tpot_p95_ms))
    parts = []
    for name, sel in (("<=1k", inp <= 1024), ("<=4k", (inp > 1024) & (inp <= 4096)), (">4k", inp > 4096)):
        if sel.any():
            parts.append(f"{name} {ok[sel].mean():.0%} ok, TTFT p95 {np.percentile(ttft[sel], 95):,.0f}")
    return "; ".join(parts)


def main() -> None:
    profiles = Path(tempfile.mkdtemp(prefix="gpufleet-sim-"))
    print("capacity model vs one simulated replica: Poisson arrivals at the promised rate (vLLM v1 scheduler, chunked prefill)")
    print(f"{'model':13} {'GPU':4} {'sizes':10} {'g':>1} {'budget':>6} {'binding':12} {'promised':>8} {'model TTFT/TPOT':>15} | "
          f"{'TTFT p95':>8} {'TPOT p95':>8} {'mean':>6} {'SLO':>9} {'within':>6} {'preempt':>7} | "
          f"{'max':>6} {'ratio':>5} {'max*':>6} {'ratio*':>6} | {'s':>4}")
    ratios: dict[str, tuple[float, float]] = {}
    notes: list[str] = []
    started = time.perf_counter()
    for model, gpu, sizes in CASES:
        t0 = time.perf_counter()
        slo = SLOS[model]
        gpus, rate, binding, mix, served, own = promise(model, gpu, slo, mix_of(model, sizes), profiles)
        spec = gpu_spec(gpu)
        budget = default_max_num_batched_tokens(spec)
        head = f"{model.removeprefix('llama-'):13} {gpu:4} {sizes:10} {gpus:>1} {budget:>6} {binding:12} "
        if rate == 0:
            print(head + f"{'0':>8} (no rate promised)")
            continue
        replica = ReplicaModel(architecture(model), spec, gpus, "bf16", bundled_calibration())
        rng = np.random.default_rng(0)
        arrivals = poisson_arrivals(1.0, REQUESTS, rng)
        ins, outs = sample_sizes(mix, REQUESTS, rng)
        result = simulate(replica, arrivals / rate, ins, outs)
        at = summarize(result, slo)
        best = max_rate_within_slo(replica, mix, slo, start_rps=rate, requests=SEARCH_REQUESTS)
        best_mean = max_rate_within_slo(replica, mix, slo, start_rps=rate, requests=SEARCH_REQUESTS, mean_tpot=True)
        ratios[f"{model} {gpu} {sizes}"] = (best / rate, best_mean / rate)
        print(head + f"{rate:>8.3f} {own:>15} | {at.ttft_p95_ms:>8,.0f} {at.tpot_p95_ms:>8.1f} {at.tpot_mean_ms:>6.1f} "
              f"{slo.ttft_p95_ms:>4.0f}/{slo.tpot_p95_ms:<4.0f} {at.within_slo:>6.1%} {at.preemptions:>7} | "
              f"{best:>6.3f} {best / rate:>5.2f} {best_mean:>6.3f} {best_mean / rate:>6.2f} | {time.perf_counter() - t0:>4.1f}")
        if len(mix) > 1:
            notes.append(f"  {model} {gpu} {sizes} ({len(mix)} buckets, {served:.0%} of requests servable): {by_prompt(result, slo)}")
    print()
    print("mixes at the promised rate, by prompt length (TTFT p95 in ms):")
    print("\n".join(notes))
    strict = sorted(r for r, _ in ratios.values())
    mean = sorted(r for _, r in ratios.values())
    print(f"\nsimulated max / promised (TPOT p95, as the SLO asks): {strict[0]:.2f}-{strict[-1]:.2f} (median {np.median(strict):.2f}), "
          f"{sum(v < 0.97 for v in strict)} of {len(strict)} below 0.97")
    print(f"simulated max / promised (mean TPOT, as the closed form models): {mean[0]:.2f}-{mean[-1]:.2f} (median {np.median(mean):.2f}), "
          f"{sum(v < 0.97 for v in mean)} of {len(mean)} below 0.97")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
