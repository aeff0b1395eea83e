"""The Pulumi resources of one stack as a Terraform JSON document, for the same Rego rules.

policies/terraform/ reads synthesized Terraform JSON (`resource.<type>.<name>`, snake_case
fields, `${type.name.id}` references). Rather than a second rule set in Pulumi's policy-pack
SDK (which needs the Pulumi CLI to run, and would restate every rule), the declared Pulumi
resources are normalised into that shape and the *same* rules run over them: pulumi-aws
and pulumi-gcp are bridged from the Terraform providers, so their fields are the Terraform
fields in camelCase (plus a few plural list names); pulumi-azure-native speaks the ARM API,
so its agent pool fields are mapped one by one to azurerm's (and a Helm release's to
helm_release's). Kubernetes objects drop `apiVersion`/`kind`, which the type names. Ids become Terraform
references, so a node group still names its launch template. Provider versions are the
installed Pulumi packages' (pinned in constraints.txt), so `terraform.providers` checks them.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from typing import Any

from stacks.pulumi.mocked import Declared

# Pulumi type -> Terraform type, for the types the programs declare
TERRAFORM_TYPES = {
    "aws:eks/nodeGroup:NodeGroup": "aws_eks_node_group",
    "aws:ec2/launchTemplate:LaunchTemplate": "aws_launch_template",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "gcp:container/nodePool:NodePool": "google_container_node_pool",
    "gcp:serviceaccount/iAMMember:IAMMember": "google_service_account_iam_member",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "google_storage_bucket_iam_member",
    "azure-native:containerservice:AgentPool": "azurerm_kubernetes_cluster_node_pool",
    "kubernetes:core/v1:Namespace": "kubernetes_namespace_v1",
    "kubernetes:core/v1:ResourceQuota": "kubernetes_resource_quota_v1",
    "kubernetes:scheduling.k8s.io/v1:PriorityClass": "kubernetes_priority_class_v1",
    "kubernetes:helm.sh/v3:Release": "helm_release",
}
PROVIDERS = {  # Pulumi provider package -> (Terraform provider name, Python distribution)
    "aws": ("aws", "pulumi_aws"), "gcp": ("google", "pulumi_gcp"),
    "azure-native": ("azure-native", "pulumi_azure_native"), "kubernetes": ("kubernetes", "pulumi_kubernetes"),
}
PLURALS = {"taints": "taint", "guestAccelerators": "guest_accelerator"}  # Pulumi's list names for Terraform blocks
MAPS = {"labels", "tags", "resourceLabels", "nodeLabels", "hard", "metadata", "values"}  # keys are data: kept as written
AZURE_FIELDS = {  # azure-native AgentPool -> azurerm_kubernetes_cluster_node_pool
    "agentPoolName": "name", "vmSize": "vm_size", "mode": "mode", "enableEncryptionAtHost": "host_encryption_enabled",
    "enableNodePublicIP": "node_public_ip_enabled", "enableAutoScaling": "auto_scaling_enabled", "minCount": "min_count",
    "maxCount": "max_count", "count": "node_count", "scaleSetPriority": "priority", "scaleSetEvictionPolicy": "eviction_policy",
    "spotMaxPrice": "spot_max_price", "availabilityZones": "zones", "nodeLabels": "node_labels", "nodeTaints": "node_taints",
    "tags": "tags",
}


def snake(name: str) -> str:
    return PLURALS.get(name) or re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _terraform_fields(value: Any, key: str = "") -> Any:
    """Bridged-provider fields in Terraform's spelling; the contents of maps (labels, tags) untouched,
    except GCP's `metadata` and Kubernetes' object metadata, which are objects of maps."""
    if isinstance(value, list):
        return [_terraform_fields(v, key) for v in value]
    if not isinstance(value, dict):
        return value
    if key in MAPS and not (key == "metadata" and ("labels" in value or "name" in value)):
        return value
    return {snake(k): _terraform_fields(v, k) for k, v in value.items()}


def _azure_fields(inputs: dict[str, Any]) -> dict[str, Any]:
    fields = {AZURE_FIELDS[k]: v for k, v in inputs.items() if k in AZURE_FIELDS}
    if "gpuProfile" in inputs:
        fields["gpu_driver"] = inputs["gpuProfile"].get("driver")
    fields["kubernetes_cluster_id"] = (f"/resourceGroups/{inputs.get('resourceGroupName')}"
                                       f"/providers/Microsoft.ContainerService/managedClusters/{inputs.get('resourceName')}")
    return fields


def _helm_fields(inputs: dict[str, Any]) -> dict[str, Any]:
    """A Helm release as Terraform's helm_release: the chart's repository, values as one JSON document."""
    fields = {k: v for k, v in inputs.items() if k not in ("repositoryOpts", "values", "compat")}
    return {**fields, "repository": inputs.get("repositoryOpts", {}).get("repo"),
            "values": [json.dumps(inputs.get("values", {}), sort_keys=True)]}


def _references(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_references(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _references(v, ids) for k, v in value.items()}
    return value


def terraform_path(resource_type: str, path: str) -> str:
    """An ignoreChanges path in Terraform's field names (nested blocks without their `[0]`)."""
    if resource_type.startswith("azure-native:"):
        return AZURE_FIELDS.get(path, path)
    return ".".join(snake(part) for part in path.split("."))


def terraform_document(declared: list[Declared]) -> dict[str, Any]:
    """The stack as Terraform JSON: `provider`, `resource` and `terraform.required_providers`."""
    providers = {d.name: d for d in declared if d.type.startswith("pulumi:providers:")}
    ids = {d.id: f"${{{TERRAFORM_TYPES[d.type]}.{d.name}.id}}" for d in declared if d.type in TERRAFORM_TYPES}
    document: dict[str, Any] = {"provider": {}, "resource": {}, "terraform": {"required_providers": {}}}
    for provider in providers.values():
        name, distribution = PROVIDERS[provider.type.removeprefix("pulumi:providers:")]
        settings = {snake(k): v for k, v in provider.inputs.items() if k != "name"}
        document["provider"].setdefault(name, []).append({"alias": provider.name, **settings})
        document["terraform"]["required_providers"][name] = {"source": f"pulumi/{distribution}",
                                                              "version": importlib.metadata.version(distribution)}
    for d in declared:
        if d.type not in TERRAFORM_TYPES:
            continue
        if d.type.startswith("azure-native:"):
            fields = _azure_fields(d.inputs)
        elif d.type == "kubernetes:helm.sh/v3:Release":
            fields = _helm_fields(d.inputs)
        else:
            fields = _terraform_fields({k: v for k, v in d.inputs.items() if k not in ("apiVersion", "kind")})
        resource = _references(fields, ids)
        provider = providers[d.provider]
        resource["provider"] = f"{PROVIDERS[provider.type.removeprefix('pulumi:providers:')][0]}.{provider.name}"
        if d.depends_on:
            resource["depends_on"] = [f"{TERRAFORM_TYPES[t.type]}.{t.name}" for t in declared if t.name in d.depends_on]
        if d.ignore_changes:
            resource["lifecycle"] = {"ignore_changes": [terraform_path(d.type, p) for p in d.ignore_changes]}
        document["resource"].setdefault(TERRAFORM_TYPES[d.type], {})[d.name] = resource
    return document
