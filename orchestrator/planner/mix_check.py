"""Does each pool carry what the plan routes to it? Recomputed from the placement JSON alone.

The MILP's capacity rows say Σ_k f_kp / a_kp ≤ x_mp; this module re-derives the left side from
the contract's rows — routes with their per-bucket req/s, capacity per size, replicas, pool
markets — so a reviewer (or a test) can check a plan without trusting the solver. It also
measures a plan made for mean request sizes against the real size mix: how much of it the
mean-size plan would carry within the SLO.
"""

from __future__ import annotations

from collections import defaultdict

from orchestrator.planner.placement import MixCheckRow, Placement

EPS = 1e-9


def check_mix(placement: Placement, reference: Placement | None = None) -> list[MixCheckRow]:
    """Per (model, pool) with replicas or routes: the load in replicas and the share carried within the SLO.

    `reference`: a placement of the same fleet whose demand (size mix, peak factor) and
    capacity per size to check against, e.g. the size-aware plan when checking a plan made at
    the mean size; its capacity rows must be for the same replica sizes. A route's req/s are
    split over the reference mix by the buckets' shares unless the route lists its own.
    """
    own = reference is None
    reference = reference or placement
    mixes = {(d.model, d.region): ([(b.input_tokens, b.output_tokens, b.share) for b in d.size_mix]
                                   or [(d.input_tokens, d.output_tokens, 1.0)], d.rps * d.peak_factor) for d in reference.demand}
    rates = {(c.model, c.pool): {(s.input_tokens, s.output_tokens): s.rps for s in c.by_size} for c in reference.capacity}
    mean_rates = {(c.model, c.pool): c.rps_per_replica for c in reference.capacity if not c.by_size}  # plans made before size mixes
    spot = {p.pool for p in placement.pools if p.capacity == "spot"}
    derate = 1.0 + placement.spot_overprovision
    replicas = {(r.model, r.pool): r.count for r in placement.replicas}
    load: dict[tuple[str, str], float] = defaultdict(float)
    lost: dict[tuple[str, str], float] = defaultdict(float)  # req/s of sizes the pool cannot serve at all
    routed: dict[tuple[str, str], float] = defaultdict(float)
    for route in placement.routes:
        key = (route.model, route.pool)
        buckets, planned = mixes.get((route.model, route.region), ([], 0.0))
        if own and route.bucket_rps:
            flows = route.bucket_rps
        else:
            flows = [route.share * planned * share for _, _, share in buckets]
        for bucket, rps in zip(buckets, flows):
            rate = mean_rates[key] if key in mean_rates else rates.get(key, {}).get(bucket[:2], 0.0)
            rate = rate / derate if route.pool in spot else rate
            routed[key] += rps
            if rate <= EPS:
                lost[key] += rps
            else:
                load[key] += rps / rate
    rows = []
    for key in sorted(set(load) | set(lost) | set(replicas)):
        count, need = replicas.get(key, 0), load.get(key, 0.0)
        servable = routed[key] - lost[key]
        within = servable * min(1.0, count / need) if need > EPS else servable
        share = within / routed[key] if routed[key] > EPS else 1.0
        rows.append(MixCheckRow(model=key[0], pool=key[1], replicas=count, load_replicas=round(need, 4), carried_share=round(share, 4)))
    return rows


def carried_share(rows: list[MixCheckRow], placement: Placement) -> float:
    """Share of all routed requests carried within the SLO, weighting each pool by what it is routed."""
    routed: dict[tuple[str, str], float] = defaultdict(float)
    for d in placement.demand:
        for r in placement.routes:
            if (r.model, r.region) == (d.model, d.region):
                routed[(r.model, r.pool)] += r.share * d.rps * d.peak_factor
    total = sum(routed.values())
    return sum(routed[(row.model, row.pool)] * row.carried_share for row in rows) / total if total > EPS else 1.0
