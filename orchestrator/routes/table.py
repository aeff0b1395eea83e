"""The weighted records a placement wants: pure, from the spec's `routing.dns` and the plan's routes.

The plan says, per (model, user region), which pools serve what share. DNS cannot see the
model a request names, so by default there is one record per (model, region)
(`{model}.{region}.<domain>`); a template without `{model}` gives one record per region,
its weights the demand-weighted mix of the models' shares, and is refused where a gateway
in it serves no replica of a model users of that region ask for (its router would answer
404 for that model). Each record has one answer per pool with traffic, pointing at the
pool's `gateway`; pools behind one gateway give several answers with the same target, so
the gateway's total weight is exact and `gateway.py` reports how it splits them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from orchestrator.errors import InputError
from orchestrator.planner.placement import Placement
from orchestrator.routes.base import Target, WeightedRecord, fqdn, record_type
from orchestrator.routes.weights import integer_weights
from orchestrator.spec import FleetSpec


def dns_label(text: str) -> str:
    """`text` as one DNS label: lower-case a-z, 0-9 and '-' (llama-3.1-8b -> llama-3-1-8b), at most 63 long."""
    label = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")[:63].rstrip("-")
    if not label:
        raise InputError(f"'{text}' has no letter or digit to name a DNS record by. To fix: rename it")
    return label


@dataclass(frozen=True)
class RouteTable:
    """The records a placement wants (`records`) and the (model, region) pairs left alone, with why (`unrouted`)."""

    records: tuple[WeightedRecord, ...]
    unrouted: tuple[str, ...] = ()

    @classmethod
    def from_placement(cls, spec: FleetSpec, placement: Placement) -> RouteTable:
        """Records for every (model, region) the plan serves; raises InputError naming the spec field to fix."""
        if spec.routing is None or spec.routing.dns is None:
            raise InputError("the spec has no routing.dns. To fix: add routing.dns (docs/routes.md)")
        dns = spec.routing.dns
        by_model = "{model}" in dns.record
        shares: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for route in placement.routes:
            if route.share > 0:
                shares[(route.model, route.region)][route.pool] = route.share
        _require_gateways(spec, shares)
        unrouted = tuple(sorted(f"{d.model} from {d.region}: the plan serves none of it; its record is left as it is"
                                for d in placement.demand if (d.model, d.region) not in shares))
        if by_model:
            groups = {(model, region): pools for (model, region), pools in shares.items()}
        else:
            groups = _per_region(placement, shares, {p.name: p.gateway for p in spec.pools}, dns.record)
        gateways = {p.name: p.gateway for p in spec.pools}
        records: dict[str, WeightedRecord] = {}
        owner: dict[str, str] = {}
        for (model, region), pools in sorted(groups.items()):
            label = dns.record.replace("{region}", dns_label(region))
            label = label.replace("{model}", dns_label(model)) if by_model else label
            name = fqdn(f"{label}.{dns.domain}")
            if name in records:
                raise InputError(f"routing.dns.record: {owner[name]} and {model} from {region} both make the record "
                                 f"{name}. To fix: rename a model or region so that their DNS-safe names differ")
            weights = integer_weights(pools)
            targets = tuple(sorted(Target(pool, gateways[pool] or "", weight, record_type(gateways[pool] or ""))
                                   for pool, weight in weights.items() if weight > 0))
            if len({t.type for t in targets}) > 1:
                raise InputError(f"pools.gateway: the record {name} would point at both host names and IP addresses "
                                 f"({', '.join(f'{t.set_id}: {t.value}' for t in targets)}); one DNS name holds one "
                                 "kind. To fix: give these pools' gateways host names (or all addresses)")
            records[name] = WeightedRecord(name, dns.ttl, targets)
            owner[name] = f"{model} from {region}"
        return cls(tuple(records.values()), unrouted)


def _require_gateways(spec: FleetSpec, shares: dict[tuple[str, str], dict[str, float]]) -> None:
    """Every pool the plan sends traffic to needs a `gateway` for DNS to point at."""
    index = {p.name: i for i, p in enumerate(spec.pools)}
    missing: dict[str, list[str]] = defaultdict(list)
    for (model, region), pools in sorted(shares.items()):
        for pool in pools:
            if pool not in index:
                raise InputError(f"the placement routes {model} from {region} to pool '{pool}', which the spec does not "
                                 "have. To fix: plan again with this spec")
            if spec.pools[index[pool]].gateway is None:
                missing[pool].append(f"{model} from {region}")
    if missing:
        raise InputError("\n".join(
            f"pools[{index[pool]}].gateway: pool '{pool}' serves {', '.join(what)} but has no gateway for "
            "routing.dns to point at. To fix: set it to the host name or IP address of the pool's gateway"
            for pool, what in sorted(missing.items(), key=lambda item: index[item[0]])))


def _per_region(placement: Placement, shares: dict[tuple[str, str], dict[str, float]],
                gateways: dict[str, str | None], template: str) -> dict[tuple[str, str], dict[str, float]]:
    """One share set per region (keyed ("", region)): the models' shares weighted by their demand."""
    rps = {(d.model, d.region): d.rps for d in placement.demand}
    hosts: dict[str, set[str]] = defaultdict(set)  # gateway -> models with replicas behind it
    for row in placement.replicas:
        if row.count > 0 and gateways.get(row.pool):
            hosts[gateways[row.pool]].add(row.model)
    mixed: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    models: dict[str, list[str]] = defaultdict(list)
    for (model, region), pools in shares.items():
        models[region].append(model)
        for pool, share in pools.items():
            mixed[("", region)][pool] += rps.get((model, region), 1.0) * share
    for (_, region), pools in mixed.items():
        for gateway in sorted({gateways[p] for p in pools if gateways[p]}):
            lacking = sorted(m for m in models[region] if m not in hosts[gateway])
            if lacking:
                raise InputError(f"routing.dns.record: '{template}' makes one record for all models "
                                 f"of {region}, but gateway {gateway} serves no replica of {', '.join(lacking)}, "
                                 f"which users in {region} ask for. To fix: put {{model}} in routing.dns.record")
    return {key: dict(pools) for key, pools in mixed.items()}
