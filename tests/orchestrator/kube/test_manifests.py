"""Manifests for one pool of the hybrid example's placement, validated against the Kubernetes API schema
(kubernetes-validate: the official OpenAPI-derived JSON schemas, strict: unknown fields are errors)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from orchestrator.catalog.nodes import pool_replica_requests
from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.inputs import load_inputs
from orchestrator.kube import PROMETHEUS_ADAPTER_RULE, pool_manifests
from orchestrator.planner import plan_fleet
from orchestrator.providers.kubernetes.models import api_key_env, service
from orchestrator.settings import Settings
from tests.conftest import ENVIRONMENTS

KUBERNETES_VERSION = "1.33.0"  # oldest with the native preStop sleep action GA


@pytest.fixture(scope="module")
def hybrid():
    spec, inputs = load_inputs(ENVIRONMENTS / "hybrid.yaml", load_price_catalog())
    return spec, plan_fleet(spec, inputs)


@pytest.fixture
def manifests(hybrid, monkeypatch):
    monkeypatch.setenv("GPUFLEET_KUBERNETES_IMAGE", "registry.example.com/gpufleet/vllm@sha256:" + "0" * 64)
    spec, placement = hybrid
    pool = next(r.pool for r in placement.replicas if r.count > 0)
    return spec, placement, pool, pool_manifests(spec, placement, pool, Settings())


def by_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def test_every_manifest_validates_against_the_kubernetes_schema(manifests):
    *_, rendered = manifests
    assert {m["kind"] for m in rendered} == {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    for manifest in rendered:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_catches_a_broken_manifest(manifests):
    *_, rendered = manifests
    broken = by_kind(rendered, "Deployment")[0] | {"spec": {"replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_deployment_runs_the_planned_replicas_on_the_pools_gpus_and_drains(manifests):
    spec, placement, pool_name, rendered = manifests
    deployment = by_kind(rendered, "Deployment")[0]
    model = deployment["metadata"]["labels"]["gpufleet.io/model"]
    planned = next(r.count for r in placement.replicas if (r.model, r.pool) == (model, pool_name))
    gpus = next(c.gpus_per_replica for c in placement.capacity if (c.model, c.pool) == (model, pool_name))
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == planned
    assert container["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
    # its GPUs' share of the node's allocatable (catalog/nodes.py); memory limited to it, CPU not
    pool = next(p for p in spec.pools if p.name == pool_name)
    assert container["resources"]["requests"] == (
        {"nvidia.com/gpu": str(gpus)} | pool_replica_requests(pool, gpus, catalog=load_price_catalog()).quantities())
    assert container["resources"]["limits"] == {"nvidia.com/gpu": str(gpus),
                                                "memory": container["resources"]["requests"]["memory"]}
    assert pod["nodeSelector"] == {"gpufleet.io/pool": pool_name}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    startup = container["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 600  # weights download and load
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    env = {e["name"]: e for e in container["env"]}
    assert env["VLLM_API_KEY"] == api_key_env()  # the provider's own: Secret gpufleet-gateway, key api-key
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "gpufleet-gateway", "key": "api-key"}
    assert env["GPUFLEET_REPLICA_MODEL_SOURCE"]["value"] == next(m.source for m in spec.models if m.name == model)
    drain = int(env["GPUFLEET_REPLICA_DRAIN_TIMEOUT_S"]["value"])
    assert pod["terminationGracePeriodSeconds"] > drain + container["lifecycle"]["preStop"]["sleep"]["seconds"]


def test_service_budget_and_autoscaler_follow_the_deployment(manifests):
    *_, rendered = manifests
    deployment = by_kind(rendered, "Deployment")[0]
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert by_kind(rendered, "Service")[0]["spec"]["selector"] == labels
    assert by_kind(rendered, "Service")[0] == service(deployment, Settings())  # the one the provider creates
    assert by_kind(rendered, "PodDisruptionBudget")[0]["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": labels}}
    hpa = by_kind(rendered, "HorizontalPodAutoscaler")[0]["spec"]
    planned = deployment["spec"]["replicas"]
    assert hpa["minReplicas"] == planned and planned <= hpa["maxReplicas"] <= 2 * planned
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == PROMETHEUS_ADAPTER_RULE["name"]["as"]
    assert hpa["behavior"]["scaleUp"]["stabilizationWindowSeconds"] <= 120  # reacts within minutes


def test_an_unknown_pool_is_bad_input(hybrid):
    from orchestrator.errors import InputError

    spec, placement = hybrid
    with pytest.raises(InputError, match="no pool 'nope'"):
        pool_manifests(spec, placement, "nope", Settings())
