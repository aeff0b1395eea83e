"""The Pulumi programs declare what the CDK Terrain stacks declare for environments/hybrid.yaml, field by field.

The CDK Terrain side is its committed snapshot (test_snapshots keeps it equal to a fresh
synth); the Pulumi side is the program run under Pulumi's mocks, normalised to Terraform
JSON. Every resource, every field and every ignored count must match; only references
(`${...}`, which name other resources by engine-specific ids) are left out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent.parent / "snapshots"
CDK_ONLY = {"//", "provider", "depends_on"}  # engine bookkeeping, compared separately or not at all
PULUMI_ONLY = {"provider", "depends_on"}


def cdk_resources(stack: str) -> dict[str, dict[str, dict]]:
    """The snapshot's resources, keyed by type then by `<pool>_<part>` (the construct path without its hash)."""
    found = json.loads((SNAPSHOTS / f"{stack}.json").read_text())["resource"]
    return {kind: {re.sub(r"_[0-9A-F]{8}$", "", name): r for name, r in by_name.items()} for kind, by_name in found.items()}


def comparable(value):
    """A value without references; a one-item list of an object is that object (blocks vs nested objects)."""
    if isinstance(value, str) and "${" in value:
        return None
    if isinstance(value, list):
        items = [comparable(v) for v in value]
        return items[0] if len(items) == 1 and isinstance(items[0], dict) else items
    if isinstance(value, dict):
        return {k: c for k, v in value.items() if (c := comparable(v)) is not None}
    return value


def differences(cdk: dict, pulumi: dict) -> list[str]:
    cdk_fields = {k: v for k, v in cdk.items() if k not in CDK_ONLY}
    pulumi_fields = {k: v for k, v in pulumi.items() if k not in PULUMI_ONLY}
    found = [f"{k}: only in CDK Terrain" for k in cdk_fields.keys() - pulumi_fields.keys()]
    found += [f"{k}: only in Pulumi" for k in pulumi_fields.keys() - cdk_fields.keys()]
    for key in cdk_fields.keys() & pulumi_fields.keys():
        a, b = comparable(cdk_fields[key]), comparable(pulumi_fields[key])
        if key == "lifecycle":
            a = {"ignore_changes": [p.replace("[0]", "") for p in a["ignore_changes"]]}
        if a is not None and a != b and not (isinstance(a, dict) and a == {k: v for k, v in (b or {}).items() if k in a}):
            found.append(f"{key}: CDK Terrain {a!r} != Pulumi {b!r}")
    return found


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure", "onprem"])
def test_every_resource_and_field_matches_the_cdk_terrain_stack(declared, provider):
    from stacks.pulumi.document import terraform_document

    pulumi = terraform_document(declared[provider])["resource"]
    cdk = cdk_resources(f"hybrid-{provider}")
    assert {k: sorted(v) for k, v in pulumi.items()} == {k: sorted(v) for k, v in cdk.items()}
    problems = [f"{kind}.{name}: {d}" for kind, by_name in cdk.items() for name, r in by_name.items()
                for d in differences(r, pulumi[kind][name])]
    assert problems == []


def test_the_counts_rebalance_owns_are_ignored_in_pulumis_own_spelling(declared):
    ignored = {r.type: r.ignore_changes for p in ("aws", "gcp", "azure") for r in declared[p] if r.ignore_changes}
    assert ignored == {
        "aws:eks/nodeGroup:NodeGroup": ("scalingConfig.desiredSize",),
        "gcp:container/nodePool:NodePool": ("initialNodeCount", "nodeCount"),
        "azure-native:containerservice:AgentPool": ("count", "minCount"),
    }


def test_each_pool_uses_the_provider_of_its_region_or_site(declared):
    aws = {r.name: r.provider for r in declared["aws"] if r.type == "aws:eks/nodeGroup:NodeGroup"}
    assert aws["aws-euc1-a10g_node-group"] == "aws-eu-central-1" and aws["aws-use1-h100_node-group"] == "aws-us-east-1"
    onprem = {r.provider for r in declared["onprem"] if not r.type.startswith("pulumi:providers:")}
    assert onprem == {"kubernetes-onprem-fra"}


def test_a_node_group_waits_for_its_role_policies(declared):
    (group,) = [r for r in declared["aws"] if r.name == "aws-use1-h100_node-group"]
    policies = {f"aws-use1-h100_policy-{p}" for p in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly")}
    assert policies <= set(group.depends_on)
