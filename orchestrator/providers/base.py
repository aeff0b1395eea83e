"""The one small interface every provider implements, and the steps and observations it speaks.

A provider turns declarative steps into running replicas in one kind of place and reports
what it observes there. It never calls the planner. Steps are idempotent: applying one that
already holds is a success, and `apply` returns promptly, raising `StepPending` while the
place is still getting there (a replica loading its model, a node booting), so the caller
(rebalance, `orchestrator up`) polls and can show progress.

    ResizePool(pool, nodes)        the pool has `nodes` nodes (providers that cannot add
                                   nodes, local and on-prem, hold what they have)
    ScaleUp(model, pool, count)    at least `count` replicas ready and in the gateway
    ScaleDown(model, pool, count)  at most `count`: the others leave the gateway first,
                                   then drain (in-flight requests finish) and stop

A rollout (`orchestrator rollout`) adds two steps for a model moving to a new version:

    SetCanary(model, pool, count, replica)  `count` replicas of the new version ready beside
                                   the model's stable ones (0: none; they drain and stop)
    Promote(model, pool, replica)  the stable replicas run `replica` (the new version), as
                                   many as before, make-before-break; the canary's replicas
                                   may be taken over; no canary is left
    SetTraffic(model, pool, weights)  the pool's gateway sends the model's requests to its
                                   versions in these proportions ({"v1": 95, "v2": 5})
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ProviderError


class StepPending(ProviderError):
    """The step is under way; apply it again after `retry_after_s` (not a failure)."""

    def __init__(self, message: str, retry_after_s: float = 30.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Capability(str, enum.Enum):
    """What a provider can do beyond the interface; checked before a plan is applied."""

    gpu = "gpu"                      # real accelerators (local runs CPU vLLM)
    spot = "spot"                    # spot/preemptible capacity
    node_scaling = "node_scaling"    # adds and removes nodes itself
    process_pids = "process_pids"    # replicas are local processes with pids
    traffic_weights = "traffic_weights"  # its gateway splits a model over versions by weight (else: by pod counts)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReplicaSpec(_Frozen):
    """What one replica of a model runs: the replica entrypoint's settings."""

    source: str = Field(description="Weights: s3://, gs://, az://, a Hugging Face id or a local path.")
    served_name: str = Field(description="The model name clients ask for.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per replica.")
    max_model_len: int | None = Field(None, gt=0, description="Longest context served, tokens.")
    version: str | None = Field(None, description="The model's release (spec `models[].version`/`versions`); None: the model's own fields, as before versions existed.")
    image: str | None = Field(None, description="Image pinned by digest; None: the environment's image.")
    vllm_args: tuple[str, ...] = Field((), description="Extra vLLM server arguments of this version.")
    idle_after_s: float | None = Field(None, description="Scale to zero: stop the replicas after this long without a request; None: never.")
    wake_hold_s: float | None = Field(None, description="Scale to zero: how long the gateway holds a request while the model wakes.")


class ResizePool(_Frozen):
    kind: Literal["resize_pool"] = "resize_pool"
    pool: str
    nodes: int = Field(ge=0)


class ScaleUp(_Frozen):
    kind: Literal["scale_up"] = "scale_up"
    model: str
    pool: str
    count: int = Field(ge=0)
    replica: ReplicaSpec


class ScaleDown(_Frozen):
    kind: Literal["scale_down"] = "scale_down"
    model: str
    pool: str
    count: int = Field(ge=0)


class SetCanary(_Frozen):
    kind: Literal["set_canary"] = "set_canary"
    model: str
    pool: str
    count: int = Field(ge=0)
    replica: ReplicaSpec


class Promote(_Frozen):
    kind: Literal["promote"] = "promote"
    model: str
    pool: str
    replica: ReplicaSpec


class SetTraffic(_Frozen):
    kind: Literal["set_traffic"] = "set_traffic"
    model: str
    pool: str
    weights: dict[str, float] = Field(description="Version -> relative weight (>= 0; at least one positive).")


Step = Annotated[ResizePool | ScaleUp | ScaleDown | SetCanary | Promote | SetTraffic, Field(discriminator="kind")]


class Offer(_Frozen):
    """Capacity a provider can run replicas on (a pool it manages)."""

    pool: str
    gpu: str
    gpus_per_node: int
    max_nodes: int
    cost_per_node_hour: float


class ObservedReplica(_Frozen):
    model: str
    pool: str
    url: str
    healthy: bool
    pid: int | None = Field(None, description="Local replicas only.")
    restarts: int = 0
    version: str | None = Field(None, description="The release it runs (ReplicaSpec.version).")
    canary: bool = Field(False, description="A rollout's new version, beside the stable replicas.")


class ObservedPool(_Frozen):
    pool: str
    nodes: int = Field(description="Nodes present, whatever their state.")
    healthy_nodes: int
    requested: int | None = Field(None, description="The size asked of the cloud (booting nodes count); None where nothing is asked.")


class ObservedGateway(_Frozen):
    url: str
    healthy: bool
    metrics_url: str | None = None


class FleetState(_Frozen):
    """What a provider observes now: facts, probed, not what it was asked for."""

    gateway: ObservedGateway | None
    pools: list[ObservedPool]
    replicas: list[ObservedReplica]
    planned: dict[str, int] = Field(default_factory=dict, description="'model@pool' -> replicas asked for.")
    asleep: dict[str, int] = Field(default_factory=dict, description="'model@pool' -> replicas of a model scaled to zero while idle (they start on its next request).")


class Provider(ABC):
    """One kind of place replicas run. Subclasses declare `capabilities`."""

    capabilities: ClassVar[frozenset[Capability]]

    @abstractmethod
    def offers(self) -> list[Offer]:
        """The pools this provider can run replicas on, with their size and price."""

    @abstractmethod
    def apply(self, step: Step) -> None:
        """Move toward `step`; return once it holds, raise StepPending while under way."""

    @abstractmethod
    def observe(self) -> FleetState:
        """Replicas, pools and gateway as they are now (probed)."""

    @abstractmethod
    def release(self) -> None:
        """Stop everything this provider runs for the environment; idempotent, StepPending while stopping."""
