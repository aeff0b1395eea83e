"""GCP: GKE node pool payloads, and the synthesized hybrid-gcp stack."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cdktn import Testing as CdktnTesting  # aliased: pytest would try to collect a class named Test*

from orchestrator.errors import InputError
from stacks.facts import accelerator_type, gcp_labels, gcp_node_pool
from stacks.gcp import node_pool_args
from stacks.pools import Taint


def test_accelerator_types_follow_the_machine_family():
    assert accelerator_type("a3-highgpu-8g", "H100") == "nvidia-h100-80gb"
    assert accelerator_type("a3-megagpu-8g", "H100") == "nvidia-h100-mega-80gb"
    assert accelerator_type("g2-standard-48", "L4") == "nvidia-l4"
    with pytest.raises(InputError, match="no GKE accelerator type known for GPU MI300X"):
        accelerator_type("x-1", "MI300X")


def test_labels_are_made_valid_gcp_labels():
    assert gcp_labels({"Cost.Center": "CC 4711", "owner": "ml-platform"}) == {"cost_center": "cc_4711", "owner": "ml-platform"}


def test_spot_pool_with_driver_and_hardening_and_no_cluster_autoscaler(synthesized):
    args = node_pool_args(gcp_node_pool(synthesized.pools["gcp-euw4-l4-spot"]))
    config = args["node_config"]
    assert config["spot"] is True
    assert "autoscaling" not in args and args["initial_node_count"] == 0  # rebalance alone sizes the pool
    assert config["guest_accelerator"] == [{"type": "nvidia-l4", "count": 4, "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"}}]
    assert config["shielded_instance_config"] == {"enable_secure_boot": True, "enable_integrity_monitoring": True}
    assert config["workload_metadata_config"] == {"mode": "GKE_METADATA"}
    assert args["lifecycle"]["ignore_changes"] == ["initial_node_count", "node_count"]
    assert args["node_locations"] == ["europe-west4-a"]


def test_gke_adds_the_gpu_taint_itself_so_only_the_pools_own_taints_are_declared(synthesized):
    pool = synthesized.pools["gcp-usc1-h100"]
    assert node_pool_args(gcp_node_pool(pool))["node_config"]["taint"] == []
    tainted = replace(pool, taints=(*pool.taints, Taint("team", "a", "NoExecute")))
    assert node_pool_args(gcp_node_pool(tainted))["node_config"]["taint"] == [{"key": "team", "value": "a", "effect": "NO_EXECUTE"}]


def test_stack_declares_the_pools_with_their_accelerators(synthesized):
    stack = CdktnTesting.synth(synthesized.stack("hybrid-gcp"))
    assert CdktnTesting.to_have_resource_with_properties(stack, "google_container_node_pool", {
        "name": "gcp-usc1-h100", "cluster": "gke-prod-usc1", "location": "us-central1",
        "node_config": {
            "machine_type": "a3-highgpu-8g", "spot": False,
            "guest_accelerator": [{"type": "nvidia-h100-80gb", "count": 8, "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"}}],
            "resource_labels": {"env": "hybrid", "pool": "gcp-usc1-h100", "cost-center": "cc-4711", "owner": "ml-platform"},
            "labels": {"gpufleet.io/gpu": "H100"},
        },
    })
