"""A second method for the plan's promise: simulate one replica of each (model, pool) at its planned load.

The planner sizes replicas with the closed-form capacity model (`profiles.closed_form`).
`profiles.simulate` runs vLLM's scheduler step by step on the same step times instead;
docs/capacity.md ("Checked by simulation") shows where the two disagree. This module applies
that check to a placement: for each (model, pool) with replicas, the planned req/s routed there
divided by its replicas, with the sizes routed there, as Poisson arrivals on one replica — TTFT
and TPOT p95 against the model's SLO. `derate` turns a miss into a correction the planner can
use: that pair's capacity scaled to the highest rate the simulated replica sustains.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.inputs import CapacityInput, FleetInputs
from orchestrator.planner.placement import Placement, SimulatedRow
from orchestrator.profiles.architectures import resolve_architecture
from orchestrator.profiles.closed_form import Size
from orchestrator.profiles.perf_model import ReplicaModel, bundled_calibration
from orchestrator.profiles.simulate import max_rate_within_slo, simulate_rate
from orchestrator.spec import FleetSpec
from orchestrator.spec.models import Model

REQUESTS = 4000  # per (model, pool): p95s within a few percent, about a second each

Pair = tuple[str, str]  # (model, pool)


class PairLoad(NamedTuple):
    """What one (model, pool) of a placement carries, per replica."""

    model: Model
    replica: ReplicaModel
    mix: list[Size]  # the sizes routed there, shares of its requests
    rps_per_replica: float
    closed_form_rps: float  # the placement's capacity for that mix (1 / sum share_b / rate_b)


def pair_loads(spec: FleetSpec, placement: Placement, base_dir: Path | None = None) -> Iterator[tuple[Pair, PairLoad]]:
    """Each (model, pool) with replicas and routed load, in name order."""
    models = {m.name: m for m in spec.models}
    pools = {p.pool: p for p in placement.pools}
    capacity = {(c.model, c.pool): c for c in placement.capacity}
    replicas = {(r.model, r.pool): r.count for r in placement.replicas}
    sizes = {(d.model, d.region): [(b.input_tokens, b.output_tokens) for b in d.size_mix] or [(d.input_tokens, d.output_tokens)]
             for d in placement.demand}
    planned = {(d.model, d.region): d.rps * d.peak_factor for d in placement.demand}
    load: dict[Pair, dict[tuple[int, int], float]] = defaultdict(lambda: defaultdict(float))
    for route in placement.routes:
        flows = route.bucket_rps or [route.share * planned[(route.model, route.region)]]
        for size, rps in zip(sizes[(route.model, route.region)], flows):
            load[(route.model, route.pool)][size] += rps
    for key, by_size in sorted(load.items()):
        total, count = sum(by_size.values()), replicas.get(key, 0)
        if total <= 0 or count <= 0:
            continue
        model, cap = models[key[0]], capacity[key]
        arch = resolve_architecture(model.architecture, base_dir)
        replica = ReplicaModel(arch, gpu_spec(pools[key[1]].gpu), cap.gpus_per_replica, model.dtype, bundled_calibration())
        mix = [Size(i, o, rps / total) for (i, o), rps in by_size.items() if rps > 0]
        rates = {(s.input_tokens, s.output_tokens): s.rps for s in cap.by_size}
        time_per_request = sum(b.share / rates.get((b.input_tokens, b.output_tokens), cap.rps_per_replica) for b in mix)
        yield key, PairLoad(model, replica, mix, total / count, 1 / time_per_request if time_per_request else 0.0)


def simulate_placement(spec: FleetSpec, placement: Placement, base_dir: Path | None = None, seed: int = 0,
                       factors: Mapping[Pair, float] | None = None) -> list[SimulatedRow]:
    """One row per (model, pool) with replicas and routed load: one replica simulated at its planned share.
    `factors`: the capacity scaling `derate` applied to each pair, reported on its row."""
    rows = []
    for key, pair in pair_loads(spec, placement, base_dir):
        summary = simulate_rate(pair.replica, pair.rps_per_replica, pair.mix, pair.model.slo, requests=REQUESTS, seed=seed)
        rows.append(SimulatedRow(model=key[0], pool=key[1], rps_per_replica=round(pair.rps_per_replica, 4),
                                 ttft_p95_ms=round(summary.ttft_p95_ms, 1), tpot_p95_ms=round(summary.tpot_p95_ms, 2),
                                 within_slo=round(summary.within_slo, 4), meets_slo=summary.meets_slo,
                                 capacity_factor=round((factors or {}).get(key, 1.0), 4)))
    return rows


def derate(spec: FleetSpec, inputs: FleetInputs, placement: Placement, missed: list[SimulatedRow],
           base_dir: Path | None = None, factors: Mapping[Pair, float] | None = None,
           seed: int = 0) -> tuple[FleetInputs, dict[Pair, float]]:
    """The inputs with each missed pair's capacity (every size's rate) scaled to the highest rate one
    simulated replica sustains within the SLO for the mix routed there (the same requests and seed
    as the check, so the next check of that mix at that rate passes); and the cumulative factors."""
    factors = dict(factors or {})
    wanted = {(r.model, r.pool) for r in missed}
    scale: dict[Pair, float] = {}
    for key, pair in pair_loads(spec, placement, base_dir):
        if key not in wanted or pair.closed_form_rps <= 0:
            continue
        best = max_rate_within_slo(pair.replica, pair.mix, pair.model.slo, start_rps=pair.rps_per_replica,
                                   requests=REQUESTS, seed=seed)
        scale[key] = min(1.0, best / pair.closed_form_rps)
        factors[key] = factors.get(key, 1.0) * scale[key]

    def scaled(c: CapacityInput) -> CapacityInput:
        f = scale.get((c.model, c.pool))
        if f is None:
            return c
        return dataclasses.replace(
            c, rps_per_replica=round(c.rps_per_replica * f, 4), source=c.source.removesuffix("+simulated") + "+simulated",
            by_size=tuple(dataclasses.replace(s, rps=round(s.rps * f, 4)) for s in c.by_size))

    return dataclasses.replace(inputs, capacity=tuple(scaled(c) for c in inputs.capacity)), factors
