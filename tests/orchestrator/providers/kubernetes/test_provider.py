"""Deployments through the official kubernetes client against a local API fake, reached by a kubeconfig context."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.base import ReplicaSpec, ScaleDown, ScaleUp, StepPending
from orchestrator.providers.errors import CredentialsInvalid, ProviderUnavailable, QuotaExceeded
from orchestrator.providers.kubernetes import KubernetesDeployments
from orchestrator.settings import Settings
from orchestrator.spec import Pool
from tests.fakes.kubernetes_fake import FakeKubernetesApi, status_body

NAMESPACE = "gpufleet-aws-h100"
REPLICA = ReplicaSpec(source="hf:meta-llama/Llama-3.1-8B-Instruct", served_name="llama-8b")


@dataclass
class Kube:
    fake: FakeKubernetesApi
    settings: Settings

    def deployments(self, pools: list[Pool] | None = None, settings: Settings | None = None, backoff=None):
        return KubernetesDeployments(pools or [POOL], settings or self.settings, backoff)

    def replicas(self, model: str = "llama-8b") -> int | None:
        deployment = self.fake.deployments.get((NAMESPACE, model))
        return deployment["spec"]["replicas"] if deployment else None


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
    settings = Settings(kubeconfig=kubeconfig, kubernetes_image="registry.example/gpufleet/vllm@sha256:0123",
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


def test_scale_down_to_zero_deletes_the_deployment(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(2)))
    settle(lambda: deployments.apply(down(0)))
    assert kube.replicas() is None and deployments.observe() == []
    deployments.apply(down(0))  # gone already
    assert kube.fake.count("DELETE") == 1


def test_release_deletes_every_gpufleet_deployment(kube: Kube, backoff, settle) -> None:
    deployments = kube.deployments(backoff=backoff)
    settle(lambda: deployments.apply(up(1, "llama-8b")))
    settle(lambda: deployments.apply(up(1, "qwen-7b")))
    settle(deployments.release)
    assert kube.fake.deployments == {} and deployments.observe() == []


CALLS = [("POST", "/api/v1/namespaces"), ("POST", "/deployments"), ("GET", "/deployments/llama-8b"),
         ("GET", "/pods"), ("PATCH", "/scale"), ("DELETE", "/deployments/llama-8b")]


def error(fault: str, path: str) -> tuple[int, object, str]:
    """Throttling (429) or a 500 as the API server's `Status`."""
    if fault == "throttling":
        return 429, status_body(429, "TooManyRequests", "Too many requests, please try again later."), "application/json"
    return 500, status_body(500, "InternalError", "etcdserver: request timed out"), "application/json"


def scale_up_then_down(deployments: KubernetesDeployments, settle) -> None:
    """Every call a replica's life makes: namespace, create, read, scale, pods, delete."""
    settle(lambda: deployments.apply(up(1)))
    settle(lambda: deployments.apply(up(2)))
    settle(lambda: deployments.apply(down(0)))


@pytest.mark.parametrize("fault,times", [("throttling", 2), ("5xx", 2), ("timeout", 1)])
@pytest.mark.parametrize("method,path", CALLS)
def test_every_call_is_retried_with_backoff(kube: Kube, backoff, faults, settle, fault, times, method, path) -> None:
    faults.inject(kube.fake, fault, method, path, times, error)
    scale_up_then_down(kube.deployments(settings=faults.settings(kube.settings, fault), backoff=backoff), settle)
    assert kube.replicas() is None and kube.fake.count("DELETE") >= 1
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
