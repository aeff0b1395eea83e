"""Cloud and on-prem pools: nodes through each cloud's node-pool scaler, replicas as Kubernetes Deployments.

Every non-local pool names the Kubernetes cluster (kube context) its nodes join, so one
provider covers them all and routes each step to the part that does it:

    ResizePool   aws/gcp/azure   the pool's scaler (`nodepools.scaler_for`: EKS node group,
                                 GKE node pool, AKS agent pool), one scaler per kind for the
                                 whole run, so an operation started is polled, not restarted
                 onprem          nothing to do: owned nodes are counted, never bought; a
                                 pool asked for more nodes than it has gets StepPending
    ScaleUp/Down any             the model's Deployment in the pool's namespace
                                 (`kubernetes.KubernetesDeployments`)
    SetCanary    any             a second Deployment, `<model>-canary`, of the new version
    Promote      any             the model's Deployment rolled to the new version, make-before-break
    SetTraffic   any             checked against the pod ratio (no weighted gateway on a cluster)

Nodes are observed from the cloud for cloud pools and from the cluster's nodes labelled
`gpufleet.io/pool=<pool>` for on-prem ones. A ScaleDown takes pods out of the site gateway
the Kubernetes way: a terminating pod leaves its Service's endpoints, and the pod's preStop
pause lets routers notice before vLLM drains.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

from pydantic import SecretStr

from orchestrator.errors import InputError
from orchestrator.providers.base import (
    Capability, FleetState, ObservedPool, Offer, Provider, ResizePool, Step, StepPending,
)
from orchestrator.providers.kubernetes import KubernetesDeployments
from orchestrator.providers.nodepools import NodePoolScaler, scaler_for
from orchestrator.providers.retry import Backoff
from orchestrator.settings import Settings
from orchestrator.spec import Pool

logger = logging.getLogger(__name__)

OWNED = "onprem"


class ClusterProvider(Provider):
    """The spec's cloud and on-prem pools (see module docstring)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.gpu, Capability.spot, Capability.node_scaling})

    def __init__(self, pools: list[Pool], settings: Settings, backoff: Backoff | None = None,
                 api_key: SecretStr | Callable[[], SecretStr] | None = None) -> None:
        """`api_key`: the gateway's key (or a function giving it), for the replicas (`KubernetesDeployments`)."""
        missing = [p.name for p in pools if not p.cluster]
        if missing:
            raise InputError(f"pools {', '.join(missing)} name no cluster: rebalance runs replicas as Kubernetes "
                             "Deployments on the cluster a pool's nodes join. To fix: set each pool's `cluster` "
                             "(its kube context)")
        self.pools = {p.name: p for p in pools}
        self.settings = settings
        self.backoff = backoff
        self.deployments = KubernetesDeployments(pools, settings, backoff, api_key=api_key)
        self._scalers: dict[tuple[str, bool], NodePoolScaler] = {}

    def offers(self) -> list[Offer]:
        """Cloud prices come from the catalog, not from here: offers carry the spec's own price (0 when unset)."""
        return [Offer(pool=p.name, gpu=p.gpu or "", gpus_per_node=p.gpus_per_node or 0, max_nodes=p.max_nodes,
                      cost_per_node_hour=p.cost_per_hour or 0.0) for p in self.pools.values()]

    def apply(self, step: Step) -> None:
        pool = self._pool(step.pool)
        if not isinstance(step, ResizePool):
            self.deployments.apply(step)
        elif pool.provider == OWNED:
            self._hold_owned(pool, step.nodes)
        else:
            self._scaler(pool).resize(pool, step.nodes)

    def observe(self) -> FleetState:
        pools = [self._observe_pool(p) for p in self.pools.values()]
        return FleetState(gateway=None, pools=pools, replicas=self.deployments.observe())

    def release(self) -> None:
        """Delete every replica; node pools keep the size they have (shrink them with a rebalance or the stacks)."""
        self.deployments.release()

    def _pool(self, name: str) -> Pool:
        if name not in self.pools:
            raise InputError(f"pool '{name}' is not a cloud or on-prem pool here. To fix: use one of {', '.join(self.pools)}")
        return self.pools[name]

    def _scaler(self, pool: Pool) -> NodePoolScaler:
        key = (pool.provider, pool.cluster is not None)
        if key not in self._scalers:
            self._scalers[key] = scaler_for(pool, self.settings, self.backoff)
        return self._scalers[key]

    def _observe_pool(self, pool: Pool) -> ObservedPool:
        return self.deployments.nodes(pool) if pool.provider == OWNED else self._scaler(pool).observe(pool)

    def _hold_owned(self, pool: Pool, nodes: int) -> None:
        present = self.deployments.nodes(pool).healthy_nodes
        if present < nodes:
            raise StepPending(f"on-prem pool {pool.name}: {present} of {nodes} nodes ready in cluster {pool.cluster}; "
                              "gpufleet does not add owned nodes", self.settings.provider_poll_s)
        logger.info("on-prem pool %s: %d nodes present, %d planned; nothing to resize", pool.name, present, nodes)
