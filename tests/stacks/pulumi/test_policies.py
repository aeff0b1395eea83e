"""The Terraform rules deny the same bad pools whichever engine declares them.

A production spec with spot pools, a pool over the node ceiling and no cost-center tag,
rendered with hardening facts switched off (unencrypted volumes, IMDSv1, public GKE nodes,
no host encryption): the CDK Terrain synth and the Pulumi program (under mocks, normalised
to Terraform JSON) must draw the same denials, rule by rule and resource by resource.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from orchestrator.policy.data import policy_data
from orchestrator.policy.engine import Document, PolicySet
from orchestrator.spec import load_spec
from tests.conftest import REPO

BAD = """
environment: prod
tags: {owner: ml-platform}
pools:
  - {name: aws-big, provider: aws, region: us-east-1, instance_type: p5.48xlarge, max_nodes: 80, cluster: eks-prod}
  - {name: aws-spot, provider: aws, region: us-east-1, instance_type: g6.12xlarge, capacity: spot, max_nodes: 8, cluster: eks-prod}
  - {name: gcp-spot, provider: gcp, region: europe-west4, instance_type: g2-standard-48, capacity: spot, max_nodes: 4, cluster: gke-prod}
  - {name: az-spot, provider: azure, region: westeurope, instance_type: Standard_ND96isr_H100_v5, capacity: spot, max_nodes: 2, cluster: aks-prod}
models:
  - {name: m, architecture: llama-3.1-8b, source: s3://m/, slo: {ttft_p95_ms: 1000, tpot_p95_ms: 100, max_rtt_ms: 150}}
"""
EXPECTED = {  # (rule, resource) every engine must be denied for
    ("terraform.nodes", "aws_eks_node_group.aws-big_node-group"),
    ("terraform.spot", "aws_eks_node_group.aws-spot_node-group"),
    ("terraform.spot", "google_container_node_pool.gcp-spot_node-pool"),
    ("terraform.spot", "azurerm_kubernetes_cluster_node_pool.az-spot_node-pool"),
    ("terraform.tags", "aws_eks_node_group.aws-big_node-group"),
    ("terraform.tags", "google_container_node_pool.gcp-spot_node-pool"),
    ("terraform.tags", "azurerm_kubernetes_cluster_node_pool.az-spot_node-pool"),
    ("terraform.encryption", "aws_launch_template.aws-big_launch-template"),
    ("terraform.encryption", "azurerm_kubernetes_cluster_node_pool.az-spot_node-pool"),
    ("terraform.imds", "aws_launch_template.aws-spot_launch-template"),
    ("terraform.network", "google_container_node_pool.gcp-spot_node-pool"),
}


def _insecure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both engines' renderers read facts with hardening switched off (as a careless edit to stacks/facts.py would)."""
    import stacks.aws
    import stacks.azure
    import stacks.gcp
    import stacks.pulumi.aws
    import stacks.pulumi.azure
    import stacks.pulumi.gcp
    from stacks import facts

    def aws(pool):
        group = facts.aws_node_group(pool)
        return replace(group, root_volume=replace(group.root_volume, encrypted=False), imds_tokens="optional")

    def gcp(pool):
        return replace(facts.gcp_node_pool(pool), private_nodes=False)

    def azure(pool):
        return replace(facts.azure_node_pool(pool), host_encryption=False)

    for module in (stacks.aws, stacks.pulumi.aws):
        monkeypatch.setattr(module, "aws_node_group", aws)
    for module in (stacks.gcp, stacks.pulumi.gcp):
        monkeypatch.setattr(module, "gcp_node_pool", gcp)
    for module in (stacks.azure, stacks.pulumi.azure):
        monkeypatch.setattr(module, "azure_node_pool", azure)


def _denials(documents: list[Document], spec) -> set[tuple[str, str]]:
    policies = PolicySet([REPO / "policies"])
    violations = policies.evaluate(documents, policy_data(spec, policies.defaults))
    # CDK Terrain names a resource <construct path>_<hash>; the Pulumi programs use the path alone
    return {(v.rule, re.sub(r"_[0-9A-F]{8}$", "", v.subject)) for v in violations if v.severity == "deny"}


def test_the_same_bad_pools_are_denied_in_both(tmp_path, monkeypatch):
    from stacks.app import build_app
    from stacks.environment import load_environment
    from stacks.pulumi.document import terraform_document
    from stacks.pulumi.mocked import declared_resources

    spec_file = tmp_path / "prod.yaml"
    spec_file.write_text(BAD)
    monkeypatch.setenv("GPUFLEET_HOME", str(tmp_path / "home"))
    environment = load_environment(spec_file)
    spec = load_spec(spec_file)
    _insecure(monkeypatch)

    build_app([environment], str(tmp_path / "cdktf.out")).synth()
    cdk = [Document("terraform", f"prod-{p}", "cdk", json.loads((tmp_path / "cdktf.out" / "stacks" / f"prod-{p}" / "cdk.tf.json").read_text()))
           for p in ("aws", "gcp", "azure")]
    pulumi = [Document("terraform", f"prod-{p}", "pulumi", terraform_document(declared_resources(environment, p)))
              for p in ("aws", "gcp", "azure")]
    assert _denials(cdk, spec) >= EXPECTED
    assert _denials(pulumi, spec) == _denials(cdk, spec)


def test_the_hybrid_pulumi_stacks_pass_the_rules(declared):
    from stacks.pulumi.document import terraform_document
    from tests.conftest import ENVIRONMENTS

    spec = load_spec(ENVIRONMENTS / "hybrid.yaml")
    documents = [Document("terraform", f"hybrid-{p}", "pulumi", terraform_document(d)) for p, d in declared.items()]
    policies = PolicySet([REPO / "policies"])
    assert policies.evaluate(documents, policy_data(spec, policies.defaults)) == []
