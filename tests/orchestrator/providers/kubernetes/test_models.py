"""The Deployment, Service and key Secret gpufleet renders, and how pods read as replicas: pure, no cluster."""

from __future__ import annotations

import base64

import kubernetes_validate
import pytest
from pydantic import SecretStr

from orchestrator.catalog.nodes import DAEMONSETS, NodeHardware, allocatable, replica_requests
from orchestrator.errors import InputError
from orchestrator.providers.base import ReplicaSpec
from orchestrator.providers.kubernetes.models import (
    api_key_secret, deployment, deployment_name, namespace, observed_replica, service, tolerations,
)
from orchestrator.settings import Settings
from orchestrator.spec import Pool
from orchestrator.spec.models import NodeShape

SETTINGS = Settings(kubernetes_image="registry.example/gpufleet/vllm@sha256:0123", replica_drain_timeout_s=30,
                    replica_ready_timeout_s=600)
REPLICA = ReplicaSpec(source="s3://weights/llama-70b", served_name="llama-70b", tensor_parallel_size=4, max_model_len=8192)
KUBERNETES_VERSION = "1.33.0"  # as tests/orchestrator/kube: the oldest with the native preStop sleep GA


def pool(**changes) -> Pool:
    fields = {"name": "azure-weu-h100", "provider": "azure", "region": "westeurope", "max_nodes": 4, "cluster": "aks"}
    return Pool(**(fields | changes))


def test_the_deployment_pins_pods_to_the_pool_and_asks_for_the_replicas_gpus() -> None:
    rendered = deployment(pool(), "llama-70b", REPLICA, 2, SETTINGS)
    spec = rendered["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert (rendered["metadata"]["name"], rendered["metadata"]["namespace"]) == ("llama-70b", "gpufleet-azure-weu-h100")
    assert rendered["spec"]["replicas"] == 2
    assert spec["nodeSelector"] == {"gpufleet.io/pool": "azure-weu-h100"}
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    assert container["image"] == SETTINGS.kubernetes_image
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["GPUFLEET_REPLICA_MODEL_SOURCE"] == "s3://weights/llama-70b"
    assert env["GPUFLEET_REPLICA_TENSOR_PARALLEL_SIZE"] == "4" and env["GPUFLEET_REPLICA_MAX_MODEL_LEN"] == "8192"
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 600
    assert spec["terminationGracePeriodSeconds"] > SETTINGS.replica_drain_timeout_s
    assert rendered["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert rendered["spec"]["selector"]["matchLabels"] == rendered["spec"]["template"]["metadata"]["labels"]


def test_pods_request_their_gpus_share_of_the_nodes_allocatable_cpu_and_memory() -> None:
    h100 = pool(instance_type="Standard_ND96isr_H100_v5")  # 8 GPUs, 96 vCPUs, 1900 GiB
    free = allocatable("azure", NodeHardware(vcpus=96, memory_gib=1900, max_pods=None)) - DAEMONSETS
    resources = deployment(h100, "llama-70b", REPLICA, 2, SETTINGS)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"nvidia.com/gpu": "4", "cpu": f"{free.cpu_millicores // 2}m",
                                     "memory": f"{free.memory_mib // 2}Mi"}
    # memory limited to the request; CPU unlimited (no CFS throttling of a latency-bound server)
    assert resources["limits"] == {"nvidia.com/gpu": "4", "memory": resources["requests"]["memory"]}


def test_an_onprem_pool_shares_its_declared_node() -> None:
    owned = pool(provider="onprem", gpu="A100-80GB", gpus_per_node=8, capacity="owned",
                 node=NodeShape(cpus=256, memory_gb=2048))
    requests = deployment(owned, "llama-70b", REPLICA, 1, SETTINGS)["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    hardware = NodeHardware(vcpus=256, memory_gib=2048e9 / 2**30)
    assert requests == {"nvidia.com/gpu": "4"} | replica_requests(allocatable("onprem", hardware), 8, 4).quantities()


def test_a_node_of_unknown_shape_gets_gpu_requests_only() -> None:
    resources = deployment(pool(), "llama-70b", REPLICA, 1, SETTINGS)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"nvidia.com/gpu": "4"}, "limits": {"nvidia.com/gpu": "4"}}


def test_the_key_reaches_pods_from_the_secret_only_when_asked() -> None:
    def env(rendered: dict) -> dict[str, dict]:
        return {e["name"]: e for e in rendered["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert "VLLM_API_KEY" not in env(deployment(pool(), "llama-70b", REPLICA, 1, SETTINGS))
    keyed = env(deployment(pool(), "llama-70b", REPLICA, 1, SETTINGS, api_key=True))["VLLM_API_KEY"]
    assert keyed == {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "gpufleet-gateway", "key": "api-key"}}}


def test_the_secret_holds_the_key_and_the_service_selects_the_deployments_pods() -> None:
    secret = api_key_secret(pool(), SecretStr("gf-abc"))
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == ("gpufleet-gateway", "gpufleet-azure-weu-h100")
    assert base64.b64decode(secret["data"]["api-key"]) == b"gf-abc"
    rendered = deployment(pool(), "llama-70b", REPLICA, 2, SETTINGS)
    svc = service(rendered, SETTINGS)
    assert svc["metadata"] == {k: rendered["metadata"][k] for k in ("name", "namespace", "labels")}
    assert svc["spec"]["selector"] == rendered["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["ports"][0]["port"] == SETTINGS.replica_port


def test_what_the_provider_posts_validates_against_the_kubernetes_schema() -> None:
    rendered = deployment(pool(), "llama-70b", REPLICA, 2, SETTINGS, api_key=True)
    for manifest in (rendered, service(rendered, SETTINGS), api_key_secret(pool(), SecretStr("gf-abc"))):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_tolerations_cover_the_gpu_taint_aks_spot_and_the_pools_own() -> None:
    keys = {(t["key"], t["effect"]) for t in tolerations(pool(capacity="spot", taints=["team=ml:NoSchedule"]))}
    assert keys == {("nvidia.com/gpu", "NoSchedule"), ("kubernetes.azure.com/scalesetpriority", "NoSchedule"),
                    ("team", "NoSchedule")}
    assert [t["key"] for t in tolerations(pool(provider="onprem", gpu="MI300X", gpus_per_node=8))] == ["amd.com/gpu"]


def test_names_are_dns_labels_and_stay_distinct() -> None:
    assert namespace("gcp_usc1.h100") != namespace("gcp-usc1-h100")
    assert deployment_name("qwen2.5_7b") != deployment_name("qwen2-5-7b")
    for name in (namespace("p" * 63), deployment_name("qwen2.5_7b")):
        assert len(name) <= 63 and all(c.isalnum() or c == "-" for c in name)


def test_the_image_is_required() -> None:
    with pytest.raises(InputError, match="GPUFLEET_KUBERNETES_IMAGE"):
        deployment(pool(), "llama-70b", REPLICA, 1, SETTINGS.model_copy(update={"kubernetes_image": None}))


@pytest.mark.parametrize("ready,deleting,ip,healthy,url", [
    (True, False, "10.1.2.3", True, "http://10.1.2.3:8000"),
    (False, False, "10.1.2.3", False, "http://10.1.2.3:8000"),
    (True, True, "10.1.2.3", False, "http://10.1.2.3:8000"),  # terminating: draining, out of service
    (False, False, None, False, ""),  # not scheduled yet
])
def test_pods_read_as_replicas(ready, deleting, ip, healthy, url) -> None:
    pod = {"metadata": {"name": "p", "labels": {"gpufleet.io/model": "llama-70b"},
                        **({"deletionTimestamp": "2026-11-23T12:00:00Z"} if deleting else {})},
           "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                      "containerStatuses": [{"restartCount": 2}]}}
    replica = observed_replica(pod, "azure-weu-h100", 8000)
    assert (replica.model, replica.healthy, replica.url, replica.restarts) == ("llama-70b", healthy, url, 2)
