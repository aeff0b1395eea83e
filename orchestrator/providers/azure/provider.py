"""Azure node pools: an AKS agent pool per pool with a cluster, else a VM scale set.

AKS sizes an agent pool by a PUT of the pool with its new `count`; with the cluster
autoscaler on, AKS takes no manual count, so the PUT also raises or lowers the
autoscaler's floor (`minCount`) to the planned count: the autoscaler may still add
nodes up to `maxCount` but never removes planned ones. Nodes and their health come from
the agent pool's scale set (tagged `aks-managed-poolName` in the cluster's node resource
group). A plain scale set is sized by a PATCH of `sku.capacity`. Both are long-running
operations: the SDK's poller follows `Azure-AsyncOperation` in the background and
`resize` looks at it on each call; a scaler started afresh reads `provisioningState`.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from orchestrator.errors import InputError
from orchestrator.providers.azure.api import compute_client, container_client, translate_errors
from orchestrator.providers.azure.names import aks_pool_name
from orchestrator.providers.errors import PoolNotFound
from orchestrator.providers.nodepools import GroupScaler, GroupState
from orchestrator.providers.retry import Backoff
from orchestrator.settings import Settings
from orchestrator.spec import Pool

AKS_POOL_TAG = "aks-managed-poolName"
_SETTLED = {"Succeeded", "Failed", "Canceled"}


class ScaleSetRef(NamedTuple):
    group: str
    name: str


def instance_counts(view: Any) -> tuple[int, int]:
    """(VMs present, VMs provisioned) from a scale set's instance view summary."""
    summary = view.virtual_machine.statuses_summary if view.virtual_machine else None
    counts = {s.code.lower(): s.count for s in summary or []}
    return sum(counts.values()), counts.get("provisioningstate/succeeded", 0)


def busy(provisioning_state: str | None) -> str | None:
    """What the resource is still doing, from its provisioningState (None once settled)."""
    if provisioning_state is None or provisioning_state in _SETTLED:
        return None
    return f"provisioningState is {provisioning_state}"


class _AzureScaler(GroupScaler):
    provider: ClassVar[str] = "azure"

    def __init__(self, settings: Settings, backoff: Backoff | None = None) -> None:
        super().__init__(settings, backoff, translate_errors)
        self._clients: dict[str, Any] = {}

    def _client(self, name: str) -> Any:
        """"container" (AKS) or "compute" (scale sets), built on first use."""
        if name not in self._clients:
            build = container_client if name == "container" else compute_client
            self._clients[name] = build(self.settings)
        return self._clients[name]

    def _instances(self, pool: Pool, scale_set: ScaleSetRef) -> tuple[int, int]:
        compute = self._client("compute").virtual_machine_scale_sets
        return instance_counts(self._call(pool, "virtualMachineScaleSets.getInstanceView", compute.get_instance_view,
                                          scale_set.group, scale_set.name))

    def _poll(self, pool: Pool, handle: Any) -> str | None:
        """`handle` is the SDK's LROPoller; its result raises the operation's error, if it failed."""
        if not handle.done():
            return "the long-running operation is under way"
        with self._errors(pool):
            handle.result()
        return None


class AksAgentPools(_AzureScaler):
    """AKS agent pools of the pool's `cluster`, in `GPUFLEET_AZURE_RESOURCE_GROUP` (else `rg-<cluster>`)."""

    def __init__(self, settings: Settings, backoff: Backoff | None = None) -> None:
        super().__init__(settings, backoff)
        # (resource group, cluster) -> (its node resource group, agent pool name -> scale set): scale sets never move,
        # so a cluster is read and its scale sets listed once per scaler, whatever number of its pools are observed
        self._clusters: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}

    def _group(self, pool: Pool) -> str:
        return self.settings.azure_resource_group or f"rg-{pool.cluster}"

    def _scale_set(self, pool: Pool) -> ScaleSetRef:
        key, agent_pool = (self._group(pool), pool.cluster), aks_pool_name(pool.name)
        if agent_pool not in self._clusters.get(key, ("", {}))[1]:  # first pool of the cluster, or one added since
            aks = self._client("container").managed_clusters
            cluster = self._call(pool, "managedClusters.get", aks.get, *key)
            compute = self._client("compute").virtual_machine_scale_sets
            scale_sets = self._call(pool, "virtualMachineScaleSets.list",
                                    lambda: list(compute.list(cluster.node_resource_group)))
            names: dict[str, str] = {}
            for scale_set in scale_sets:
                if tag := (scale_set.tags or {}).get(AKS_POOL_TAG):
                    names.setdefault(tag, scale_set.name)
            self._clusters[key] = (cluster.node_resource_group, names)
        node_group, names = self._clusters[key]
        if agent_pool not in names:
            raise PoolNotFound(f"{self.where(pool)}: no scale set tagged {AKS_POOL_TAG}={agent_pool} "
                               f"in {node_group}. To fix: deploy the environment's stacks")
        return ScaleSetRef(node_group, names[agent_pool])

    def _read(self, pool: Pool) -> GroupState:
        aks = self._client("container").agent_pools
        agent_pool = self._call(pool, "agentPools.get", aks.get, self._group(pool), pool.cluster,
                                aks_pool_name(pool.name))
        nodes, healthy = self._instances(pool, self._scale_set(pool))
        return GroupState(target=agent_pool.count, nodes=nodes, healthy_nodes=healthy,
                          max_size=agent_pool.max_count if agent_pool.enable_auto_scaling else None,
                          busy=busy(agent_pool.provisioning_state), parts=(agent_pool,))

    def _request(self, pool: Pool, state: GroupState, nodes: int) -> Any:
        agent_pool = state.parts[0]
        agent_pool.count = nodes
        if agent_pool.enable_auto_scaling:
            agent_pool.min_count = nodes
        aks = self._client("container").agent_pools
        return self._call(pool, "agentPools.createOrUpdate", aks.begin_create_or_update,
                          self._group(pool), pool.cluster, aks_pool_name(pool.name), agent_pool)


class ScaleSets(_AzureScaler):
    """VM scale sets named after their pools, in `GPUFLEET_AZURE_RESOURCE_GROUP` (pools without a cluster)."""

    def _ref(self, pool: Pool) -> ScaleSetRef:
        if not self.settings.azure_resource_group:
            raise InputError(f"{self.where(pool)}: a pool without a cluster is a VM scale set, and "
                             "GPUFLEET_AZURE_RESOURCE_GROUP is not set. To fix: set it to the scale sets' "
                             "resource group")
        return ScaleSetRef(self.settings.azure_resource_group, pool.name)

    def _read(self, pool: Pool) -> GroupState:
        ref = self._ref(pool)
        compute = self._client("compute").virtual_machine_scale_sets
        scale_set = self._call(pool, "virtualMachineScaleSets.get", compute.get, ref.group, ref.name)
        nodes, healthy = self._instances(pool, ref)
        return GroupState(target=scale_set.sku.capacity, nodes=nodes, healthy_nodes=healthy,
                          busy=busy(scale_set.provisioning_state), parts=(scale_set,))

    def _request(self, pool: Pool, state: GroupState, nodes: int) -> Any:
        from azure.mgmt.compute.models import Sku, VirtualMachineScaleSetUpdate

        sku = state.parts[0].sku
        update = VirtualMachineScaleSetUpdate(sku=Sku(name=sku.name, tier=sku.tier, capacity=nodes))
        ref = self._ref(pool)
        compute = self._client("compute").virtual_machine_scale_sets
        return self._call(pool, "virtualMachineScaleSets.update", compute.begin_update, ref.group, ref.name, update)
