"""Size-aware vs mean-size planning on the shared traces, and a Mélange-style single-region ILP as the peer.

    python -m bench.bench_size_aware

Instances: demand from the busiest 300 s of the Azure 2023 code trace and of the Mooncake trace
(`derive_demand`: the size mix on the default grid and the p99-of-10-s-windows peak factor),
scaled to three rates, for llama-3.1-8b and llama-3.3-70b; pools are real instance types and
on-demand prices from the bundled catalog: five types in aws us-east-1 (single region, users in
Virginia), plus three in gcp europe-west4 (multi-region, 60 % of the users in Virginia and
40 % in Frankfurt). For each: gpufleet's size-aware plan and the mean-size plan
(`planner.mean_size`: every demand at its mean tokens, peak factor 1), each with its $/h and
the share of the real demand (size mix, planned rate) it carries within the SLO (`check_mix`
against the real mix's rates at the plan's own replica sizes). `+peak`: the mean-size plan made
for the planned rate (peak factor kept), so only the sizes differ. `unsrv`: planned load the
size-aware plan leaves unserved (every pool at max_nodes 16, or no GPU meets the SLO for a size).

The peer, on the single-region instances: a Mélange-style ILP (Griggs et al. 2024), written
here from the paper's formulation and solved with highspy on the same buckets and the same
per-bucket capacities (req/s per replica, from `inputs`): minimise Σ_g c_g N_g subject to
Σ_g x_bg = 1 per bucket b and Σ_b load_b x_bg / cap_bg ≤ N_g, N_g integer, x_bg ≥ 0 (the
paper slices each bucket into discrete parts; here the fractions are continuous, its limit).
`melange/gpu`: g = a replica of the pool's GPU type priced per GPU (node $/h × GPUs per
replica / GPUs per node), as the paper rents GPUs one at a time. `melange/node`: g = a whole
node of the pool (replicas per node × the same constraint, N_g ≤ max_nodes), which is
gpufleet's own granularity: with no min_replicas, no spot and one region the two should agree.
"""

from __future__ import annotations

import sys
import time

import highspy
import numpy as np

from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.demand.traces import derive_demand
from orchestrator.inputs import FleetInputs, resolve_inputs
from orchestrator.planner import PlanOptions, plan_fleet
from orchestrator.planner.mean_size import compare_mean_size
from orchestrator.planner.mix_check import carried_share
from orchestrator.settings import load_settings
from orchestrator.spec import FleetSpec

TRACES = {"azure-code": "azure_llm_2023_code.csv", "mooncake": "mooncake_fast25_synthetic_trace.jsonl"}
MODELS = {  # architecture, SLO, longest context
    "llama-3.1-8b": ({"ttft_p95_ms": 2000, "tpot_p95_ms": 100, "max_rtt_ms": 150}, 32768),
    "llama-3.3-70b": ({"ttft_p95_ms": 4000, "tpot_p95_ms": 100, "max_rtt_ms": 150}, 32768),
}
SCALES = (0.5, 2.0, 8.0)  # x the trace's busiest-300-s mean rate
SINGLE = [("aws", "us-east-1", t) for t in ("g6.12xlarge", "g6e.12xlarge", "g5.12xlarge", "p4de.24xlarge", "p5.48xlarge")]
MULTI = SINGLE + [("gcp", "europe-west4", t) for t in ("g2-standard-48", "a2-ultragpu-8g", "a3-edgegpu-8g")]
OPTIONS = PlanOptions(mip_gap=0.0, time_limit_s=20.0)


def spec_for(model: str, trace: str, scale: float, pools: list[tuple[str, str, str]], regions: dict[str, float]) -> FleetSpec:
    """One model, on-demand pools of the given types, the trace's demand split over user regions."""
    catalog = load_price_catalog()
    path = load_settings().shared_data / "llm_traces" / TRACES[trace]
    derived = derive_demand(path, model=model, region="r", scale=scale)
    slo, max_len = MODELS[model]
    doc = {
        "environment": f"{trace}-{model}",
        "pools": [{"name": f"{provider}-{kind}", "provider": provider, "region": region,
                   "zone": catalog.offer(provider, kind, region).zone, "instance_type": kind,
                   "capacity": "on_demand", "max_nodes": 16} for provider, region, kind in pools],
        "models": [{"name": model, "architecture": model, "source": f"hf:{model}", "max_model_len": max_len,
                    "min_replicas": 0, "slo": slo}],
        "demand": [derived.to_demand().model_copy(update={"region": region, "requests_per_second": derived.requests_per_second * share}).model_dump(exclude_none=True)
                   for region, share in regions.items()],
    }
    return FleetSpec.model_validate(doc)


def melange(inputs: FleetInputs, per_node: bool) -> tuple[float | None, float]:
    """The Mélange ILP over one region's pools: ($/h or None when infeasible, share of the planned load it may serve)."""
    (demand,) = inputs.demand
    pools = {p.pool: p for p in inputs.pools}
    caps = {c.pool: c for c in inputs.capacity}
    buckets = [(b, demand.planned_rps * b.share) for b in demand.sizes]
    servable = [(b, load) for b, load in buckets if any(caps[g].rate(b.input_tokens, b.output_tokens) > 0 for g in caps)]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    n = {}
    for g, cap in caps.items():
        pool = pools[g]
        per = pool.gpus_per_node // cap.gpus_per_replica
        price = pool.cost_per_node_hour if per_node else pool.cost_per_node_hour * cap.gpus_per_replica / pool.gpus_per_node
        n[g] = (_integer(h, price, pool.max_nodes if per_node else highspy.kHighsInf), per if per_node else 1)
    x = {}
    for i, (b, _) in enumerate(servable):
        for g, cap in caps.items():
            if cap.rate(b.input_tokens, b.output_tokens) > 0:
                x[(i, g)] = _continuous(h, 1.0)
        h.addRow(1.0, 1.0, *_terms([(x[(i, g)], 1.0) for g in caps if (i, g) in x]))
    for g, cap in caps.items():
        var, per = n[g]
        terms = [(x[(i, g)], load / cap.rate(b.input_tokens, b.output_tokens)) for i, (b, load) in enumerate(servable) if (i, g) in x]
        h.addRow(-highspy.kHighsInf, 0.0, *_terms(terms + [(var, -float(per))]))
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None, 0.0
    total = sum(load for _, load in buckets)
    return h.getInfo().objective_function_value, sum(load for _, load in servable) / total if total else 1.0


def _integer(h: highspy.Highs, cost: float, upper: float) -> int:
    h.addVar(0.0, upper)
    j = h.getNumCol() - 1
    h.changeColCost(j, cost)
    h.changeColIntegrality(j, highspy.HighsVarType.kInteger)
    return j


def _continuous(h: highspy.Highs, upper: float) -> int:
    h.addVar(0.0, upper)
    return h.getNumCol() - 1


def _terms(terms: list[tuple[int, float]]) -> tuple[int, np.ndarray, np.ndarray]:
    return len(terms), np.array([j for j, _ in terms], dtype=np.int32), np.array([v for _, v in terms], dtype=np.float64)


def run_case(model: str, trace: str, scale: float, multi: bool) -> dict:
    regions = {"virginia": 0.6, "frankfurt": 0.4} if multi else {"virginia": 1.0}
    spec = spec_for(model, trace, scale, MULTI if multi else SINGLE, regions)
    inputs = resolve_inputs(spec, load_price_catalog())
    start = time.perf_counter()
    plan = plan_fleet(spec, inputs, OPTIONS)
    compared = compare_mean_size(spec, inputs, OPTIONS)
    sized = compare_mean_size(spec, inputs, OPTIONS, keep_peak_factor=True)
    assert compared is not None and sized is not None
    planned = sum(d.planned_rps for d in inputs.demand)
    row = {
        "case": f"{'multi' if multi else 'single'} {trace} {model.removeprefix('llama-')} x{scale:g}",
        "planned": planned, "peak": inputs.demand[0].peak_factor, "buckets": len(inputs.demand[0].sizes),
        "sa_cost": plan.cost_per_hour, "sa_share": carried_share(plan.mix_check, plan),
        "sa_unserved": sum(u.rps for u in plan.unserved) / planned,
        "mean_cost": compared.cost_per_hour, "mean_share": compared.carried_share,
        "peak_cost": sized.cost_per_hour, "peak_share": sized.carried_share,
        "seconds": time.perf_counter() - start,
    }
    if not multi:
        row["mel_gpu"], _ = melange(inputs, per_node=False)
        row["mel_node"], row["mel_servable"] = melange(inputs, per_node=True)
    return row


def _money(v: float | None) -> str:
    return "—" if v is None else f"{v:,.2f}"


def main() -> None:
    print(__doc__.splitlines()[0])
    print(f"python {sys.version.split()[0]}; HiGHS {highspy.Highs().version()}; catalog on-demand prices; "
          f"rates x{', x'.join(f'{s:g}' for s in SCALES)} of each trace's busiest-300-s mean\n")
    if not (load_settings().shared_data / "llm_traces").is_dir():
        print("the shared traces are not at $GPUFLEET_SHARED_DATA/llm_traces; skipped")
        return
    rows = [run_case(model, trace, scale, multi) for multi in (False, True) for trace in TRACES for model in MODELS for scale in SCALES]
    print(f"{'case':<34} {'plan rps':>8} {'peak':>5} {'bkts':>4} | {'size-aware $/h':>14} {'carried':>7} {'unsrv':>5} | "
          f"{'mean-size $/h':>13} {'carried':>7} {'SA/mean':>7} | {'+peak $/h':>9} {'carried':>7} | {'mélange/gpu':>11} {'mélange/node':>12} {'SA/node':>7} {'SA/gpu':>6} | {'s':>4}")
    for r in rows:
        mel = ""
        if "mel_gpu" in r:
            ratio_node = f"{r['sa_cost'] / r['mel_node']:.3f}" if r["mel_node"] else "—"
            ratio_gpu = f"{r['sa_cost'] / r['mel_gpu']:.3f}" if r["mel_gpu"] else "—"
            mel = f"{_money(r['mel_gpu']):>11} {_money(r['mel_node']):>12} {ratio_node:>7} {ratio_gpu:>6}"
        else:
            mel = f"{'':>11} {'':>12} {'':>7} {'':>6}"
        print(f"{r['case']:<34} {r['planned']:8.1f} {r['peak']:5.2f} {r['buckets']:4d} | {r['sa_cost']:14,.2f} {r['sa_share']:7.1%} "
              f"{r['sa_unserved']:5.1%} | {r['mean_cost']:13,.2f} {r['mean_share']:7.1%} {r['sa_cost'] / r['mean_cost']:7.2f} | "
              f"{r['peak_cost']:9,.2f} {r['peak_share']:7.1%} | {mel} | "
              f"{r['seconds']:4.1f}")
    shares = [r["mean_share"] for r in rows]
    peak_shares = [r["peak_share"] for r in rows]
    peak_ratios = [r["sa_cost"] / r["peak_cost"] for r in rows]
    ratios = [r["sa_cost"] / r["mean_cost"] for r in rows]
    node = [r["sa_cost"] / r["mel_node"] for r in rows if r.get("mel_node")]
    gpu = [r["sa_cost"] / r["mel_gpu"] for r in rows if r.get("mel_gpu")]
    print(f"\nmean-size plans carry {min(shares):.1%}-{max(shares):.1%} of the real demand within SLO (median {np.median(shares):.1%}); "
          f"size-aware costs {min(ratios):.2f}-{max(ratios):.2f}x the mean-size plan (median {np.median(ratios):.2f}x)")
    print(f"mean sizes at the planned (peak) rate carry {min(peak_shares):.1%}-{max(peak_shares):.1%} (median {np.median(peak_shares):.1%}); "
          f"size-aware costs {min(peak_ratios):.2f}-{max(peak_ratios):.2f}x that plan (median {np.median(peak_ratios):.2f}x)")
    print(f"gpufleet / Mélange at node granularity: {min(node):.4f}-{max(node):.4f}; "
          f"gpufleet / Mélange per GPU: {min(gpu):.3f}-{max(gpu):.3f} (median {np.median(gpu):.3f})")


if __name__ == "__main__":
    main()
