"""Azure: AKS node pool payloads and names, and the synthesized hybrid-azure stack."""

from __future__ import annotations

import re

import pytest
from cdktn import Testing as CdktnTesting  # aliased: pytest would try to collect a class named Test*

from stacks.azure import node_pool_args
from stacks.facts import aks_pool_name, azure_node_pool


@pytest.mark.parametrize(("name", "expected"), [("az-eastus-a100", "azeastusa100"), ("gpu1", "gpu1"), ("1gpu", "p1gpu")])
def test_short_names_are_kept_readable(name, expected):
    assert aks_pool_name(name) == expected


@pytest.mark.parametrize("name", ["az-weu-h100-spot", "az-weu-h100-spot-2", "9" * 40])
def test_long_names_are_cut_stably_and_stay_valid(name):
    assert re.fullmatch(r"[a-z][a-z0-9]{0,11}", aks_pool_name(name))
    assert aks_pool_name(name) == aks_pool_name(name)
    assert aks_pool_name("az-weu-h100-spot") != aks_pool_name("az-weu-h100-spot-2")


def test_spot_pool_has_priority_eviction_max_price_and_azures_own_label_and_taint(synthesized):
    args = node_pool_args(azure_node_pool(synthesized.pools["az-weu-h100-spot"]))
    assert (args["priority"], args["eviction_policy"], args["spot_max_price"]) == ("Spot", "Delete", -1)
    assert args["node_labels"]["kubernetes.azure.com/scalesetpriority"] == "spot"
    assert "kubernetes.azure.com/scalesetpriority=spot:NoSchedule" in args["node_taints"]
    assert (args["min_count"], args["max_count"], args["auto_scaling_enabled"]) == (0, 4, True)
    assert args["lifecycle"]["ignore_changes"] == ["node_count", "min_count"]  # what rebalance writes


def test_regular_pool_has_no_spot_settings(synthesized):
    args = node_pool_args(azure_node_pool(synthesized.pools["az-eastus-a100"]))
    assert args["priority"] == "Regular" and "eviction_policy" not in args and "spot_max_price" not in args
    assert args["node_taints"] == ["nvidia.com/gpu=present:NoSchedule"]


def test_stack_declares_gpu_node_pools_in_their_clusters(synthesized):
    stack = CdktnTesting.synth(synthesized.stack("hybrid-azure"))
    assert CdktnTesting.to_have_resource_with_properties(stack, "azurerm_kubernetes_cluster_node_pool", {
        "name": "azeastusa100", "vm_size": "Standard_NC24ads_A100_v4", "mode": "User", "gpu_driver": "Install",
        "tags": {"env": "hybrid", "pool": "az-eastus-a100", "cost-center": "cc-4711", "owner": "ml-platform"},
    })
    assert CdktnTesting.to_have_data_source_with_properties(stack, "azurerm_kubernetes_cluster", {
        "name": "aks-prod-weu", "resource_group_name": "rg-aks-prod-weu"})
