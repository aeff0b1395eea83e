"""AWS: a GPU pool is an EKS managed node group with its own node role and launch template.

The node group joins an existing cluster (`pool.cluster`) in the cluster's own subnets.
What the pool is (`stacks.facts.AwsNodeGroup`: names, shape, launch template, node role,
the desired size left to the orchestrator) is shared with the Pulumi program; this module
spells it as Terraform payloads (pure functions, tested without AWS), and `AwsGpuPool`
wires them.
"""

from __future__ import annotations

from cdktn import Token
from constructs import Construct

from stacks import bindings
from stacks.facts import OWNED_BY_REBALANCE, AwsNodeGroup, aws_node_group
from stacks.pools import PoolDeclaration

# The AWS provider version the stacks pin: the one they are validated against (`terraform validate`
# in tests/stacks/test_terraform_validate.py, offline, with the mirror our machines have). The
# bindings (cdktn-provider-aws) are generated for 6.69.1 and would pin that, which no machine here
# can install; the validation is what shows their JSON valid for this version. docs/stacks.md,
# "Provider versions".
AWS_PROVIDER_VERSION = "5.100.0"
OWNED = OWNED_BY_REBALANCE["aws"]
IGNORED = {"current": "scaling_config[0].desired_size"}  # the counts rebalance owns, as Terraform paths


def launch_template_args(group: AwsNodeGroup) -> dict:
    """Encrypted gp3 root volume, IMDSv2 required (hop limit 2 so pods on the node still reach it)."""
    volume = group.root_volume
    return {
        "name": group.template_name,
        "description": group.template_description,
        "update_default_version": True,
        "block_device_mappings": [{
            "device_name": volume.device,
            "ebs": {"volume_size": volume.size_gb, "volume_type": volume.type, "encrypted": str(volume.encrypted).lower(),
                    "delete_on_termination": str(volume.delete_on_termination).lower()},
        }],
        "metadata_options": {"http_endpoint": "enabled", "http_tokens": group.imds_tokens, "http_put_response_hop_limit": group.imds_hop_limit},
        "tag_specifications": [{"resource_type": kind, "tags": group.pool.tags} for kind in group.tagged_kinds],
        "tags": group.pool.tags,
    }


def node_group_args(group: AwsNodeGroup) -> dict:
    """The node group, less what comes from other resources (role, subnets, launch template)."""
    return {
        "cluster_name": group.cluster,
        "node_group_name": group.name,
        "ami_type": group.ami_type,
        "capacity_type": group.capacity_type,
        "instance_types": list(group.instance_types),
        "scaling_config": {"min_size": group.sizing.min_nodes, "max_size": group.sizing.max_nodes, "desired_size": group.sizing.initial},
        "update_config": {"max_unavailable": group.max_unavailable},
        "labels": group.pool.labels,
        "taint": [{"key": t.key, "value": t.value, "effect": t.upper_effect} for t in group.pool.taints],
        "tags": group.pool.tags,
        "lifecycle": {"ignore_changes": [IGNORED[count] for count in OWNED]},
    }


def providers(scope: Construct, pools: list[PoolDeclaration]) -> dict[str, object]:
    """Each pool's provider: one AWS provider per region the pools are in, aliased by region."""
    bindings.load_provider("aws")
    from cdktn_provider_aws.provider import AwsProvider

    regions = sorted({p.pool.region for p in pools})
    by_region = {region: AwsProvider(scope, f"aws-{region}", region=region, alias=region) for region in regions}
    scope.add_override("terraform.required_providers.aws.version", AWS_PROVIDER_VERSION)
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

        group = aws_node_group(pool)
        cluster = DataAwsEksCluster(self, "cluster", name=group.cluster, provider=provider)
        role = IamRole(self, "node-role", name_prefix=group.role_name_prefix, assume_role_policy=group.role_trust_policy,
                       description=group.role_description, tags=pool.tags, provider=provider)
        attachments = [
            IamRolePolicyAttachment(self, f"policy-{arn.rsplit('/', 1)[1]}", role=role.name, policy_arn=arn, provider=provider)
            for arn in group.role_policy_arns
        ]
        # jsii converts nested dicts to structs, but not the items of a list: those need their struct class
        template_args = launch_template_args(group)
        template_args["block_device_mappings"] = [LaunchTemplateBlockDeviceMappings(**m) for m in template_args["block_device_mappings"]]
        template_args["tag_specifications"] = [LaunchTemplateTagSpecifications(**t) for t in template_args["tag_specifications"]]
        template = LaunchTemplate(self, "launch-template", **template_args, provider=provider)
        group_args = node_group_args(group)
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
