"""Deployments, their Services, ServiceAccount, cache claim and the key's Secret through the official kubernetes client against a local API
fake, reached by a kubeconfig context."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.base import Promote, ReplicaSpec, ScaleDown, ScaleUp, SetCanary, SetTraffic, StepPending
from orchestrator.providers.errors import CredentialsInvalid, ProviderUnavailable, QuotaExceeded
from orchestrator.providers.kubernetes import KubernetesDeployments
from orchestrator.settings import Settings
from orchestrator.spec import Pool
from orchestrator.spec.models import ModelCache, WeightsIdentity
from tests.fakes.kubernetes_fake import FakeKubernetesApi, status_body

NAMESPACE = "gpufleet-aws-h100"
REPLICA = ReplicaSpec(source="hf:meta-llama/Llama-3.1-8B-Instruct", served_name="llama-8b")
KEY = SecretStr("gf-test-gateway-key-0123456789")
ROLE = "arn:aws:iam::123456789012:role/gpufleet-weights"


@dataclass
class Kube:
    fake: FakeKubernetesApi
    settings: Settings

    def deployments(self, pools: list[Pool] | None = None, settings: Settings | None = None, backoff=None,
                    api_key: object = KEY):
        return KubernetesDeployments(pools or [POOL], settings or self.settings, backoff, api_key=api_key)

    def replicas(self, model: str = "llama-8b") -> int | None:
        deployment = self.fake.deployments.get((NAMESPACE, model))
        return deployment["spec"]["replicas"] if deployment else None

    def secret_value(self) -> str | None:
        secret = self.fake.secrets.get((NAMESPACE, "gpufleet-gateway"))
        return base64.b64decode(secret["data"]["api-key"]).decode() if secret else None

    def env(self, model: str = "llama-8b") -> dict[str, dict]:
        container = self.fake.deployments[(NAMESPACE, model)]["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e for e in container["env"]}


POOL = Pool(name="aws-h100", provider="aws", region="us-east-1", instance_type="p5.48xlarge", max_nodes=4,
            cluster="eks-prod")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeKubernetesApi, Path]]:
    fake = FakeKubernetesApi(ready_delay_s=0.05, terminate_delay_s=0.05)
    with fake.serve() as url:
        kubeconfig = tmp_path_factory.mktemp("kube") / "config"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "eks-prod",
            "clusters": [{"name": "fake", "cluster": {"server": url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "eks-prod", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        yield fake, kubeconfig


@pytest.fixture
def kube(server: tuple[FakeKubernetesApi, Path], faults) -> Kube:
    fake, kubeconfig = server
    fake.reset()
    fake.namespaces.clear()
    fake.deployments.clear()
    fake.pods.clear()
    fake.nodes.clear()
    fake.services.clear()
    for store in (*fake.objects.values(), fake.autoscalers, fake.fewest_ready):
        store.clear()
    settings = Settings(kubeconfig=kubeconfig, kubernetes_image="registry.example/gpufleet/vllm@sha256:" + "ab" * 32,
                        provider_call_timeout_s=faults.call_timeout_s, provider_poll_s=0.01)
    return Kube(fake, settings)


def up(count: int, model: str = "llama-8b") -> ScaleUp:
    return ScaleUp(model=model, pool=POOL.name, count=count, replica=REPLICA)


def down(count: int, model: str = "llama-8b") -> ScaleDown:
    return ScaleDown(model=model, pool=POOL.name, count=count)


def test_scale_up_creates_the_deployment_and_waits_until_ready(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    assert settle(lambda: deployments.apply(up(2))) >= 1
    assert kube.replicas() == 2 and NAMESPACE in kube.fake.namespaces
    deployments.apply(up(2))  # holds already: nothing to change
    deployments.apply(up(1))  # a ScaleUp never scales down
    assert kube.replicas() == 2
    assert (kube.fake.count("POST", "/deployments"), kube.fake.count("PATCH")) == (1, 0)
    replicas = deployments.observe()
    assert [(r.model, r.pool, r.healthy) for r in replicas] == [("llama-8b", POOL.name, True)] * 2
    assert all(r.url.startswith("http://10.0.") and r.url.endswith(":8000") for r in replicas)


def test_scale_up_makes_the_namespace_restricted_and_the_identity_and_cache_claim_once(kube: Kube, backoff, settle) -> None:
    pool = POOL.model_copy(update={"identity": WeightsIdentity(aws_role_arn=ROLE),
                                   "model_cache": ModelCache(size_gb=500, storage_class="efs")})
    deployments = kube.deployments([pool], backoff=backoff)
    settle(lambda: deployments.apply(up(1)))
    settle(lambda: deployments.apply(up(1, "qwen-7b")))  # the pool's account and claim are there (409): kept
    account = kube.fake.objects["serviceaccounts"][(NAMESPACE, "gpufleet-replica")]
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE}
    claim = kube.fake.objects["persistentvolumeclaims"][(NAMESPACE, "gpufleet-model-cache")]
    assert claim["spec"]["storageClassName"] == "efs" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert (kube.fake.count("POST", "/serviceaccounts"), kube.fake.count("POST", "/persistentvolumeclaims")) == (2, 2)
    assert len(kube.fake.objects["serviceaccounts"]) == len(kube.fake.objects["persistentvolumeclaims"]) == 1
    for model in ("llama-8b", "qwen-7b"):
        pod = kube.fake.deployments[(NAMESPACE, model)]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "gpufleet-replica"
        assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "gpufleet-model-cache"}} in pod["volumes"]
    # the namespace enforces Pod Security `restricted`, which the pods meet (test_models)
    assert kube.fake.namespaces[NAMESPACE]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_scale_up_creates_the_service_and_the_key_secret_once(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(2)))
    settle(lambda: deployments.apply(up(3)))  # a scale: nothing else made
    service = kube.fake.services[(NAMESPACE, "llama-8b")]
    labels = kube.fake.deployments[(NAMESPACE, "llama-8b")]["spec"]["selector"]["matchLabels"]
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["selector"] == labels
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert kube.secret_value() == KEY.get_secret_value()
    assert kube.env()["VLLM_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "gpufleet-gateway", "key": "api-key"}}
    assert (kube.fake.count("POST", "/services"), kube.fake.count("POST", "/secrets")) == (1, 1)
    settle(lambda: deployments.apply(up(1, "qwen-7b")))  # the pool's Secret is there already (409): kept
    assert set(kube.fake.services) == {(NAMESPACE, "llama-8b"), (NAMESPACE, "qwen-7b")}
    assert kube.fake.count("POST", "/secrets") == 2 and len(kube.fake.secrets) == 1
    assert kube.env("qwen-7b")["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "gpufleet-gateway"


def test_a_scale_up_cut_short_is_finished_by_the_next_call(kube: Kube, backoff, sleeps, settle) -> None:
    kube.fake.fail_next(403, status_body(403, "Forbidden", 'deployments.apps is forbidden: User "ci" cannot create '
                                         'resource "deployments"'), method="POST", path="/deployments")
    deployments = kube.deployments(backoff=backoff)
    with pytest.raises(CredentialsInvalid):
        deployments.apply(up(1))
    assert (NAMESPACE, "llama-8b") in kube.fake.services and kube.replicas() is None
    settle(lambda: deployments.apply(up(1)))  # namespace, Secret and Service answer 409: already there
    assert kube.replicas() == 1 and len(kube.fake.services) == 1 and kube.secret_value() == KEY.get_secret_value()
    assert (kube.fake.count("POST", "/services"), kube.fake.count("POST", "/secrets")) == (2, 2)
    assert sleeps == []  # 409 is done, not a failure


def test_without_a_key_there_is_no_secret_and_no_key_variable(kube: Kube, backoff, settle) -> None:
    settle(lambda: kube.deployments(backoff=backoff, api_key=None).apply(up(1)))
    assert kube.fake.secrets == {} and kube.fake.count("/secrets") == 0
    assert "VLLM_API_KEY" not in kube.env() and (NAMESPACE, "llama-8b") in kube.fake.services


def test_a_key_function_is_asked_once_and_only_when_a_deployment_is_made(kube: Kube, backoff, settle) -> None:
    asked: list[int] = []

    def key() -> SecretStr:
        asked.append(1)
        return KEY

    deployments = kube.deployments(backoff=backoff, api_key=key)
    deployments.observe()
    settle(lambda: deployments.apply(down(0)))
    assert asked == []  # observing (`status`) makes no key
    settle(lambda: deployments.apply(up(1)))
    settle(lambda: deployments.apply(up(1, "qwen-7b")))
    assert asked == [1] and kube.secret_value() == KEY.get_secret_value()


@pytest.mark.parametrize("status,reason,message,times,raised", [
    (500, "InternalError", "etcdserver: request timed out", 4, ProviderUnavailable),  # retried, then raised
    (403, "Forbidden", 'secrets is forbidden: User "ci" cannot create resource "secrets"', 1, CredentialsInvalid),
])
def test_the_key_is_never_logged_nor_raised(kube: Kube, backoff, settle, caplog, status, reason, message, times,
                                            raised) -> None:
    encoded = base64.b64encode(KEY.get_secret_value().encode()).decode()
    kube.fake.fail_next(status, status_body(status, reason, message), times=times, method="POST", path="/secrets")
    deployments = kube.deployments(backoff=backoff)
    deployments.observe()  # the client is made (its configuration quiets urllib3 to WARNING); then every debug line:
    for name in ("", "urllib3", "kubernetes", "client"):
        caplog.set_level(logging.DEBUG, logger=name)
    with pytest.raises(raised) as caught:
        deployments.apply(up(1))
    settle(lambda: deployments.apply(up(1)))  # and once it goes through
    assert kube.secret_value() == KEY.get_secret_value()
    errors, cause = [], caught.value
    while cause is not None:
        errors += [str(cause), repr(cause), str(getattr(cause, "body", ""))]
        cause = cause.__cause__ or cause.__context__
    said = caplog.text + "\n".join(errors) + repr(deployments.__dict__)
    assert "/secrets" in caplog.text  # the calls were logged, the key not
    assert KEY.get_secret_value() not in said and encoded not in said


def test_scale_up_scales_an_existing_deployment(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(1)))
    settle(lambda: deployments.apply(up(3)))
    assert kube.replicas() == 3
    assert kube.fake.count("PATCH", "/scale") == 1


def test_scale_down_waits_for_the_pods_to_stop(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(3)))
    with pytest.raises(StepPending, match="3 llama-8b pods left, stopping down to 1"):
        deployments.apply(down(1))
    assert [r.healthy for r in deployments.observe()].count(False) == 2  # terminating: out of service
    settle(lambda: deployments.apply(down(1)))
    deployments.apply(down(2))  # a ScaleDown never scales up
    assert kube.replicas() == 1 and len(deployments.observe()) == 1


def test_scale_down_to_zero_deletes_the_deployment_and_its_service(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(2)))
    settle(lambda: deployments.apply(up(1, "qwen-7b")))
    settle(lambda: deployments.apply(down(0)))
    assert kube.replicas() is None and [r.model for r in deployments.observe()] == ["qwen-7b"]
    assert set(kube.fake.services) == {(NAMESPACE, "qwen-7b")}
    assert kube.secret_value() == KEY.get_secret_value()  # the pool's other models still read it
    deployments.apply(down(0))  # gone already
    assert (kube.fake.count("DELETE", "/deployments/"), kube.fake.count("DELETE", "/services/")) == (1, 1)


def test_a_service_already_gone_does_not_stop_the_scale_down(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(1)))
    del kube.fake.services[(NAMESPACE, "llama-8b")]
    settle(lambda: deployments.apply(down(0)))  # 404: gone
    assert kube.replicas() is None


def test_with_an_hpa_rebalance_sets_its_floor_and_never_the_deployments_count(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(2)))
    kube.fake.autoscalers[(NAMESPACE, "llama-8b")] = {  # applied by Argo CD or Flux from `orchestrator manifests`
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "llama-8b", "namespace": NAMESPACE},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-8b"},
                 "minReplicas": 2, "maxReplicas": 3}}
    floor = lambda: kube.fake.autoscalers[(NAMESPACE, "llama-8b")]["spec"]  # noqa: E731
    settle(lambda: deployments.apply(up(4)))  # the floor, and the ceiling with it; the HPA brings the pods
    assert (floor()["minReplicas"], floor()["maxReplicas"], kube.replicas()) == (4, 4, 4)
    deployments.apply(down(3))  # done once the floor is lower: pods above it are the HPA's to remove
    assert (floor()["minReplicas"], kube.replicas()) == (3, 4)
    assert kube.fake.count("PATCH", "/scale") == 0
    settle(lambda: deployments.apply(down(0)))
    assert kube.replicas() is None and kube.fake.autoscalers == {}


def test_release_deletes_every_gpufleet_deployment_and_service(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(1, "llama-8b")))
    settle(lambda: deployments.apply(up(1, "qwen-7b")))
    orphan = kube.fake.services[(NAMESPACE, "qwen-7b")] | {"metadata": kube.fake.services[(NAMESPACE, "qwen-7b")]
                                                           ["metadata"] | {"name": "old-model"}}
    kube.fake.services[(NAMESPACE, "old-model")] = orphan  # its Deployment was deleted by hand
    kube.fake.services[(NAMESPACE, "theirs")] = {"metadata": {"name": "theirs", "labels": {"app": "theirs"}}}
    settle(deployments.release)
    assert kube.fake.deployments == {} and deployments.observe() == []
    assert set(kube.fake.services) == {(NAMESPACE, "theirs")}  # only gpufleet's
    assert kube.secret_value() == KEY.get_secret_value()  # kept: the next ScaleUp reuses it


CALLS = [("POST", "/api/v1/namespaces"), ("POST", "/secrets"), ("POST", "/services"), ("POST", "/deployments"),
         ("GET", "/deployments/llama-8b"), ("GET", "/pods"), ("PATCH", "/scale"), ("DELETE", "/services/llama-8b"),
         ("DELETE", "/deployments/llama-8b"), ("GET", "/services")]


def error(fault: str, path: str) -> tuple[int, object, str]:
    """Throttling (429) or a 500 as the API server's `Status`."""
    if fault == "throttling":
        return 429, status_body(429, "TooManyRequests", "Too many requests, please try again later."), "application/json"
    return 500, status_body(500, "InternalError", "etcdserver: request timed out"), "application/json"


def scale_up_then_down(deployments: KubernetesDeployments, settle) -> None:
    """Every call a replica's life makes: namespace, Secret, Service, create, read, scale, pods, delete; release's lists."""
    settle(lambda: deployments.apply(up(1)))
    settle(lambda: deployments.apply(up(2)))
    settle(lambda: deployments.apply(down(0)))
    settle(deployments.release)


@pytest.mark.parametrize("fault,times", [("throttling", 2), ("5xx", 2), ("timeout", 1)])
@pytest.mark.parametrize("method,path", CALLS)
def test_every_call_is_retried_with_backoff(kube: Kube, backoff, faults, settle, fault, times, method, path) -> None:
    faults.inject(kube.fake, fault, method, path, times, error)
    scale_up_then_down(kube.deployments(settings=faults.settings(kube.settings, fault), backoff=backoff), settle)
    assert kube.replicas() is None and kube.fake.services == {} and kube.fake.count("DELETE") >= 2
    assert kube.secret_value() == KEY.get_secret_value()
    faults.assert_retried(fault, times)


@pytest.mark.parametrize("fault,times", [("throttling", 2), ("5xx", 2), ("timeout", 1)])
def test_releases_list_of_deployments_is_retried(kube: Kube, backoff, faults, settle, fault, times) -> None:
    deployments = kube.deployments(settings=faults.settings(kube.settings, fault), backoff=backoff)
    settle(lambda: deployments.apply(up(1)))
    faults.inject(kube.fake, fault, "GET", "/deployments", times, error)  # the next GET of them is release's list
    settle(deployments.release)
    assert kube.fake.deployments == {} and kube.fake.services == {}
    faults.assert_retried(fault, times)


def test_retries_give_up_after_the_last_attempt(kube: Kube, backoff, sleeps, faults) -> None:
    faults.inject(kube.fake, "5xx", "GET", "/pods", 4, error)
    with pytest.raises(ProviderUnavailable, match="status 500"):
        kube.deployments(backoff=backoff).observe()
    assert sleeps == [0.01, 0.02, 0.04]


@pytest.mark.parametrize("status,reason,message,raised", [
    (403, "Forbidden", 'deployments.apps "llama-8b" is forbidden: exceeded quota: gpus, requested: '
     "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=32, limited: requests.nvidia.com/gpu=32", QuotaExceeded),
    (403, "Forbidden", 'deployments.apps is forbidden: User "ci" cannot create resource "deployments"', CredentialsInvalid),
    (401, "Unauthorized", "Unauthorized", CredentialsInvalid),
])
def test_errors_are_typed_and_not_retried(kube: Kube, backoff, sleeps, status, reason, message, raised) -> None:
    kube.fake.fail_next(status, status_body(status, reason, message), method="POST", path="/deployments")
    with pytest.raises(raised) as caught:
        kube.deployments(backoff=backoff).apply(up(1))
    assert caught.value.__cause__ is not None
    assert sleeps == []


def test_pools_need_a_cluster_and_steps_a_known_pool(kube: Kube) -> None:
    with pytest.raises(InputError, match="name no cluster"):
        KubernetesDeployments([POOL.model_copy(update={"cluster": None})], kube.settings)
    with pytest.raises(InputError, match="not a Kubernetes pool here"):
        kube.deployments().apply(ScaleDown(model="llama-8b", pool="elsewhere", count=0))


def test_an_unknown_kube_context_says_how_to_add_it(kube: Kube) -> None:
    pool = POOL.model_copy(update={"cluster": "gke-prod"})
    with pytest.raises(ProviderError, match="add a context named gke-prod"):
        KubernetesDeployments([pool], kube.settings).observe()


def test_the_image_must_be_set_to_create_a_deployment(kube: Kube) -> None:
    settings = kube.settings.model_copy(update={"kubernetes_image": None})
    with pytest.raises(InputError, match="GPUFLEET_KUBERNETES_IMAGE"):
        kube.deployments(settings=settings).apply(up(1))


def test_nodes_counts_the_pools_labelled_nodes_only(kube: Kube) -> None:
    kube.fake.add_node("gpu-1", {"gpufleet.io/pool": POOL.name})
    kube.fake.add_node("gpu-2", {"gpufleet.io/pool": POOL.name})
    kube.fake.add_node("other", {"gpufleet.io/pool": "elsewhere"})
    observed = kube.deployments().nodes(POOL)
    assert (observed.pool, observed.nodes, observed.healthy_nodes) == (POOL.name, 2, 2)


V1 = REPLICA.model_copy(update={"version": "v1"})
V2 = REPLICA.model_copy(update={"version": "v2", "image": "registry.example/gpufleet/vllm@sha256:" + "cd" * 32,
                                "vllm_args": ("--enable-prefix-caching",), "max_model_len": 4096})
CANARY = (NAMESPACE, "llama-8b-canary")


def canary(count: int, replica: ReplicaSpec = V2) -> SetCanary:
    return SetCanary(model="llama-8b", pool=POOL.name, count=count, replica=replica)


def promote(replica: ReplicaSpec = V2) -> Promote:
    return Promote(model="llama-8b", pool=POOL.name, replica=replica)


def traffic(**weights: float) -> SetTraffic:
    return SetTraffic(model="llama-8b", pool=POOL.name, weights=weights)


def running(deployments: KubernetesDeployments) -> list[tuple[str | None, bool]]:
    """(version, canary) of each pod in service (ready, not stopping), sorted."""
    return sorted(((r.version, r.canary) for r in deployments.observe() if r.healthy), key=lambda t: (t[0] or "", t[1]))


def test_a_canary_runs_the_new_version_beside_the_stable_ones_under_the_models_service(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(2, "llama-8b").model_copy(update={"replica": V1})))
    with pytest.raises(StepPending, match="0 of 1 llama-8b canary replicas \\(v2\\) ready"):
        deployments.apply(canary(1))
    settle(lambda: deployments.apply(canary(1)))
    assert running(deployments) == [("v1", False)] * 2 + [("v2", True)]
    body = kube.fake.deployments[CANARY]
    container = body["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["image"] == V2.image and env["GPUFLEET_REPLICA_VERSION"] == "v2"
    assert env["GPUFLEET_REPLICA_VLLM_ARGS"] == "--enable-prefix-caching" and env["GPUFLEET_REPLICA_MAX_MODEL_LEN"] == "4096"
    assert env["VLLM_API_KEY"] is None and "VLLM_API_KEY" in env  # from the Secret, as the stable pods read it
    selector = kube.fake.services[(NAMESPACE, "llama-8b")]["spec"]["selector"]
    assert all(selector.items() <= pod.labels.items() for pods in kube.fake.pods.values() for pod in pods)
    assert kube.fake.count("POST", "/services") == 2 and len(kube.fake.services) == 1  # the model's, there already
    deployments.apply(canary(1))  # holds: nothing changes
    settle(lambda: deployments.apply(canary(2)))  # scaled
    assert kube.fake.count("POST", "/deployments") == 2 and kube.fake.count("PATCH", "/deployments/llama-8b-canary") == 1
    with pytest.raises(StepPending, match="2 llama-8b canary pods left"):
        deployments.apply(canary(0))
    settle(lambda: deployments.apply(canary(0)))
    assert CANARY not in kube.fake.deployments and running(deployments) == [("v1", False)] * 2
    assert (NAMESPACE, "llama-8b") in kube.fake.services and kube.replicas() == 2  # the stable ones untouched
    deployments.apply(canary(0))  # gone already


def test_a_canary_of_another_version_is_rolled_to_it(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(1)))
    settle(lambda: deployments.apply(canary(2)))
    v3 = V2.model_copy(update={"version": "v3", "vllm_args": ()})
    settle(lambda: deployments.apply(canary(2, v3)))
    assert running(deployments) == [(None, False), ("v3", True), ("v3", True)]
    env = {e["name"] for e in kube.fake.deployments[CANARY]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "GPUFLEET_REPLICA_VLLM_ARGS" not in env  # the template replaced whole, not merged
    assert kube.fake.fewest_ready[CANARY] >= 2


def test_scale_up_and_down_touch_the_stable_deployment_only(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(2)))
    settle(lambda: deployments.apply(canary(1)))
    settle(lambda: deployments.apply(up(3)))
    settle(lambda: deployments.apply(down(1)))  # the canary's pod is not one of the stable ones left
    assert (kube.replicas(), kube.fake.deployments[CANARY]["spec"]["replicas"]) == (1, 1)
    settle(lambda: deployments.apply(down(0)))  # the model's Service stays while the canary runs
    assert running(deployments) == [("v2", True)] and (NAMESPACE, "llama-8b") in kube.fake.services
    settle(lambda: deployments.apply(canary(0)))  # the last of the model: its Service goes with it
    assert kube.fake.services == {} and kube.fake.deployments == {}


def test_promote_rolls_the_stable_replicas_make_before_break_then_removes_the_canary(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(3).model_copy(update={"replica": V1})))
    settle(lambda: deployments.apply(canary(1)))
    seen: list[int] = []

    def step() -> None:
        seen.append(sum(r.healthy for r in deployments.observe()))
        deployments.apply(promote())

    settle(step)
    assert running(deployments) == [("v2", False)] * 3 and kube.fake.deployments.keys() == {(NAMESPACE, "llama-8b")}
    assert kube.fake.fewest_ready[(NAMESPACE, "llama-8b")] >= 3 and min(seen) >= 3  # never below the stable count
    strategy = kube.fake.deployments[(NAMESPACE, "llama-8b")]["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}  # the canary's one pod as surge
    template = kube.fake.deployments[(NAMESPACE, "llama-8b")]["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == V2.image and "gpufleet.io/track" not in template["metadata"]["labels"]
    deployments.apply(promote())  # holds: nothing to patch
    assert kube.fake.count("PATCH", "/deployments/llama-8b") == 1 and kube.replicas() == 3


def test_promote_makes_a_breaking_strategy_make_before_break(kube: Kube, backoff, settle) -> None:
    from kubernetes import client

    from orchestrator.providers.kubernetes.api import api_client

    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(3)))
    apps = client.AppsV1Api(api_client(kube.settings, POOL.cluster))
    breaking = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}  # edited by hand
    apps.patch_namespaced_deployment("llama-8b", NAMESPACE, {"spec": {"strategy": breaking}})
    apps.patch_namespaced_deployment("llama-8b", NAMESPACE, {"spec": {"template": {"metadata": {"labels": {"edit": "1"}}}}})
    settle(lambda: deployments.apply(ScaleUp(model="llama-8b", pool=POOL.name, count=3, replica=REPLICA)))
    assert kube.fake.fewest_ready[(NAMESPACE, "llama-8b")] == 2  # the fake breaks as such a strategy does
    kube.fake.fewest_ready.clear()
    settle(lambda: deployments.apply(promote()))
    assert kube.fake.fewest_ready[(NAMESPACE, "llama-8b")] >= 3
    assert running(deployments) == [("v2", False)] * 3


def test_promote_without_stable_replicas_takes_over_the_canarys_count(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    deployments.apply(promote())  # nothing runs here: nothing to promote
    settle(lambda: deployments.apply(canary(2)))
    settle(lambda: deployments.apply(promote()))
    assert running(deployments) == [("v2", False)] * 2 and CANARY not in kube.fake.deployments
    assert kube.fake.fewest_ready.get(CANARY, 2) >= 2


def test_set_traffic_holds_when_the_pods_carry_the_weights_and_says_why_not(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(3).model_copy(update={"replica": V1})))
    settle(lambda: deployments.apply(canary(1)))
    deployments.apply(traffic(v1=75, v2=25))
    deployments.apply(traffic(v1=95, v2=5))  # within one pod
    with pytest.raises(ProviderError, match="v2 has 1 of 4 ready pods for 90% .*weights follow pod counts") as caught:
        deployments.apply(traffic(v1=10, v2=90))
    assert not isinstance(caught.value, StepPending)
    with pytest.raises(InputError, match="at least one positive"):
        deployments.apply(traffic(v1=0))
    settle(lambda: deployments.apply(promote()))
    deployments.apply(traffic(v2=100))
    with pytest.raises(ProviderError, match="v1 has 0 of 3 ready pods for 50%"):
        deployments.apply(traffic(v1=50, v2=50))
    assert kube.fake.count("PATCH") == 1  # SetTraffic changes nothing


def test_release_deletes_the_canary_too(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(1)))
    settle(lambda: deployments.apply(canary(1)))
    settle(deployments.release)
    assert kube.fake.deployments == {} and kube.fake.services == {} and deployments.observe() == []
