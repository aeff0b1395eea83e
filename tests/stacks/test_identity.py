"""Workload identity in the stacks: the IRSA role and the GKE Workload Identity bindings the replicas' ServiceAccounts need.

What the stacks trust must be exactly what rebalance creates: the ServiceAccount the replica
pods run as, in the pool's namespace (orchestrator/providers/kubernetes), annotated with the
spec's identity. These tests take those names from the Kubernetes provider's own functions.
"""

from __future__ import annotations

import json
from dataclasses import replace

from orchestrator.providers.kubernetes.identity import SERVICE_ACCOUNT, service_account
from orchestrator.providers.kubernetes.models import namespace
from stacks.facts import aws_workload_roles, gcs_read_grants, stores


def resources(synthesized, stack: str, kind: str, section: str = "resource") -> dict[str, dict]:
    return synthesized.json(stack).get(section, {}).get(kind, {})


def test_the_irsa_role_is_the_one_the_service_accounts_are_annotated_with(synthesized):
    pools = [p for p in synthesized.pools.values() if p.environment == "hybrid" and p.pool.provider == "aws"]
    (role,) = [r for r in resources(synthesized, "hybrid-aws", "aws_iam_role").values() if "name" in r]  # node roles: name_prefix
    for pool in pools:
        annotation = service_account(pool.pool, namespace(pool.name), {})["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert annotation == f"arn:aws:iam::123456789012:role{role['path']}{role['name']}"


def test_the_trust_policy_names_each_clusters_service_accounts_and_no_others(synthesized):
    (trust,) = resources(synthesized, "hybrid-aws", "aws_iam_policy_document", "data").values()
    by_cluster = {}
    for statement in trust["statement"]:
        assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"] and statement["effect"] == "Allow"
        (principal,) = statement["principals"]
        assert principal["type"] == "Federated" and "data.aws_iam_openid_connect_provider." in principal["identifiers"][0]
        conditions = {c["variable"].rsplit(":", 1)[1]: c for c in statement["condition"]}
        assert all(c["test"] == "StringEquals" for c in conditions.values())
        assert conditions["aud"]["values"] == ["sts.amazonaws.com"]
        cluster = conditions["sub"]["variable"].split("cluster-")[1].split("_")[0]
        by_cluster[cluster] = set(conditions["sub"]["values"])
    expected = {}
    for pool in (p for p in synthesized.pools.values() if p.environment == "hybrid" and p.pool.provider == "aws"):
        expected.setdefault(pool.cluster, set()).add(f"system:serviceaccount:{namespace(pool.name)}:{SERVICE_ACCOUNT}")
    assert by_cluster == expected


def test_the_role_reads_the_specs_s3_weights_and_nothing_else(synthesized):
    (policy,) = resources(synthesized, "hybrid-aws", "aws_iam_role_policy").values()
    document = json.loads(policy["policy"])
    actions = sorted(a for s in document["Statement"] for a in s["Action"])
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    get = next(s for s in document["Statement"] if s["Action"] == ["s3:GetObject"])
    assert get["Resource"] == ["arn:aws:s3:::acme-models/meta-llama/Llama-3.1-8B-Instruct/*"]


def test_gke_pools_bind_their_service_accounts_through_workload_identity(synthesized):
    members = resources(synthesized, "hybrid-gcp", "google_service_account_iam_member")
    gcp_pools = [p for p in synthesized.pools.values() if p.environment == "hybrid" and p.pool.provider == "gcp"]
    assert sorted(members) == sorted(f"{p.name}_workload-identity" for p in gcp_pools)
    for pool in gcp_pools:
        member = members[f"{pool.name}_workload-identity"]
        email = pool.pool.identity.gcp_service_account
        assert member["role"] == "roles/iam.workloadIdentityUser"
        assert member["service_account_id"] == f"projects/acme-ml-prod/serviceAccounts/{email}"
        assert member["member"].endswith(f".svc.id.goog[{namespace(pool.name)}/{SERVICE_ACCOUNT}]")
        assert "data.google_client_config." in member["member"]  # the clusters' project: the one deployed to
    (grant,) = resources(synthesized, "hybrid-gcp", "google_storage_bucket_iam_member").values()
    assert (grant["bucket"], grant["role"]) == ("acme-models", "roles/storage.objectViewer")


def test_pools_without_a_cloud_identity_get_none(synthesized):
    aws = [p for p in synthesized.pools.values() if p.environment == "hybrid" and p.pool.provider == "aws"]
    anonymous = [replace(p, pool=p.pool.model_copy(update={"identity": None})) for p in aws]
    assert aws_workload_roles(anonymous, ("s3://acme-models/x/",)) == []
    assert gcs_read_grants(anonymous, ("gs://acme-models/x/",)) == []
    assert resources(synthesized, "hybrid-azure", "azurerm_federated_identity_credential") == {}  # the spec cannot locate it


def test_model_stores_are_parsed_per_scheme():
    sources = ("s3://a/x/", "s3://a/x/", "gs://b/y", "meta-llama/Llama-3.1-8B", "s3://c")
    assert stores(sources, "s3") == (("a", "x/"), ("c", ""))
    assert stores(sources, "gs") == (("b", "y"),)
