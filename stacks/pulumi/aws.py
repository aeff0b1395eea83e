"""AWS: each pool as an EKS managed node group with its launch template and node role, and the IAM
roles the replicas assume through IRSA (pulumi-aws)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from stacks.facts import OWNED_BY_REBALANCE, WEB_IDENTITY_AUDIENCE, AwsNodeGroup, aws_node_group, aws_workload_roles
from stacks.pools import PoolDeclaration

IGNORED = {"current": "scalingConfig.desiredSize"}  # the counts rebalance owns, as Pulumi property paths


def providers(pools: list[PoolDeclaration]) -> dict[str, pulumi.ProviderResource]:
    """One AWS provider per region the pools are in (named like the CDK Terrain aliases)."""
    by_region = {region: aws.Provider(f"aws-{region}", region=region) for region in sorted({p.pool.region for p in pools})}
    return {p.name: by_region[p.pool.region] for p in pools}


def declare(pool: PoolDeclaration, provider: pulumi.ProviderResource) -> aws.eks.NodeGroup:
    group: AwsNodeGroup = aws_node_group(pool)
    volume = group.root_volume
    options = pulumi.ResourceOptions(provider=provider)
    cluster = aws.eks.get_cluster_output(name=group.cluster, opts=pulumi.InvokeOptions(provider=provider))
    role = aws.iam.Role(f"{pool.name}_node-role", name_prefix=group.role_name_prefix, assume_role_policy=group.role_trust_policy,
                        description=group.role_description, tags=pool.tags, opts=options)
    attachments = [aws.iam.RolePolicyAttachment(f"{pool.name}_policy-{arn.rsplit('/', 1)[1]}", role=role.name, policy_arn=arn, opts=options)
                   for arn in group.role_policy_arns]
    template = aws.ec2.LaunchTemplate(
        f"{pool.name}_launch-template", name=group.template_name, description=group.template_description,
        update_default_version=True,
        block_device_mappings=[{"device_name": volume.device, "ebs": {
            "volume_size": volume.size_gb, "volume_type": volume.type, "encrypted": str(volume.encrypted).lower(),
            "delete_on_termination": str(volume.delete_on_termination).lower()}}],
        metadata_options={"http_endpoint": "enabled", "http_tokens": group.imds_tokens, "http_put_response_hop_limit": group.imds_hop_limit},
        tag_specifications=[{"resource_type": kind, "tags": pool.tags} for kind in group.tagged_kinds],
        tags=pool.tags, opts=options)
    return aws.eks.NodeGroup(
        f"{pool.name}_node-group", cluster_name=group.cluster, node_group_name=group.name, ami_type=group.ami_type,
        capacity_type=group.capacity_type, instance_types=list(group.instance_types),
        scaling_config={"min_size": group.sizing.min_nodes, "max_size": group.sizing.max_nodes, "desired_size": group.sizing.initial},
        update_config={"max_unavailable": group.max_unavailable},
        labels=pool.labels, taints=[{"key": t.key, "value": t.value, "effect": t.upper_effect} for t in pool.taints],
        tags=pool.tags, node_role_arn=role.arn, subnet_ids=cluster.vpc_config.subnet_ids,
        launch_template={"id": template.id, "version": template.latest_version.apply(str)},
        opts=pulumi.ResourceOptions(provider=provider, depends_on=attachments,  # a node cannot join before its role may
                                    ignore_changes=[IGNORED[c] for c in OWNED_BY_REBALANCE["aws"]]))


def declare_shared(pools: list[PoolDeclaration], sources: tuple[str, ...], providers: dict[str, pulumi.ProviderResource]) -> None:
    """The roles of `identity.aws_role_arn` (stacks.aws.WeightsRole, in Pulumi's words)."""
    for role in aws_workload_roles(pools, sources):
        statements = []
        for cluster, region in role.clusters:
            provider = next(providers[s.pool] for s in role.subjects if (s.cluster, s.region) == (cluster, region))
            invoke = pulumi.InvokeOptions(provider=provider)
            issuer = aws.eks.get_cluster_output(name=cluster, opts=invoke).identities[0].oidcs[0].issuer
            oidc = aws.iam.get_open_id_connect_provider_output(url=issuer, opts=invoke)
            host = issuer.apply(lambda url: url.removeprefix("https://"))
            subjects = [s.subject for s in role.subjects if (s.cluster, s.region) == (cluster, region)]
            statements.append({
                "effect": "Allow", "actions": ["sts:AssumeRoleWithWebIdentity"],
                "principals": [{"type": "Federated", "identifiers": [oidc.arn]}],
                "conditions": [{"test": "StringEquals", "variable": pulumi.Output.concat(host, ":sub"), "values": subjects},
                               {"test": "StringEquals", "variable": pulumi.Output.concat(host, ":aud"),
                                "values": [WEB_IDENTITY_AUDIENCE]}],
            })
        provider = providers[role.subjects[0].pool]  # IAM is global: any region's provider
        trust = aws.iam.get_policy_document_output(statements=statements, opts=pulumi.InvokeOptions(provider=provider))
        options = pulumi.ResourceOptions(provider=provider)
        iam_role = aws.iam.Role(f"{role.key}_role", name=role.name, path=role.path, assume_role_policy=trust.json,
                                description=role.description, tags=role.tags, opts=options)
        if role.read_policy:
            aws.iam.RolePolicy(f"{role.key}_read-weights", name="read-model-weights", role=iam_role.name,
                               policy=role.read_policy, opts=options)
