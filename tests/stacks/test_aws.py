"""AWS: the EKS node group payloads, and the synthesized hybrid-aws stack through cdktn's Testing helpers."""

from __future__ import annotations

import json

import pytest
from cdktn import Testing as CdktnTesting  # aliased: pytest would try to collect a class named Test*

from stacks.aws import launch_template_args, node_group_args
from stacks.facts import AMI_TYPE, NODE_POLICIES, aws_node_group, node_role_policy
from tests.stacks.tfjson import by_name, resources


@pytest.fixture
def pools(synthesized):
    return synthesized.pools


def _aws_pools(synthesized) -> list[str]:
    return sorted(name for name, p in synthesized.pools.items() if p.pool.provider == "aws" and p.environment == "hybrid")


def test_node_group_sizes_come_from_the_spec_and_desired_size_is_the_orchestrators(pools):
    spot = node_group_args(aws_node_group(pools["aws-use1-l4-spot"]))
    assert spot["capacity_type"] == "SPOT" and spot["ami_type"] == AMI_TYPE == "AL2023_x86_64_NVIDIA"
    assert spot["scaling_config"] == {"min_size": 0, "max_size": 8, "desired_size": 0}
    assert spot["lifecycle"] == {"ignore_changes": ["scaling_config[0].desired_size"]}
    assert node_group_args(aws_node_group(pools["aws-use1-h100"]))["capacity_type"] == "ON_DEMAND"


def test_launch_template_encrypts_volumes_and_requires_imdsv2(pools):
    template = launch_template_args(aws_node_group(pools["aws-use1-h100"]))
    assert all(m["ebs"]["encrypted"] == "true" for m in template["block_device_mappings"])
    assert template["metadata_options"]["http_tokens"] == "required"
    assert {t["resource_type"] for t in template["tag_specifications"]} == {"instance", "volume"}


def test_only_ec2_may_assume_the_node_role():
    (statement,) = json.loads(node_role_policy())["Statement"]
    assert statement["Principal"] == {"Service": "ec2.amazonaws.com"} and statement["Action"] == "sts:AssumeRole"


def test_stack_has_a_node_group_per_pool_with_labels_taints_and_tags(synthesized):
    stack = CdktnTesting.synth(synthesized.stack("hybrid-aws"))
    assert CdktnTesting.to_have_resource_with_properties(stack, "aws_eks_node_group", {
        "node_group_name": "aws-use1-l4-spot",
        "cluster_name": "eks-prod-use1",
        "capacity_type": "SPOT",
        "instance_types": ["g6.12xlarge"],
        "labels": {"gpufleet.io/pool": "aws-use1-l4-spot", "gpufleet.io/capacity": "spot"},
        "taint": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}],
        "tags": {"env": "hybrid", "pool": "aws-use1-l4-spot", "cost-center": "cc-4711", "owner": "ml-platform"},
    })
    assert CdktnTesting.to_have_resource_with_properties(stack, "aws_launch_template", {
        "block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {"encrypted": "true", "volume_type": "gp3"}}],
        "metadata_options": {"http_tokens": "required"},
    })
    assert CdktnTesting.to_have_data_source_with_properties(stack, "aws_eks_cluster", {"name": "eks-prod-euc1"})
    assert sorted(by_name(synthesized.json("hybrid-aws"), "aws_eks_node_group", "node_group_name")) == _aws_pools(synthesized)


def test_node_roles_get_only_the_three_worker_policies(synthesized):
    stack = synthesized.json("hybrid-aws")
    arns = [a["policy_arn"] for a in resources(stack, "aws_iam_role_policy_attachment")]
    assert sorted(arns) == sorted(f"arn:aws:iam::aws:policy/{p}" for p in NODE_POLICIES for _ in _aws_pools(synthesized))
    assert all("managed_policy_arns" not in r and "inline_policy" not in r for r in resources(stack, "aws_iam_role"))


def test_each_pool_uses_the_provider_of_its_region(synthesized):
    stack = synthesized.json("hybrid-aws")
    assert [p["alias"] for p in stack["provider"]["aws"]] == ["eu-central-1", "us-east-1"]
    groups = by_name(stack, "aws_eks_node_group", "node_group_name")
    assert groups["aws-euc1-a10g"]["provider"] == "aws.eu-central-1"
    assert groups["aws-use1-h100"]["provider"] == "aws.us-east-1"
