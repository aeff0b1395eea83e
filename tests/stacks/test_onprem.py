"""On-prem: namespace, GPU quota, priority classes and device plugin on the site's cluster."""

from __future__ import annotations

import json

from cdktn import Testing as CdktnTesting  # aliased: pytest would try to collect a class named Test*

from stacks.facts import DEVICE_PLUGIN, device_plugin_values, quota_hard
from tests.stacks.tfjson import resources


def test_quota_caps_gpus_at_the_pools_size(synthesized):
    assert quota_hard(synthesized.pools["fra-dc1-a100"]) == {"requests.nvidia.com/gpu": "32"}  # 4 nodes x 8 GPUs


def test_device_plugin_runs_on_the_pools_nodes_tolerating_their_taints(synthesized):
    values = json.loads(device_plugin_values(synthesized.pools["fra-dc1-a100"]))
    assert values["nodeSelector"] == {"gpufleet.io/pool": "fra-dc1-a100"}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"} in values["tolerations"]


def test_stack_declares_the_pool_on_its_cluster(synthesized):
    stack = CdktnTesting.synth(synthesized.stack("hybrid-onprem"))
    assert CdktnTesting.to_have_resource_with_properties(stack, "kubernetes_namespace_v1", {
        "metadata": [{"name": "gpufleet-fra-dc1-a100", "labels": {"gpufleet.io/pool": "fra-dc1-a100"}}]})
    assert CdktnTesting.to_have_resource_with_properties(stack, "kubernetes_resource_quota_v1", {
        "spec": {"hard": {"requests.nvidia.com/gpu": "32"}}})
    assert CdktnTesting.to_have_resource_with_properties(stack, "helm_release", {
        "chart": DEVICE_PLUGIN["chart"], "version": DEVICE_PLUGIN["version"], "repository": DEVICE_PLUGIN["repository"]})
    assert CdktnTesting.to_have_provider_with_properties(stack, "kubernetes", {"config_context": "onprem-fra", "alias": "onprem-fra"})
    classes = {r["metadata"]["name"]: r for r in resources(synthesized.json("hybrid-onprem"), "kubernetes_priority_class_v1")}
    assert classes["gpufleet-fra-dc1-a100-serving"]["value"] > classes["gpufleet-fra-dc1-a100-standby"]["value"]
    assert classes["gpufleet-fra-dc1-a100-standby"]["preemption_policy"] == "Never"
