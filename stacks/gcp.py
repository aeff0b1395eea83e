"""GCP: a GPU pool is a GKE node pool with guest accelerators and a GKE-installed driver.

What the pool is (`stacks.facts.GcpNodePool`: the cluster and zones it joins, machine and
accelerators, private shielded nodes with Workload Identity, the node
counts left to the orchestrator) is shared with the Pulumi program; this module spells it
as the Terraform payload, and `GcpGpuPool` wires it.
"""

from __future__ import annotations

from constructs import Construct

from stacks import bindings
from stacks.facts import OWNED_BY_REBALANCE, GcpNodePool, gcp_node_pool
from stacks.pools import PoolDeclaration

IGNORED = {"initial": "initial_node_count", "current": "node_count"}  # the counts rebalance owns, as Terraform paths


def node_pool_args(pool: GcpNodePool) -> dict:
    """The node pool, less the provider."""
    return {
        "name": pool.name,
        "cluster": pool.cluster,
        "location": pool.location,
        **({"node_locations": list(pool.node_locations)} if pool.node_locations else {}),
        "initial_node_count": pool.sizing.initial,
        "management": {"auto_repair": pool.auto_repair, "auto_upgrade": pool.auto_upgrade},
        "network_config": {"enable_private_nodes": pool.private_nodes},
        "node_config": {
            "machine_type": pool.machine_type,
            "spot": pool.spot,
            "guest_accelerator": [{
                "type": pool.accelerator_type, "count": pool.accelerator_count,
                "gpu_driver_installation_config": {"gpu_driver_version": pool.driver_version},
            }],
            "labels": pool.labels,
            "taint": [{"key": t.key, "value": t.value, "effect": t.upper_effect} for t in pool.taints],
            "resource_labels": pool.resource_labels,
            "shielded_instance_config": {"enable_secure_boot": pool.secure_boot, "enable_integrity_monitoring": pool.integrity_monitoring},
            "workload_metadata_config": {"mode": pool.workload_metadata_mode},
            "metadata": pool.metadata,
            "oauth_scopes": list(pool.oauth_scopes),
        },
        "lifecycle": {"ignore_changes": [IGNORED[count] for count in OWNED_BY_REBALANCE["gcp"]]},
    }


def providers(scope: Construct, pools: list[PoolDeclaration]) -> dict[str, object]:
    """Each pool's provider: one Google provider: every resource names its own location. Project: from the environment (GOOGLE_PROJECT)."""
    bindings.load_provider("gcp")
    from cdktn_provider_google.provider import GoogleProvider

    provider = GoogleProvider(scope, "google")
    return {p.name: provider for p in pools}


class GcpGpuPool(Construct):
    """One GPU pool as a GKE node pool."""

    def __init__(self, scope: Construct, id: str, pool: PoolDeclaration, provider: object):
        super().__init__(scope, id)
        bindings.load_provider("gcp")
        from cdktn_provider_google.container_node_pool import (
            ContainerNodePool, ContainerNodePoolNodeConfigGuestAccelerator, ContainerNodePoolNodeConfigTaint,
        )

        args = node_pool_args(gcp_node_pool(pool))  # list items need their struct class (jsii converts only nested dicts)
        config = args["node_config"]
        config["guest_accelerator"] = [ContainerNodePoolNodeConfigGuestAccelerator(**a) for a in config["guest_accelerator"]]
        config["taint"] = [ContainerNodePoolNodeConfigTaint(**t) for t in config["taint"]]
        self.node_pool = ContainerNodePool(self, "node-pool", **args, provider=provider)
        self.identifiers = {
            "provider": "gcp", "region": pool.pool.region, "zone": pool.pool.zone or "", "cluster": pool.cluster,
            "node_pool": pool.name, "id": self.node_pool.id,
        }
