"""Azure: each pool as an AKS agent pool of its cluster (pulumi-azure-native, the Azure Resource Manager API itself)."""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure

from stacks.facts import OWNED_BY_REBALANCE, azure_node_pool
from stacks.pools import PoolDeclaration

IGNORED = {"current": "count", "floor": "minCount"}  # the counts rebalance owns, as Pulumi property paths


def providers(pools: list[PoolDeclaration]) -> dict[str, pulumi.ProviderResource]:
    """One azure-native provider: the subscription comes from the stack's config or ARM_SUBSCRIPTION_ID."""
    provider = azure.Provider("azure-native")
    return {p.name: provider for p in pools}


def declare(pool: PoolDeclaration, provider: pulumi.ProviderResource) -> azure.containerservice.AgentPool:
    facts = azure_node_pool(pool)
    spot = {"scale_set_eviction_policy": facts.eviction_policy, "spot_max_price": facts.spot_max_price} if facts.spot else {}
    return azure.containerservice.AgentPool(
        f"{pool.name}_node-pool", resource_group_name=facts.resource_group, resource_name_=facts.cluster,
        agent_pool_name=facts.name, vm_size=facts.vm_size, mode=facts.mode, gpu_profile={"driver": facts.gpu_driver},
        enable_encryption_at_host=facts.host_encryption, enable_auto_scaling=True,
        min_count=facts.sizing.min_nodes, max_count=facts.sizing.max_nodes, count=facts.sizing.initial,
        scale_set_priority=facts.priority, **spot, availability_zones=list(facts.zones) or None,
        node_labels=facts.labels, node_taints=[str(t) for t in facts.taints], tags=facts.tags,
        opts=pulumi.ResourceOptions(provider=provider, ignore_changes=[IGNORED[c] for c in OWNED_BY_REBALANCE["azure"]]))
