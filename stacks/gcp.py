"""GCP: a GPU pool is a GKE node pool with guest accelerators and a GKE-installed driver.

The pool joins an existing regional cluster (`pool.cluster` in `pool.region`), pinned to
`pool.zone` when the spec names one (GPU stock differs by zone). Autoscaling bounds are
totals over the pool's zones so they mean what the spec's `min_nodes`/`max_nodes` mean;
the node count and the initial count (which would recreate the pool when changed) are
left to the orchestrator. Nodes are shielded (secure boot, integrity monitoring) and
have no public IPs, expose only the GKE metadata server, so pods get Workload Identity, never the node's
service account. GKE taints GPU nodes `nvidia.com/gpu` itself, so gpufleet's default
GPU taint is not repeated here.
"""

from __future__ import annotations

import re

from constructs import Construct

from orchestrator.errors import InputError
from stacks import bindings
from stacks.pools import PoolDeclaration, gpu_taint

ACCELERATORS = {  # canonical GPU -> GKE accelerator type
    "T4": "nvidia-tesla-t4", "L4": "nvidia-l4", "V100": "nvidia-tesla-v100",
    "A100": "nvidia-tesla-a100", "A100-80GB": "nvidia-a100-80gb", "H100": "nvidia-h100-80gb",
    "H200": "nvidia-h200-141gb", "B200": "nvidia-b200",
}
MEGA_ACCELERATOR = "nvidia-h100-mega-80gb"  # a3-megagpu: the same H100 with more network
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"  # access is IAM's job, not scopes'


def accelerator_type(instance_type: str, gpu: str) -> str:
    """The GKE accelerator type of a machine type's GPU."""
    if instance_type.startswith("a3-megagpu"):
        return MEGA_ACCELERATOR
    if gpu not in ACCELERATORS:
        raise InputError(f"no GKE accelerator type known for GPU {gpu} ({instance_type}); known: {', '.join(ACCELERATORS)}. To fix: add it to stacks/gcp.py ACCELERATORS")
    return ACCELERATORS[gpu]


def gcp_labels(tags: dict[str, str]) -> dict[str, str]:
    """Tags as GCP resource labels: lower-case letters, digits, '_' and '-', at most 63 characters."""
    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9_-]", "_", text.lower())[:63]

    return {clean(k): clean(v) for k, v in tags.items()}


def node_pool_args(pool: PoolDeclaration) -> dict:
    """The node pool, less the provider."""
    spec = pool.pool
    spot = spec.capacity == "spot"
    return {
        "name": pool.name,
        "cluster": pool.cluster,
        "location": spec.region,
        **({"node_locations": [spec.zone]} if spec.zone else {}),
        "initial_node_count": spec.min_nodes,
        "autoscaling": {
            "total_min_node_count": spec.min_nodes, "total_max_node_count": spec.max_nodes,
            "location_policy": "ANY" if spot else "BALANCED",  # spot: take capacity wherever it is
        },
        "management": {"auto_repair": True, "auto_upgrade": True},
        "network_config": {"enable_private_nodes": True},
        "node_config": {
            "machine_type": spec.instance_type,
            "spot": spot,
            "guest_accelerator": [{
                "type": accelerator_type(spec.instance_type or "", pool.gpu), "count": pool.gpus_per_node,
                "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
            }],
            "labels": pool.labels,
            "taint": [{"key": t.key, "value": t.value, "effect": t.upper_effect} for t in pool.taints if t != gpu_taint(pool.gpu)],
            "resource_labels": gcp_labels(pool.tags),
            "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "metadata": {"disable-legacy-endpoints": "true"},
            "oauth_scopes": [CLOUD_PLATFORM_SCOPE],
        },
        "lifecycle": {"ignore_changes": ["initial_node_count", "node_count"]},
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

        args = node_pool_args(pool)  # list items need their struct class (jsii converts only nested dicts)
        config = args["node_config"]
        config["guest_accelerator"] = [ContainerNodePoolNodeConfigGuestAccelerator(**a) for a in config["guest_accelerator"]]
        config["taint"] = [ContainerNodePoolNodeConfigTaint(**t) for t in config["taint"]]
        self.node_pool = ContainerNodePool(self, "node-pool", **args, provider=provider)
        self.identifiers = {
            "provider": "gcp", "region": pool.pool.region, "zone": pool.pool.zone or "", "cluster": pool.cluster,
            "node_pool": pool.name, "id": self.node_pool.id,
        }
