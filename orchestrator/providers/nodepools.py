"""Node pools in the clouds: observe their size and health, resize them, one small interface for all.

`rebalance` sizes each cloud pool to the plan's `nodes` before it places replicas there
(make-before-break) and after it has drained the replicas it removes. A pool with a
`cluster` is the managed Kubernetes node pool the stacks declare, named after the pool:

    aws    EKS managed node group      update_nodegroup_config;  nodes read from its Auto Scaling groups
    gcp    GKE node pool               setSize (per zone), or each zone's managed instance group's resize
                                       when the count does not split evenly; nodes read from those groups
    azure  AKS agent pool              agentPools PUT (count);  nodes read from its VM scale set

A cloud pool without a `cluster` is a plain instance group of the pool's name (nodes that
join a cluster by their own bootstrap): an Auto Scaling group, a zonal managed instance
group, a VM scale set. docs/providers.md lists the calls, roles, waits and retries.

`resize` is idempotent and returns promptly: it asks the cloud once, then raises
`StepPending` until the cloud's operation is done, and succeeds (doing nothing) once the
pool's requested size is `nodes` and nothing is under way. It never asks beyond the spec's
`max_nodes` (`InputError`) nor beyond the cloud group's own maximum (`QuotaExceeded`).
A scaler keeps the operations it started, so keep one per provider and kind (`scaler_for`)
for the whole rebalance; a new one still works, reading progress from the pool's status.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.base import ObservedPool, StepPending
from orchestrator.providers.errors import ProviderUnavailable, QuotaExceeded
from orchestrator.providers.retry import Backoff, call_with_retries
from orchestrator.settings import Settings
from orchestrator.spec import Pool

logger = logging.getLogger(__name__)

T = TypeVar("T")


class NodePoolScaler(ABC):
    """Observe and resize one kind of cloud node pool (see module docstring)."""

    provider: ClassVar[str]

    @abstractmethod
    def observe(self, pool: Pool) -> ObservedPool:
        """The pool's nodes as the cloud reports them now: instances present, and those running healthy."""

    @abstractmethod
    def resize(self, pool: Pool, nodes: int) -> None:
        """Move the pool to `nodes` nodes; return once the cloud is done, raise StepPending while it works."""


@dataclass(frozen=True)
class GroupState:
    """One node pool as its cloud reports it now."""

    target: int                       # the size asked of the cloud (desired size, node count, capacity)
    nodes: int                        # instances present, whatever their state
    healthy_nodes: int                # instances running with nothing pending
    max_size: int | None = None       # the group's own ceiling; None: only quotas limit it
    min_size: int = 0                 # the group's own floor
    busy: str | None = None           # what the cloud is still doing to the group; None: idle
    failure: ProviderError | None = None  # why the group cannot reach `target` (quota, stockout), if it says
    parts: tuple[Any, ...] = ()       # the cloud's sub-groups (a GKE pool's per-zone instance groups)
    autoscaled: bool = False          # the cloud's own autoscaler sizes the group too


class GroupScaler(NodePoolScaler):
    """What every cloud shares: bounds, idempotence, pending operations, retries, logging.

    A subclass reads one group (`_read`) and asks for a new size (`_request`, returning a
    handle of the operation it started, or None when the cloud is done at once); where an
    operation has its own status it polls the handle (`_poll`: a note while it runs, None
    when done, a typed error when it failed). Every SDK call goes through `_call` (retried, errors translated).
    """

    def __init__(self, settings: Settings, backoff: Backoff | None,
                 translate: Callable[[str], AbstractContextManager[None]]) -> None:
        self.settings = settings
        self.backoff = backoff or Backoff.from_settings(settings)
        self._translate = translate
        self._pending: dict[str, Any] = {}

    @abstractmethod
    def _read(self, pool: Pool) -> GroupState: ...

    @abstractmethod
    def _request(self, pool: Pool, state: GroupState, nodes: int) -> Any | None: ...

    def _poll(self, pool: Pool, handle: Any) -> str | None:
        """By default an operation is done once the group is no longer busy; its outcome shows in `_read`."""
        return self._read(pool).busy

    def observe(self, pool: Pool) -> ObservedPool:
        state = self._read(pool)
        return ObservedPool(pool=pool.name, nodes=state.nodes, healthy_nodes=state.healthy_nodes, requested=state.target)

    def resize(self, pool: Pool, nodes: int) -> None:
        if not pool.min_nodes <= nodes <= pool.max_nodes:
            raise InputError(f"{self.where(pool)}: {nodes} nodes is outside the spec's bounds "
                             f"({pool.min_nodes} to {pool.max_nodes}). To fix: plan within min_nodes and max_nodes")
        handle = self._pending.pop(pool.name, None)
        if handle is not None:
            try:
                note = self._poll(pool, handle)
            except ProviderUnavailable as exc:  # the operation failed for a passing reason: ask again
                logger.warning("%s: resize operation failed, asking again: %s", self.where(pool), exc)
                raise StepPending(f"{self.where(pool)}: asking again after {exc}",
                                  self.settings.provider_poll_s) from exc
            if note is not None:
                self._pending[pool.name] = handle
                raise StepPending(f"{self.where(pool)}: {note}", self.settings.provider_poll_s)
            logger.info("resize done: provider=%s region=%s pool=%s", self.provider, pool.region, pool.name)
        state = self._read(pool)
        if state.max_size is not None and nodes > state.max_size:
            raise QuotaExceeded(f"{self.where(pool)}: {nodes} nodes is beyond the group's own maximum of "
                                f"{state.max_size}. To fix: deploy the stacks (max_nodes {pool.max_nodes}) or plan "
                                "fewer nodes; rebalance re-plans without this pool")
        if nodes < state.min_size:
            raise InputError(f"{self.where(pool)}: {nodes} nodes is below the group's own minimum of "
                             f"{state.min_size}. To fix: deploy the stacks so the group's minimum is min_nodes")
        if state.busy:
            raise StepPending(f"{self.where(pool)}: {state.busy}", self.settings.provider_poll_s)
        if state.target == nodes:
            if state.failure is not None and state.healthy_nodes < nodes:
                raise state.failure
            return
        handle = self._request(pool, state, nodes)
        logger.info("resize: provider=%s region=%s pool=%s from %d to %d nodes",
                    self.provider, pool.region, pool.name, state.target, nodes)
        if handle is not None:
            self._pending[pool.name] = handle
            raise StepPending(f"{self.where(pool)}: resizing from {state.target} to {nodes} nodes",
                              self.settings.provider_poll_s)

    def where(self, pool: Pool) -> str:
        """Names the pool in messages: provider, region, cluster, pool."""
        cluster = f" cluster {pool.cluster}" if pool.cluster else ""
        return f"{self.provider} {pool.region}{cluster} pool {pool.name}"

    def _call(self, pool: Pool, what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One SDK call, retried with backoff while the cloud throttles or fails passingly."""
        return call_with_retries(lambda: call(*args, **kwargs), backoff=self.backoff,
                                 translate=lambda: self._translate(self.where(pool)),
                                 what=f"{self.where(pool)} {what}")

    def _errors(self, pool: Pool) -> AbstractContextManager[None]:
        """The SDK's errors as typed provider errors, without retrying (an operation's own outcome)."""
        return self._translate(self.where(pool))


def split_evenly(total: int, parts: int) -> Iterator[int]:
    """`total` over `parts` as evenly as whole numbers allow, larger shares first: 5 over 3 -> 2, 2, 1."""
    share, extra = divmod(total, parts)
    return (share + (i < extra) for i in range(parts))


# (provider, has a cluster) -> the module and class of its scaler
_SCALERS = {
    ("aws", True): ("orchestrator.providers.aws.provider", "EksNodeGroups"),
    ("aws", False): ("orchestrator.providers.aws.provider", "AutoScalingGroups"),
    ("gcp", True): ("orchestrator.providers.gcp.provider", "GkeNodePools"),
    ("gcp", False): ("orchestrator.providers.gcp.provider", "ManagedInstanceGroups"),
    ("azure", True): ("orchestrator.providers.azure.provider", "AksAgentPools"),
    ("azure", False): ("orchestrator.providers.azure.provider", "ScaleSets"),
}


def scaler_for(pool: Pool, settings: Settings, backoff: Backoff | None = None) -> NodePoolScaler:
    """The scaler of a cloud pool's kind; its SDK loads on first use (a missing one names the extra)."""
    key = (pool.provider, pool.cluster is not None)
    if key not in _SCALERS:
        raise InputError(f"pool {pool.name}: {pool.provider} pools have no cloud node pool to scale. "
                         "To fix: size on-prem and local pools outside gpufleet")
    module, name = _SCALERS[key]
    return getattr(importlib.import_module(module), name)(settings, backoff)

