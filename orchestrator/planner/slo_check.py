"""A second method for the plan's promise: simulate one replica of each (model, pool) at its planned load.

The planner sizes replicas with the closed-form capacity model (`profiles.capacity`) and, for
a size mix, time-sharing between buckets. `profiles.simulate` runs vLLM's scheduler step by step
on the same step times instead; docs/capacity.md ("Checked by simulation") shows where the two
disagree. This module applies that check to a placement: for each (model, pool) with replicas,
the planned req/s routed there divided by its replicas, with the sizes routed there, as Poisson
arrivals on one replica — TTFT and TPOT p95 against the model's SLO. It measures the promise;
it changes no plan.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.planner.placement import Placement, SimulatedRow
from orchestrator.profiles.architectures import resolve_architecture
from orchestrator.profiles.perf_model import ReplicaModel, bundled_calibration
from orchestrator.profiles.simulate import simulate_rate
from orchestrator.spec import FleetSpec

REQUESTS = 4000  # per (model, pool): p95s within a few percent, about a second each


class _Bucket:
    def __init__(self, input_tokens: int, output_tokens: int, share: float) -> None:
        self.input_tokens, self.output_tokens, self.share = input_tokens, output_tokens, share


def simulate_placement(spec: FleetSpec, placement: Placement, base_dir: Path | None = None, seed: int = 0) -> list[SimulatedRow]:
    """One row per (model, pool) with replicas and routed load: one replica simulated at its planned share."""
    models = {m.name: m for m in spec.models}
    pools = {p.pool: p for p in placement.pools}
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in placement.capacity}
    replicas = {(r.model, r.pool): r.count for r in placement.replicas}
    sizes = {(d.model, d.region): [(b.input_tokens, b.output_tokens) for b in d.size_mix] or [(d.input_tokens, d.output_tokens)]
             for d in placement.demand}
    planned = {(d.model, d.region): d.rps * d.peak_factor for d in placement.demand}
    load: dict[tuple[str, str], dict[tuple[int, int], float]] = defaultdict(lambda: defaultdict(float))
    for route in placement.routes:
        flows = route.bucket_rps or [route.share * planned[(route.model, route.region)]]
        for size, rps in zip(sizes[(route.model, route.region)], flows):
            load[(route.model, route.pool)][size] += rps
    rows = []
    for key, by_size in sorted(load.items()):
        total, count = sum(by_size.values()), replicas.get(key, 0)
        if total <= 0 or count <= 0:
            continue
        model = models[key[0]]
        arch = resolve_architecture(model.architecture, base_dir)
        replica = ReplicaModel(arch, gpu_spec(pools[key[1]].gpu), gpus[key], model.dtype, bundled_calibration())
        mix = [_Bucket(i, o, rps / total) for (i, o), rps in by_size.items() if rps > 0]
        summary = simulate_rate(replica, total / count, mix, model.slo, requests=REQUESTS, seed=seed)
        rows.append(SimulatedRow(model=key[0], pool=key[1], rps_per_replica=round(total / count, 4),
                                 ttft_p95_ms=round(summary.ttft_p95_ms, 1), tpot_p95_ms=round(summary.tpot_p95_ms, 2),
                                 within_slo=round(summary.within_slo, 4), meets_slo=summary.meets_slo))
    return rows
