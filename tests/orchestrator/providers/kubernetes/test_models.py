"""The Deployment, Service, cache claim and key Secret gpufleet renders, and how pods read as replicas: pure, no cluster."""

from __future__ import annotations

import base64
import copy
import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
from pydantic import SecretStr

from orchestrator.catalog.nodes import DAEMONSETS, NodeHardware, allocatable, replica_requests
from orchestrator.errors import InputError
from orchestrator.providers.base import ReplicaSpec
from orchestrator.providers.kubernetes.models import (
    CACHE_MOUNT, REPLICA_UID, api_key_secret, canary_name, deployment, deployment_name, is_canary, model_cache_claim,
    namespace, namespace_object, observed_replica, pod_release, replica_objects, service, tolerations,
)
from orchestrator.settings import Settings
from orchestrator.spec import Pool
from orchestrator.spec.models import ModelCache, NodeShape

DIGEST = "sha256:" + "ab" * 32
SETTINGS = Settings(kubernetes_image=f"registry.example/gpufleet/vllm@{DIGEST}", replica_drain_timeout_s=30,
                    replica_ready_timeout_s=600)
REPLICA = ReplicaSpec(source="meta-llama/Llama-3.3-70B-Instruct", served_name="llama-70b", tensor_parallel_size=4,
                      max_model_len=8192)
KUBERNETES_VERSION = "1.28"  # the oldest supported (orchestrator/providers/kubernetes/versions.py)
DOCKERFILE = Path(__file__).resolve().parents[4] / "images" / "vllm" / "Dockerfile"


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
    assert env["GPUFLEET_REPLICA_MODEL_SOURCE"] == REPLICA.source
    assert env["GPUFLEET_REPLICA_TENSOR_PARALLEL_SIZE"] == "4" and env["GPUFLEET_REPLICA_MAX_MODEL_LEN"] == "8192"
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
    svc = service(pool(), "llama-70b", SETTINGS)
    assert svc["metadata"] == {k: rendered["metadata"][k] for k in ("name", "namespace", "labels")}
    assert svc["spec"]["selector"] == rendered["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == SETTINGS.replica_port


def test_what_the_provider_posts_validates_against_the_kubernetes_schema() -> None:
    shared = pool(model_cache=ModelCache(storage_class="azurefile-csi-nfs"))
    objects = replica_objects(shared, "llama-70b", REPLICA, 2, SETTINGS, api_key=True)
    assert [o["kind"] for o in objects] == ["ServiceAccount", "PersistentVolumeClaim", "Service", "Deployment"]
    for manifest in (namespace_object(shared), api_key_secret(shared, SecretStr("gf-abc")), *objects):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_three_probes_on_health_startup_long_enough_to_load_liveness_patient() -> None:
    container = deployment(pool(), "llama-70b", REPLICA, 1, SETTINGS)["spec"]["template"]["spec"]["containers"][0]
    startup, ready, live = (container[f"{k}Probe"] for k in ("startup", "readiness", "liveness"))
    assert all(p["httpGet"] == {"path": "/health", "port": "http"} for p in (startup, ready, live))
    assert startup["failureThreshold"] * startup["periodSeconds"] >= SETTINGS.replica_ready_timeout_s
    assert live["failureThreshold"] * live["periodSeconds"] >= 60 and live["timeoutSeconds"] > 1  # a busy engine is not a hung one


def test_pods_meet_pod_security_restricted_as_the_images_user() -> None:
    pod = deployment(pool(), "llama-70b", REPLICA, 1, SETTINGS)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    security = container["securityContext"]
    # the Pod Security Standard "restricted" profile, rule by rule
    assert pod["securityContext"]["runAsNonRoot"] and security["runAsNonRoot"]
    assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert all(set(v) - {"name"} <= {"emptyDir", "persistentVolumeClaim", "secret", "projected", "configMap"}
               for v in pod["volumes"])
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    # the user images/vllm runs as, and a read-only root with every path the replica writes mounted
    assert re.search(rf"^USER {REPLICA_UID}:{REPLICA_UID}$", DOCKERFILE.read_text(), re.M)
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["fsGroup"] == REPLICA_UID
    assert security["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/dev/shm", CACHE_MOUNT} <= mounts
    assert env["GPUFLEET_HOME"] == CACHE_MOUNT and env["VLLM_CACHE_ROOT"].startswith(CACHE_MOUNT + "/")
    assert env["HOME"] == "/tmp" and env["NUMBA_CACHE_DIR"].startswith("/tmp/")


def test_the_cache_is_a_sized_emptydir_or_the_pools_shared_claim() -> None:
    pod = deployment(pool(), "llama-70b", REPLICA, 1, SETTINGS)["spec"]["template"]["spec"]
    assert {"name": "model-cache", "emptyDir": {"sizeLimit": "200G"}} in pod["volumes"]
    assert model_cache_claim(pool()) is None
    shared = pool(model_cache=ModelCache(size_gb=800, storage_class="azurefile-csi-nfs"))
    pod = deployment(shared, "llama-70b", REPLICA, 1, SETTINGS)["spec"]["template"]["spec"]
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "gpufleet-model-cache"}} in pod["volumes"]
    claim = model_cache_claim(shared)
    assert claim["spec"] == {"accessModes": ["ReadWriteMany"], "storageClassName": "azurefile-csi-nfs",
                             "resources": {"requests": {"storage": "800G"}}}
    assert claim["metadata"]["namespace"] == namespace("azure-weu-h100")
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"  # no chown of the whole cache per start


@pytest.mark.parametrize("reference,allowed", [
    (f"registry.example/gpufleet/vllm@{DIGEST}", True),
    (f"registry.example/gpufleet/vllm:v0.32.0@{DIGEST}", True),
    ("registry.example/gpufleet/vllm@sha512:" + "cd" * 64, True),
    ("registry.example/gpufleet/vllm:latest", False),
    ("registry.example/gpufleet/vllm@sha256:0123", False),  # a cut digest pins nothing
])
def test_the_image_must_be_pinned_by_digest_unless_tags_are_allowed(reference, allowed) -> None:
    settings = SETTINGS.model_copy(update={"kubernetes_image": reference})
    if allowed:
        assert deployment(pool(), "m", REPLICA, 1, settings)["spec"]["template"]["spec"]["containers"][0]["image"] == reference
        return
    with pytest.raises(InputError, match="not pinned by digest.*GPUFLEET_KUBERNETES_ALLOW_IMAGE_TAG"):
        deployment(pool(), "m", REPLICA, 1, settings)
    tagged = settings.model_copy(update={"kubernetes_allow_image_tag": True})
    assert deployment(pool(), "m", REPLICA, 1, tagged)["spec"]["template"]["spec"]["containers"][0]["image"] == reference


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


V2 = REPLICA.model_copy(update={"version": "v2", "image": "registry.example/gpufleet/vllm@sha256:" + "cd" * 32,
                                "vllm_args": ("--enable-prefix-caching", "--override-generation-config",
                                              '{"temperature": 0.5}'),
                                "max_model_len": 4096})


def test_the_pods_carry_their_version_its_image_args_and_context() -> None:
    rendered = deployment(pool(), "llama-70b", V2, 1, SETTINGS)
    template = rendered["spec"]["template"]
    container = template["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert template["metadata"]["labels"]["gpufleet.io/version"] == "v2" and env["GPUFLEET_REPLICA_VERSION"] == "v2"
    assert container["image"] == V2.image  # the version's, not the environment's
    assert shlex.split(env["GPUFLEET_REPLICA_VLLM_ARGS"]) == list(V2.vllm_args)  # as the entrypoint splits them
    assert env["GPUFLEET_REPLICA_MAX_MODEL_LEN"] == "4096"
    assert "gpufleet.io/version" not in rendered["spec"]["selector"]["matchLabels"]  # a promotion changes it
    plain = deployment(pool(), "llama-70b", REPLICA, 1, SETTINGS)["spec"]["template"]
    plain_env = {e["name"] for e in plain["spec"]["containers"][0]["env"]}
    assert "gpufleet.io/version" not in plain["metadata"]["labels"]  # no version: as before versions existed
    assert not plain_env & {"GPUFLEET_REPLICA_VERSION", "GPUFLEET_REPLICA_VLLM_ARGS"}
    assert plain["spec"]["containers"][0]["image"] == SETTINGS.kubernetes_image
    assert pod_release(plain) != pod_release(template) == pod_release(copy.deepcopy(template))


def test_the_canary_is_a_second_deployment_its_service_the_models() -> None:
    objects = replica_objects(pool(), "llama-70b", V2, 1, SETTINGS, api_key=True, canary=True)
    stable = deployment(pool(), "llama-70b", REPLICA, 3, SETTINGS)
    canary, svc = objects[-1], objects[-2]
    assert (canary["metadata"]["name"], canary["metadata"]["namespace"]) == ("llama-70b-canary", stable["metadata"]["namespace"])
    assert canary["spec"]["selector"]["matchLabels"] == stable["spec"]["selector"]["matchLabels"] | {"gpufleet.io/track": "canary"}
    assert svc == service(pool(), "llama-70b", SETTINGS)  # the model's, selecting stable and canary pods alike
    for body in (stable, canary):
        assert svc["spec"]["selector"].items() <= body["spec"]["template"]["metadata"]["labels"].items()
        assert body["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert is_canary(canary) and not is_canary(stable)
    assert canary_name("m" * 63) != canary_name("m" * 62) and len(canary_name("m" * 63)) <= 63
    for manifest in objects:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_a_versions_image_must_be_pinned_and_its_name_a_label_value() -> None:
    with pytest.raises(InputError, match="version v2's image=registry.example/vllm:v2 is not pinned by digest"):
        deployment(pool(), "m", V2.model_copy(update={"image": "registry.example/vllm:v2"}), 1, SETTINGS)
    with pytest.raises(InputError, match="version 'v2/beta' of llama-70b cannot be a Kubernetes label value"):
        deployment(pool(), "m", V2.model_copy(update={"version": "v2/beta"}), 1, SETTINGS)
    unset = SETTINGS.model_copy(update={"kubernetes_image": None})  # the version's own image needs no default
    assert deployment(pool(), "m", V2, 1, unset)["spec"]["template"]["spec"]["containers"][0]["image"] == V2.image


@pytest.mark.parametrize("labels,version,canary", [
    ({"gpufleet.io/model": "m"}, None, False),
    ({"gpufleet.io/model": "m", "gpufleet.io/version": "v1"}, "v1", False),
    ({"gpufleet.io/model": "m", "gpufleet.io/version": "v2", "gpufleet.io/track": "canary"}, "v2", True),
])
def test_pods_read_with_their_version_and_track(labels, version, canary) -> None:
    replica = observed_replica({"metadata": {"name": "p", "labels": labels}, "status": {}}, "azure-weu-h100", 8000)
    assert (replica.version, replica.canary) == (version, canary)
