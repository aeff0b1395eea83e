"""AWS: a GPU pool is an EKS managed node group with its own node role and launch template.

The node group joins an existing cluster (`pool.cluster`) in the cluster's own subnets.
Its size bounds come from the spec; the desired size belongs to the orchestrator, which
scales it between plans, so Terraform ignores changes to it. The launch template exists
for what a node group alone cannot enforce: encrypted root volumes and IMDSv2 only (a
pod must not read the node role's credentials through IMDSv1). The node role gets just
the three managed policies a worker node needs: join the cluster, run the VPC CNI,
pull images.

Payloads are built by pure functions (tested without AWS); `AwsGpuPool` only wires them.
"""

from __future__ import annotations

import json

from cdktn import Token
from constructs import Construct

from stacks import bindings
from stacks.pools import PoolDeclaration

AMI_TYPE = "AL2023_x86_64_NVIDIA"  # EKS-optimized Amazon Linux 2023 with the NVIDIA driver and toolkit
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly")
ROOT_VOLUME_GB = 200  # the image, plus model weights cached on the node
CAPACITY_TYPES = {"on_demand": "ON_DEMAND", "reserved": "ON_DEMAND", "spot": "SPOT"}  # reserved: billing, not a market


def node_role_policy() -> str:
    """Trust policy: only EC2 instances (the pool's nodes) may assume the node role."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    })


def launch_template_args(pool: PoolDeclaration) -> dict:
    """Encrypted gp3 root volume, IMDSv2 required (hop limit 2 so pods on the node still reach it)."""
    return {
        "name": f"gpufleet-{pool.environment}-{pool.name}",
        "description": f"gpufleet GPU pool {pool.name} ({pool.environment})",
        "update_default_version": True,
        "block_device_mappings": [{
            "device_name": "/dev/xvda",
            "ebs": {"volume_size": ROOT_VOLUME_GB, "volume_type": "gp3", "encrypted": "true", "delete_on_termination": "true"},
        }],
        "metadata_options": {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 2},
        "tag_specifications": [{"resource_type": kind, "tags": pool.tags} for kind in ("instance", "volume")],
        "tags": pool.tags,
    }


def node_group_args(pool: PoolDeclaration) -> dict:
    """The node group, less what comes from other resources (role, subnets, launch template)."""
    spec = pool.pool
    return {
        "cluster_name": pool.cluster,
        "node_group_name": pool.name,
        "ami_type": AMI_TYPE,
        "capacity_type": CAPACITY_TYPES[spec.capacity],
        "instance_types": [spec.instance_type],
        "scaling_config": {"min_size": spec.min_nodes, "max_size": spec.max_nodes, "desired_size": spec.min_nodes},
        "update_config": {"max_unavailable": 1},
        "labels": pool.labels,
        "taint": [{"key": t.key, "value": t.value, "effect": t.upper_effect} for t in pool.taints],
        "tags": pool.tags,
        "lifecycle": {"ignore_changes": ["scaling_config[0].desired_size"]},
    }


def providers(scope: Construct, pools: list[PoolDeclaration]) -> dict[str, object]:
    """Each pool's provider: one AWS provider per region the pools are in, aliased by region."""
    bindings.load_provider("aws")
    from cdktn_provider_aws.provider import AwsProvider

    regions = sorted({p.pool.region for p in pools})
    by_region = {region: AwsProvider(scope, f"aws-{region}", region=region, alias=region) for region in regions}
    return {p.name: by_region[p.pool.region] for p in pools}


class AwsGpuPool(Construct):
    """One GPU pool as an EKS managed node group, with its node role and launch template."""

    def __init__(self, scope: Construct, id: str, pool: PoolDeclaration, provider: object):
        super().__init__(scope, id)
        bindings.load_provider("aws")
        from cdktn_provider_aws.data_aws_eks_cluster import DataAwsEksCluster
        from cdktn_provider_aws.eks_node_group import EksNodeGroup, EksNodeGroupTaint
        from cdktn_provider_aws.iam_role import IamRole
        from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
        from cdktn_provider_aws.launch_template import (
            LaunchTemplate, LaunchTemplateBlockDeviceMappings, LaunchTemplateTagSpecifications,
        )

        cluster = DataAwsEksCluster(self, "cluster", name=pool.cluster, provider=provider)
        role = IamRole(self, "node-role", name_prefix="gpufleet-node-", assume_role_policy=node_role_policy(),
                       description=f"Nodes of gpufleet GPU pool {pool.name} ({pool.environment})",
                       tags=pool.tags, provider=provider)
        attachments = [
            IamRolePolicyAttachment(self, f"policy-{name}", role=role.name,
                                    policy_arn=f"arn:aws:iam::aws:policy/{name}", provider=provider)
            for name in NODE_POLICIES
        ]
        # jsii converts nested dicts to structs, but not the items of a list: those need their struct class
        template_args = launch_template_args(pool)
        template_args["block_device_mappings"] = [LaunchTemplateBlockDeviceMappings(**m) for m in template_args["block_device_mappings"]]
        template_args["tag_specifications"] = [LaunchTemplateTagSpecifications(**t) for t in template_args["tag_specifications"]]
        template = LaunchTemplate(self, "launch-template", **template_args, provider=provider)
        group_args = node_group_args(pool)
        group_args["taint"] = [EksNodeGroupTaint(**t) for t in group_args["taint"]]
        self.node_group = EksNodeGroup(
            self, "node-group", **group_args,
            node_role_arn=role.arn,
            subnet_ids=cluster.vpc_config.get(0).subnet_ids,
            launch_template={"id": template.id, "version": Token.as_string(template.latest_version)},
            depends_on=attachments,  # a node cannot join before its role may
            provider=provider,
        )
        self.identifiers = {
            "provider": "aws", "region": pool.pool.region, "cluster": pool.cluster,
            "node_pool": pool.name, "id": self.node_group.id, "arn": self.node_group.arn,
        }
