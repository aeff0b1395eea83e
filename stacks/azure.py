"""Azure: a GPU pool is an AKS user node pool of a GPU VM size, with AKS installing the driver.

What the pool is (`stacks.facts.AzureNodePool`: its ≤ 12-character AKS name, VM size,
Spot settings with the label and taint AKS adds, encryption at host, the node count left
to the orchestrator) is shared with the Pulumi program; this module spells it as the
Terraform payload, and `AzureGpuPool` wires it to the cluster, looked up in its resource group.
"""

from __future__ import annotations

from constructs import Construct

from stacks import bindings
from stacks.facts import OWNED_BY_REBALANCE, AzureNodePool, azure_node_pool
from stacks.pools import PoolDeclaration

IGNORED = {"current": "node_count", "floor": "min_count"}  # the counts rebalance owns, as Terraform paths


def node_pool_args(pool: AzureNodePool) -> dict:
    """The node pool, less the cluster id and the provider."""
    return {
        "name": pool.name,
        "vm_size": pool.vm_size,
        "mode": pool.mode,
        "gpu_driver": pool.gpu_driver,
        "host_encryption_enabled": pool.host_encryption,  # temp disks and caches encrypted too (subscription feature EncryptionAtHost)
        "auto_scaling_enabled": True,
        "min_count": pool.sizing.min_nodes,
        "max_count": pool.sizing.max_nodes,
        "node_count": pool.sizing.initial,
        "priority": pool.priority,
        **({"eviction_policy": pool.eviction_policy, "spot_max_price": pool.spot_max_price} if pool.spot else {}),
        **({"zones": list(pool.zones)} if pool.zones else {}),
        "node_labels": pool.labels,
        "node_taints": [str(t) for t in pool.taints],
        "tags": pool.tags,
        "lifecycle": {"ignore_changes": [IGNORED[count] for count in OWNED_BY_REBALANCE["azure"]]},
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

        facts = azure_node_pool(pool)
        cluster = DataAzurermKubernetesCluster(self, "cluster", name=facts.cluster,
                                               resource_group_name=facts.resource_group, provider=provider)
        self.node_pool = KubernetesClusterNodePool(self, "node-pool", **node_pool_args(facts),
                                                   kubernetes_cluster_id=cluster.id, provider=provider)
        self.identifiers = {
            "provider": "azure", "region": pool.pool.region, "cluster": facts.cluster,
            "resource_group": facts.resource_group, "node_pool": facts.name, "id": self.node_pool.id,
        }
