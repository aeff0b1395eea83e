"""Shared by the route tests: a small spec with gateways and routing, placements built from route rows."""

from __future__ import annotations

from orchestrator.planner.placement import DemandRow, Placement, ReplicaRow, RouteRow, SolverInfo
from orchestrator.spec import FleetSpec, Model, Pool, Slo
from orchestrator.spec.models import Route53Dns, Routing

DOMAIN = "llm.example.com"


def spec(*, record: str = "{model}.{region}", ttl: int = 60, gateways: dict[str, str | None] | None = None,
         zone_id: str = "Z1", routing: bool = True) -> FleetSpec:
    """Pools a, b (one gateway each), c and d (behind one shared gateway), and a local pool; models m and n."""
    gateways = {"a": "gw-a.example.com", "b": "gw-b.example.com", "c": "gw-cd.example.com",
                "d": "gw-cd.example.com"} | (gateways or {})
    pools = [Pool(name=name, provider="aws", region="us-east-1", instance_type="p5.48xlarge", max_nodes=4,
                  gateway=gateways.get(name)) for name in ("a", "b", "c", "d")]
    pools.append(Pool(name="here", provider="local", region="local", gpu="CPU", gpus_per_node=2, cost_per_hour=0.05,
                      capacity="owned", max_nodes=1))
    slo = Slo(ttft_p95_ms=1000, tpot_p95_ms=100, max_rtt_ms=100)
    models = [Model(name=name, architecture="llama-3.1-8b", source="hf/x", slo=slo) for name in ("m", "n")]
    dns = Route53Dns(provider="route53", zone_id=zone_id, domain=DOMAIN, record=record, ttl=ttl)
    return FleetSpec(environment="routes-test", pools=pools, models=models,
                     routing=Routing(dns=dns) if routing else None)


def placement(routes: list[tuple[str, str, str, float]], replicas: dict[tuple[str, str], int] | None = None,
              demand: dict[tuple[str, str], float] | None = None) -> Placement:
    """A placement with just the rows routes read: (model, region, pool, share), replicas, demand."""
    demand = demand or {(m, r): 1.0 for m, r, _, _ in routes}
    replicas = replicas or {(m, p): 1 for m, _, p, s in routes if s > 0}
    return Placement(
        environment="routes-test", cost_per_hour=0.0, lower_bound_per_hour=0.0,
        solver=SolverInfo(status="optimal", seconds=0.0), models=[], pools=[], capacity=[], latency=[],
        demand=[DemandRow(model=m, region=r, rps=rps, input_tokens=100, output_tokens=10) for (m, r), rps in demand.items()],
        replicas=[ReplicaRow(model=m, pool=p, count=n) for (m, p), n in replicas.items()],
        routes=[RouteRow(model=m, region=r, pool=p, share=s, rtt_ms=10.0) for m, r, p, s in routes])
