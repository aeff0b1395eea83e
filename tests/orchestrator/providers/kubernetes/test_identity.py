"""Each cloud's workload identity, or a Secret, reaches the store of the weights a pool's replicas run."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.errors import InputError
from orchestrator.providers.base import ReplicaSpec
from orchestrator.providers.kubernetes.identity import service_account
from orchestrator.providers.kubernetes.models import deployment, labels_of, namespace
from orchestrator.settings import Settings
from orchestrator.spec import Pool
from orchestrator.spec.models import WeightsIdentity

SETTINGS = Settings(kubernetes_image="registry.example/gpufleet/vllm@sha256:" + "ab" * 32)
ROLE = "arn:aws:iam::123456789012:role/gpufleet-weights"
GSA = "gpufleet-weights@acme-ml-prod.iam.gserviceaccount.com"
CLIENT_ID = "6a1b0c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
SOURCES = {"s3": "s3://acme-models/llama/", "gs": "gs://acme-models/llama/", "az": "az://acme/models/llama/"}


def pool(provider: str, **identity: str) -> Pool:
    return Pool(name=f"{provider}-pool", provider=provider, region="r", max_nodes=2, cluster="c",
                identity=WeightsIdentity(**identity) if identity else None)


def pod(pool_: Pool, source: str) -> dict:
    replica = ReplicaSpec(source=source, served_name="llama")
    return deployment(pool_, "llama", replica, 1, SETTINGS)["spec"]["template"]


def env(template: dict) -> dict[str, dict]:
    return {e["name"]: e for e in template["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("provider,field,value,annotation,scheme", [
    ("aws", "aws_role_arn", ROLE, "eks.amazonaws.com/role-arn", "s3"),
    ("gcp", "gcp_service_account", GSA, "iam.gke.io/gcp-service-account", "gs"),
    ("azure", "azure_client_id", CLIENT_ID, "azure.workload.identity/client-id", "az"),
])
def test_the_clouds_workload_identity_is_the_replicas_service_account(provider, field, value, annotation, scheme) -> None:
    pool_ = pool(provider, **{field: value})
    account = service_account(pool_, namespace(pool_.name), labels_of(pool_))
    assert account["metadata"]["annotations"] == {annotation: value}
    assert account["automountServiceAccountToken"] is False  # a replica never calls the API
    template = pod(pool_, SOURCES[scheme])
    assert template["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert not any("valueFrom" in e for e in env(template).values())  # no static keys
    # AKS's webhook mutates only pods that ask for it
    assert (template["metadata"]["labels"].get("azure.workload.identity/use") == "true") == (provider == "azure")


@pytest.mark.parametrize("scheme", ["s3", "az"])
def test_a_secret_gives_keys_for_any_store_on_prem(scheme) -> None:
    variables = env(pod(pool("onprem", secret="weights-creds"), SOURCES[scheme]))
    wanted = {"s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, "az": {"AZURE_STORAGE_CONNECTION_STRING"}}[scheme]
    from_secret = {k for k, e in variables.items() if "valueFrom" in e and e["valueFrom"]["secretKeyRef"]["name"] == "weights-creds"}
    assert from_secret == wanted
    assert all(not variables[k]["valueFrom"]["secretKeyRef"].get("optional") for k in wanted)  # missing: the pod says so


def test_a_secret_gives_gcs_a_key_file() -> None:
    template = pod(pool("onprem", secret="weights-creds"), SOURCES["gs"])
    path = env(template)["GOOGLE_APPLICATION_CREDENTIALS"]["value"]
    volume = next(v for v in template["spec"]["volumes"] if "secret" in v)
    mount = next(m for m in template["spec"]["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert volume["secret"]["secretName"] == "weights-creds" and mount["readOnly"]
    assert path == f"{mount['mountPath']}/{volume['secret']['items'][0]['path']}"


def test_a_cloud_identity_wins_over_the_secret_for_its_own_store_and_the_secret_serves_another() -> None:
    both = pool("gcp", gcp_service_account=GSA, secret="aws-keys")
    assert "AWS_ACCESS_KEY_ID" not in env(pod(both, SOURCES["gs"]))
    assert env(pod(both, SOURCES["s3"]))["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "aws-keys"


def test_hugging_face_ids_need_no_identity_and_read_an_optional_token_from_the_secret() -> None:
    assert "HF_TOKEN" not in env(pod(pool("gcp"), "meta-llama/Llama-3.1-8B-Instruct"))
    token = env(pod(pool("onprem", secret="hf"), "meta-llama/Llama-3.1-8B-Instruct"))["HF_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": "hf", "key": "HF_TOKEN", "optional": True}


@pytest.mark.parametrize("pool_,scheme,says", [
    (pool("gcp"), "s3", "identity.secret to a Secret in its namespace holding AWS_ACCESS_KEY_ID"),
    (pool("aws"), "s3", "or identity.aws_role_arn"),
    (pool("aws", aws_role_arn=ROLE), "gs", "google-credentials.json"),  # the role reaches S3 only
    (pool("onprem"), "az", "AZURE_STORAGE_CONNECTION_STRING"),
])
def test_a_store_no_identity_reaches_is_bad_input(pool_, scheme, says) -> None:
    with pytest.raises(InputError, match=rf"would run llama from {scheme}://.*{says}"):
        pod(pool_, SOURCES[scheme])


def test_the_spec_refuses_another_clouds_identity_and_an_empty_one() -> None:
    with pytest.raises(ValidationError, match="identity.aws_role_arn is for aws pools"):
        pool("gcp", aws_role_arn=ROLE)
    with pytest.raises(ValidationError, match="empty identity"):
        Pool(name="p", provider="aws", region="r", max_nodes=1, identity={})
    with pytest.raises(ValidationError, match=r"identity\.aws_role_arn\n  String should match pattern"):
        Pool(name="p", provider="aws", region="r", max_nodes=1, identity={"aws_role_arn": "arn:aws:iam::1234:role/x"})
