"""The placement: the planner's answer, self-describing (the placement contract in DESIGN.md).

It carries everything the planner weighed (models, demand, pools, capacity, latency) next
to what it decided (nodes, replicas, routes), so that a policy engine, a reviewer or an
independent checker can verify it without re-deriving the inputs. Extra fields beyond the
contract are welcome; the contract's must be there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SolverInfo(_Row):
    name: str = "highs"
    status: str = Field(description="optimal, time_limit, infeasible, ...")
    seconds: float
    mip_gap: float | None = Field(None, description="Relative gap at termination; None when no MIP was solved.")


class ModelRow(_Row):
    model: str
    min_replicas: int
    max_rtt_ms: float
    ttft_p95_ms: float
    tpot_p95_ms: float


class DemandRow(_Row):
    model: str
    region: str
    rps: float
    input_tokens: int
    output_tokens: int


class PoolRow(_Row):
    pool: str
    provider: str
    region: str
    zone: str | None = None
    gpu: str
    capacity: Literal["on_demand", "spot", "reserved", "owned"]
    gpus_per_node: int
    min_nodes: int
    max_nodes: int
    cost_per_node_hour: float
    nodes: int = Field(0, description="Nodes the plan runs in this pool.")
    cost_per_hour: float = Field(0.0, description="nodes x cost_per_node_hour.")


class CapacityRow(_Row):
    model: str
    pool: str
    gpus_per_replica: int
    rps_per_replica: float
    source: str = "estimate"


class LatencyRow(_Row):
    region: str
    pool: str
    rtt_ms: float
    source: str = "estimated"


class ReplicaRow(_Row):
    model: str
    pool: str
    count: int


class RouteRow(_Row):
    model: str
    region: str
    pool: str
    share: float = Field(ge=0, le=1, description="Share of the (model, region) demand this pool serves.")
    rtt_ms: float


class UnservedRow(_Row):
    model: str
    region: str | None = None
    rps: float = 0.0
    reason: str


class Placement(_Row):
    """A plan for one environment: what runs where, what it costs, and why."""

    environment: str
    cost_per_hour: float
    lower_bound_per_hour: float
    solver: SolverInfo
    models: list[ModelRow]
    demand: list[DemandRow]
    pools: list[PoolRow]
    capacity: list[CapacityRow]
    latency: list[LatencyRow]
    replicas: list[ReplicaRow]
    routes: list[RouteRow]
    unserved: list[UnservedRow] = Field(default_factory=list)
    explain: list[str] = Field(default_factory=list)
