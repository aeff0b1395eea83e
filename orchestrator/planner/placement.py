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
    mip_gap: float | None = Field(None, description="(cost − lower_bound_per_hour) / cost: the gap on $/h to the best placement of the full problem; None when not proven.")
    pairs: list[int] | None = Field(None, description="(model, pool) pairs in the final MILP and all that could host; the rest were priced out.")


class SizeBucketRow(_Row):
    input_tokens: int
    output_tokens: int
    share: float
    label: str | None = None


class ModelRow(_Row):
    model: str
    min_replicas: int
    max_rtt_ms: float
    ttft_p95_ms: float
    tpot_p95_ms: float


class DemandRow(_Row):
    model: str
    region: str
    rps: float = Field(description="Mean requests/s.")
    input_tokens: int
    output_tokens: int
    peak_factor: float = Field(1.0, description="The plan carries rps x peak_factor within the SLO.")
    peak_source: str | None = None
    size_mix: list[SizeBucketRow] = Field(default_factory=list, description="Size buckets the capacity is sized for; empty: one at the means.")


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


class SizeRateRow(_Row):
    input_tokens: int
    output_tokens: int
    rps: float = Field(description="Requests/s of this size one replica sustains within the SLO (0: it cannot).")


class CapacityRow(_Row):
    model: str
    pool: str
    gpus_per_replica: int
    rps_per_replica: float = Field(description="For the model's whole size mix (the part this pool can serve).")
    source: str = "estimate"
    by_size: list[SizeRateRow] = Field(default_factory=list, description="Per size bucket of the model's demand.")


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
    bucket_rps: list[float] = Field(default_factory=list, description="Planned req/s of each size bucket of the demand (its size_mix order) this route carries.")


class MixCheckRow(_Row):
    """Recomputed from the rows above, not read from the solver: does each pool carry what is routed to it?"""

    model: str
    pool: str
    replicas: int
    load_replicas: float = Field(description="Σ over routes and buckets of planned req/s / req/s per replica (spot derated).")
    carried_share: float = Field(description="Share of the routed requests carried within the SLO: min(1, replicas / load), 0 for sizes the pool cannot serve.")


class MeanSizePlan(_Row):
    """The same fleet planned the naive way (every demand at its mean sizes, peak factor 1), measured on the real demand."""

    cost_per_hour: float = Field(description="$/h of the plan made at the mean request sizes and the mean rate.")
    carried_share: float = Field(description="Share of the real demand (its size mix, at its planned rate) that plan carries within the SLO.")


class SimulatedRow(_Row):
    """One (model, pool) of the plan, one replica simulated at its planned load (`planner.slo_check`)."""

    model: str
    pool: str
    rps_per_replica: float = Field(description="Planned req/s routed to the pool / its replicas.")
    ttft_p95_ms: float
    tpot_p95_ms: float
    within_slo: float = Field(description="Share of simulated requests with TTFT and TPOT within the SLO.")
    meets_slo: bool = Field(description="Simulated TTFT p95 and TPOT p95 both within the model's SLO.")
    capacity_factor: float = Field(1.0, description="The closed-form capacity of this (model, pool) was scaled by this "
                                   "factor because a simulated replica missed the SLO at it (`plan --simulate` re-plans with it).")


class BaselineRow(_Row):
    """What the placement is compared with (`planner.baselines`): one way of placing replicas without gpufleet."""

    name: str = Field(description="single_cloud, greedy, per_region or lp_bound.")
    description: str = ""
    cost_per_hour: float | None = Field(description="$/h of the baseline; None when it does not apply.")
    serves_all: bool = Field(description="False when the baseline cannot meet every SLO.")
    detail: str = ""
    saving: float | None = Field(None, description="1 - this plan's $/h / the baseline's.")


class UnservedRow(_Row):
    model: str
    region: str | None = None
    rps: float = Field(0.0, description="Planned req/s left unserved.")
    size: str | None = Field(None, description="The size bucket left unserved, when only some sizes are.")
    reason: str


class Placement(_Row):
    """A plan for one environment: what runs where, what it costs, and why."""

    schema_version: Literal[1] = Field(1, description="The contract's version (docs/contracts.md); a placement without it is version 1.")
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
    mix_check: list[MixCheckRow] = Field(default_factory=list)
    spot_overprovision: float = Field(0.25, description="Spot replicas count at 1/(1+x) of their capacity in this plan.")
    simulated: list[SimulatedRow] | None = Field(None, description="`plan --simulate`: each (model, pool) checked by simulating one "
                                                 "replica at its planned load; None when not asked for.")
    mean_size_plan: MeanSizePlan | None = Field(None, description="What a plan at the mean request sizes and rate would cost "
                                                "and carry of this demand (`plan`); None when the demand has no size mix and no peak factor.")
    baselines: list[BaselineRow] | None = Field(None, description="The baselines of `planner.baselines` under the same SLOs, "
                                                "guardrails and options, with this plan's saving against each (`plan`); "
                                                "None when not computed (`plan --no-baselines`).")
