"""Azure: a GPU pool is an AKS user node pool of a GPU VM size, with AKS installing the driver.

The pool joins an existing cluster (`pool.cluster`, looked up in its resource group).
Spot pools are Spot priority with eviction by deletion (a deallocated GPU VM still
counts against quota) and a maximum price of -1, that is up to the on-demand price: a
lower cap only trades evictions for nothing the planner can see. AKS labels and taints
Spot nodes `kubernetes.azure.com/scalesetpriority=spot` itself; they are declared too,
as the azurerm provider requires, or every plan would show a diff. The node count is
left to the orchestrator. Nodes encrypt at host, so temporary disks and caches (where
model weights land) are encrypted like the OS disk.

AKS node pool names are at most 12 lower-case letters and digits, so the pool's name is
squeezed to fit (and stays stable and unique through a hash when it must be cut).
"""

from __future__ import annotations

import hashlib
import re

from constructs import Construct

from stacks import bindings
from stacks.pools import PoolDeclaration, Taint

SPOT_LABEL = ("kubernetes.azure.com/scalesetpriority", "spot")
SPOT_MAX_PRICE = -1  # pay up to the on-demand price; never evicted for price
POOL_NAME_LIMIT = 12


def aks_pool_name(name: str) -> str:
    """A valid AKS node pool name: 1-12 lower-case letters and digits, starting with a letter."""
    cleaned = re.sub(r"[^a-z0-9]", "", name.lower())
    head = cleaned if cleaned[:1].isalpha() else f"p{cleaned}"
    if len(head) <= POOL_NAME_LIMIT:
        return head
    return head[:POOL_NAME_LIMIT - 4] + hashlib.sha256(name.encode()).hexdigest()[:4]


def resource_group(cluster: str) -> str:
    """The resource group holding an AKS cluster (Azure's `rg-<name>` convention, until the spec says)."""
    return f"rg-{cluster}"


def node_pool_args(pool: PoolDeclaration) -> dict:
    """The node pool, less the cluster id and the provider."""
    spec = pool.pool
    spot = spec.capacity == "spot"
    labels = {**pool.labels, **(dict([SPOT_LABEL]) if spot else {})}
    taints = (*pool.taints, Taint(*SPOT_LABEL, "NoSchedule")) if spot else pool.taints
    return {
        "name": aks_pool_name(pool.name),
        "vm_size": spec.instance_type,
        "mode": "User",
        "gpu_driver": "Install",
        "host_encryption_enabled": True,  # temp disks and caches encrypted too (subscription feature EncryptionAtHost)
        "auto_scaling_enabled": True,
        "min_count": spec.min_nodes,
        "max_count": spec.max_nodes,
        "node_count": spec.min_nodes,
        "priority": "Spot" if spot else "Regular",
        **({"eviction_policy": "Delete", "spot_max_price": SPOT_MAX_PRICE} if spot else {}),
        **({"zones": [spec.zone]} if spec.zone else {}),
        "node_labels": labels,
        "node_taints": [str(t) for t in taints],
        "tags": pool.tags,
        "lifecycle": {"ignore_changes": ["node_count"]},
    }


def providers(scope: Construct, pools: list[PoolDeclaration]) -> dict[str, object]:
    """Each pool's provider: one azurerm provider (resources name their location); subscription from ARM_SUBSCRIPTION_ID."""
    bindings.load_provider("azure")
    from cdktn_provider_azurerm.provider import AzurermProvider

    provider = AzurermProvider(scope, "azurerm", features=[{}])
    return {p.name: provider for p in pools}


class AzureGpuPool(Construct):
    """One GPU pool as an AKS node pool."""

    def __init__(self, scope: Construct, id: str, pool: PoolDeclaration, provider: object):
        super().__init__(scope, id)
        bindings.load_provider("azure")
        from cdktn_provider_azurerm.data_azurerm_kubernetes_cluster import DataAzurermKubernetesCluster
        from cdktn_provider_azurerm.kubernetes_cluster_node_pool import KubernetesClusterNodePool

        cluster = DataAzurermKubernetesCluster(self, "cluster", name=pool.cluster,
                                               resource_group_name=resource_group(pool.cluster), provider=provider)
        self.node_pool = KubernetesClusterNodePool(self, "node-pool", **node_pool_args(pool),
                                                   kubernetes_cluster_id=cluster.id, provider=provider)
        self.identifiers = {
            "provider": "azure", "region": pool.pool.region, "cluster": pool.cluster,
            "resource_group": resource_group(pool.cluster), "node_pool": aks_pool_name(pool.name), "id": self.node_pool.id,
        }
