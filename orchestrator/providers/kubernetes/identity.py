"""Who a pool's replicas are to the object store their weights come from (the spec's `identity`).

Every pool's namespace has the ServiceAccount `gpufleet-replica`, which the replica pods run as
(with no API token mounted: a replica never calls the Kubernetes API). The cloud's workload
identity is bound to it by the annotation its webhook or metadata server reads:

    aws_role_arn         eks.amazonaws.com/role-arn              EKS IRSA: the pod identity webhook
                                                                 injects AWS_ROLE_ARN and a token (s3://)
    gcp_service_account  iam.gke.io/gcp-service-account          GKE Workload Identity: the node's
                                                                 metadata server answers as it (gs://)
    azure_client_id      azure.workload.identity/client-id       AKS Workload Identity, with the pod
                                                                 label azure.workload.identity/use (az://)

`secret` names a Secret in the pool's namespace (made by the operator, never by gpufleet) whose
keys the pods read, per store: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (s3://),
AZURE_STORAGE_CONNECTION_STRING (az://), the key file `google-credentials.json` (gs://), and
HF_TOKEN (Hugging Face ids, optional). It is on-prem's way, and the way to a store of another
cloud. A cloud identity wins over the Secret for its own store.

A model whose store no identity of its pool reaches is bad input: its pods would start, fail
to fetch, and restart forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.errors import InputError
from orchestrator.spec import Pool

SERVICE_ACCOUNT = "gpufleet-replica"
SECRET_MOUNT = "/var/run/secrets/gpufleet/weights"
GOOGLE_KEY_FILE = "google-credentials.json"
AZURE_USE_LABEL = "azure.workload.identity/use"
ANNOTATIONS = {
    "aws_role_arn": "eks.amazonaws.com/role-arn",
    "gcp_service_account": "iam.gke.io/gcp-service-account",
    "azure_client_id": "azure.workload.identity/client-id",
}
# store scheme: (its cloud, the identity field of that cloud, what a Secret must hold for it)
STORES = {"s3": ("aws", "aws_role_arn", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
          "gs": ("gcp", "gcp_service_account", f"the key file {GOOGLE_KEY_FILE}"),
          "az": ("azure", "azure_client_id", "AZURE_STORAGE_CONNECTION_STRING")}


@dataclass(frozen=True)
class WeightsAccess:
    """What a replica pod adds to read its weights: environment, a volume and its mount, pod labels."""

    env: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    mounts: list[dict] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


def service_account(pool: Pool, namespace: str, labels: dict[str, str]) -> dict:
    """The replicas' ServiceAccount in the pool's namespace, annotated with the pool's cloud identity."""
    identity = pool.identity
    annotations = {annotation: getattr(identity, name) for name, annotation in ANNOTATIONS.items()
                   if identity is not None and getattr(identity, name) is not None}
    metadata = {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels}
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": metadata | ({"annotations": annotations} if annotations else {}),
            "automountServiceAccountToken": False}


def _secret_env(secret: str, key: str, optional: bool = False) -> dict:
    ref = {"name": secret, "key": key} | ({"optional": True} if optional else {})
    return {"name": key, "valueFrom": {"secretKeyRef": ref}}


def weights_access(pool: Pool, model: str, source: str) -> WeightsAccess:
    """How the pods of `model` in `pool` read `source`; InputError when nothing of the pool's identity reaches its store."""
    identity = pool.identity
    secret = identity.secret if identity is not None else None
    scheme = source.partition("://")[0] if "://" in source else None
    if scheme not in STORES:  # a Hugging Face id or a local path: a token for gated models, when there is a Secret
        return WeightsAccess(env=[_secret_env(secret, "HF_TOKEN", optional=True)] if secret else [])
    cloud, cloud_field, secret_keys = STORES[scheme]
    if identity is not None and getattr(identity, cloud_field) is not None:
        return WeightsAccess(labels={AZURE_USE_LABEL: "true"} if scheme == "az" else {})
    if secret is None:
        raise InputError(
            f"pool {pool.name} ({pool.provider}) would run {model} from {source}, and nothing gives its replicas "
            f"access to {scheme}://. To fix: set the pool's identity.secret to a Secret in its namespace holding "
            f"{secret_keys}" + (f", or identity.{cloud_field}" if pool.provider == cloud else "") + " (docs/replicas.md)")
    if scheme == "gs":
        return WeightsAccess(
            env=[{"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": f"{SECRET_MOUNT}/{GOOGLE_KEY_FILE}"}],
            volumes=[{"name": "weights-credentials", "secret": {
                "secretName": secret, "items": [{"key": GOOGLE_KEY_FILE, "path": GOOGLE_KEY_FILE}]}}],
            mounts=[{"name": "weights-credentials", "mountPath": SECRET_MOUNT, "readOnly": True}])
    keys = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] if scheme == "s3" else ["AZURE_STORAGE_CONNECTION_STRING"]
    return WeightsAccess(env=[_secret_env(secret, key) for key in keys])
