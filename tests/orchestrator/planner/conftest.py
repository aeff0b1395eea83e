"""Small planning problems built directly from plan inputs (no spec, no catalog)."""

from __future__ import annotations

from orchestrator.inputs import CapacityInput, DemandInput, ModelInput, PoolInput
from orchestrator.planner.problem import Problem


def pool(name: str, cost: float, gpus: int = 8, lo: int = 0, hi: int = 4, capacity: str = "on_demand",
         provider: str = "aws", region: str | None = None, zone: str | None = None) -> PoolInput:
    return PoolInput(pool=name, provider=provider, region=region or name, zone=zone, gpu="H100", gpu_memory_gb=80,
                     capacity=capacity, gpus_per_node=gpus, min_nodes=lo, max_nodes=hi, cost_per_node_hour=cost,
                     price_source="test", continent="europe")


def model(name: str, min_replicas: int = 0, max_rtt: float = 100.0) -> ModelInput:
    return ModelInput(model=name, min_replicas=min_replicas, max_rtt_ms=max_rtt, ttft_p95_ms=1000, tpot_p95_ms=100)


def problem(pools, models, demand, capacity, rtt, **extra) -> Problem:
    """`demand`: (model, region, rps); `capacity`: (model, pool) -> (gpus per replica, rps per replica); `rtt`: (region, pool) -> ms."""
    return Problem(
        environment="test",
        pools=tuple(pools),
        models=tuple(models),
        demand=tuple(DemandInput(m, r, rps, 1000, 200) for m, r, rps in demand),
        capacity={(m, p): CapacityInput(m, p, g, rate, "estimate", "tpot") for (m, p), (g, rate) in capacity.items()},
        rtt=dict(rtt),
        **extra,
    )
