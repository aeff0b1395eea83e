"""GCP: each pool as a GKE node pool with guest accelerators and a GKE-installed driver (pulumi-gcp)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from stacks.facts import OWNED_BY_REBALANCE, gcp_node_pool
from stacks.pools import PoolDeclaration

IGNORED = {"initial": "initialNodeCount", "current": "nodeCount"}  # the counts rebalance owns, as Pulumi property paths


def providers(pools: list[PoolDeclaration]) -> dict[str, pulumi.ProviderResource]:
    """One Google provider: every resource names its own location; the project comes from the stack's config."""
    provider = gcp.Provider("google")
    return {p.name: provider for p in pools}


def declare(pool: PoolDeclaration, provider: pulumi.ProviderResource) -> gcp.container.NodePool:
    facts = gcp_node_pool(pool)
    return gcp.container.NodePool(
        f"{pool.name}_node-pool", name=facts.name, cluster=facts.cluster, location=facts.location,
        node_locations=list(facts.node_locations) or None, initial_node_count=facts.sizing.initial,
        management={"auto_repair": facts.auto_repair, "auto_upgrade": facts.auto_upgrade},
        network_config={"enable_private_nodes": facts.private_nodes},
        node_config={
            "machine_type": facts.machine_type, "spot": facts.spot,
            "guest_accelerators": [{"type": facts.accelerator_type, "count": facts.accelerator_count,
                                    "gpu_driver_installation_config": {"gpu_driver_version": facts.driver_version}}],
            "labels": facts.labels,
            "taints": [{"key": t.key, "value": t.value, "effect": t.upper_effect} for t in facts.taints],
            "resource_labels": facts.resource_labels,
            "shielded_instance_config": {"enable_secure_boot": facts.secure_boot, "enable_integrity_monitoring": facts.integrity_monitoring},
            "workload_metadata_config": {"mode": facts.workload_metadata_mode},
            "metadata": facts.metadata, "oauth_scopes": list(facts.oauth_scopes),
        },
        opts=pulumi.ResourceOptions(provider=provider, ignore_changes=[IGNORED[c] for c in OWNED_BY_REBALANCE["gcp"]]))
