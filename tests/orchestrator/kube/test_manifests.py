"""The hybrid example's manifests, every pool the plan uses: what each Deployment must have, and each object
validated against the Kubernetes API schema of its pool's version and of every supported one (kubernetes-validate:
the official OpenAPI-derived JSON schemas, strict: unknown fields are errors)."""

from __future__ import annotations

from collections import Counter

import kubernetes_validate
import pytest

from orchestrator.catalog.nodes import allocatable, gpus_per_node, node_hardware, pods_fit, pool_replica_requests
from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.errors import InputError
from orchestrator.inputs import load_inputs
from orchestrator.kube import PROMETHEUS_ADAPTER_RULE, environment_manifests, pool_manifests
from orchestrator.kube.manifests import check_cache, weights_gb
from orchestrator.kube.schema import schema_problems
from orchestrator.planner import plan_fleet
from orchestrator.providers.kubernetes.models import api_key_env, service
from orchestrator.providers.kubernetes.versions import SUPPORTED
from orchestrator.settings import Settings
from orchestrator.spec.models import ModelCache
from tests.conftest import ENVIRONMENTS

IMAGE = "registry.example.com/gpufleet/vllm@sha256:" + "0" * 64


@pytest.fixture(scope="module")
def hybrid():
    spec, inputs = load_inputs(ENVIRONMENTS / "hybrid.yaml", load_price_catalog())
    return spec, plan_fleet(spec, inputs)


@pytest.fixture
def settings(monkeypatch) -> Settings:
    monkeypatch.setenv("GPUFLEET_KUBERNETES_IMAGE", IMAGE)
    return Settings()


@pytest.fixture
def rendered(hybrid, settings):
    spec, placement = hybrid
    return environment_manifests(spec, placement, settings)


def by_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def hpa_of(manifests: list[dict], deployment: dict) -> dict:
    """The spec of the HorizontalPodAutoscaler that scales `deployment`."""
    (hpa,) = [m["spec"] for m in by_kind(manifests, "HorizontalPodAutoscaler")
              if m["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]]
    return hpa


def test_every_pool_the_plan_uses_is_rendered_for_its_cluster(hybrid, rendered):
    spec, placement = hybrid
    used = {r.pool for r in placement.replicas if r.count > 0}
    assert [p.pool for p in rendered] == [p.name for p in spec.pools if p.name in used]
    pools = {p.name: p for p in spec.pools}
    assert all(p.cluster == pools[p.pool].cluster for p in rendered)
    assert len({p.cluster for p in rendered}) >= 3  # on-prem and at least two clouds: a hybrid plan
    for pool in rendered:
        assert pool.manifests[0]["kind"] == "Namespace"
        assert {m["kind"] for m in pool.manifests} >= {"Namespace", "ServiceAccount", "Service", "Deployment",
                                                       "PodDisruptionBudget", "HorizontalPodAutoscaler"}


def test_every_manifest_validates_against_its_pools_kubernetes_version(rendered):
    assert {p.kubernetes_version for p in rendered} >= {"1.29", "1.33"}  # the example's on-prem and EKS clusters
    for pool in rendered:
        assert schema_problems(pool.manifests, pool.kubernetes_version) == [], pool.pool


@pytest.mark.parametrize("version", SUPPORTED)
def test_every_manifest_validates_against_each_supported_version(hybrid, settings, version):
    spec, placement = hybrid
    at_version = spec.model_copy(update={"pools": [p.model_copy(update={"kubernetes_version": version}) for p in spec.pools]})
    for pool in environment_manifests(at_version, placement, settings):
        assert schema_problems(pool.manifests, version) == [], pool.pool


def test_the_schema_check_catches_a_broken_manifest(rendered):
    deployment = by_kind(rendered[0].manifests, "Deployment")[0]
    problems = schema_problems([deployment | {"spec": {"replicas": "two"}}], "1.33")
    assert len(problems) == 3  # every problem, not only the first
    assert any("spec.replicas: 'two' is not of type 'integer'" in p for p in problems)
    assert any("spec: 'selector' is a required property" in p for p in problems)


def test_every_deployment_has_identity_cache_probes_security_a_digest_and_requests_that_fit(hybrid, rendered):
    spec, placement = hybrid
    catalog = load_price_catalog()
    pools = {p.name: p for p in spec.pools}
    nodes = {p.pool: p.nodes for p in placement.pools}
    for rendered_pool in rendered:
        pool = pools[rendered_pool.pool]
        accounts = by_kind(rendered_pool.manifests, "ServiceAccount")
        assert [a["metadata"]["name"] for a in accounts] == ["gpufleet-replica"]
        sizes: Counter[int] = Counter()
        for deployment in by_kind(rendered_pool.manifests, "Deployment"):
            pod = deployment["spec"]["template"]["spec"]
            container = pod["containers"][0]
            assert pod["serviceAccountName"] == "gpufleet-replica"
            assert any(v["name"] == "model-cache" for v in pod["volumes"])
            assert all(f"{kind}Probe" in container for kind in ("startup", "readiness", "liveness"))
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert container["image"] == IMAGE
            gpus = int(container["resources"]["requests"]["nvidia.com/gpu"])
            share = pool_replica_requests(pool, gpus, catalog=catalog)
            assert container["resources"]["requests"] == {"nvidia.com/gpu": str(gpus)} | share.quantities()
            sizes[gpus] += hpa_of(rendered_pool.manifests, deployment)["minReplicas"]
        # the scheduler's view: the planned pods fit the planned nodes by GPUs, CPU and memory
        free = allocatable(pool.provider, node_hardware(pool, catalog))
        assert pods_fit(free, gpus_per_node(pool, catalog), nodes[pool.name], dict(sizes)), pool.name


def test_the_deployment_runs_the_planned_replicas_with_the_gateway_key_and_drains(hybrid, rendered):
    spec, placement = hybrid
    pool_name = rendered[0].pool
    deployment = by_kind(rendered[0].manifests, "Deployment")[0]
    model = deployment["metadata"]["labels"]["gpufleet.io/model"]
    planned = next(r.count for r in placement.replicas if (r.model, r.pool) == (model, pool_name))
    assert "replicas" not in deployment["spec"]  # the HPA's to set: a GitOps sync must not reset it
    assert hpa_of(rendered[0].manifests, deployment)["minReplicas"] == planned  # the plan's floor
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["nodeSelector"] == {"gpufleet.io/pool": pool_name}
    env = {e["name"]: e for e in container["env"]}
    assert env["VLLM_API_KEY"] == api_key_env()  # the provider's own: Secret gpufleet-gateway, key api-key
    assert env["GPUFLEET_REPLICA_MODEL_SOURCE"]["value"] == next(m.source for m in spec.models if m.name == model)
    drain = int(env["GPUFLEET_REPLICA_DRAIN_TIMEOUT_S"]["value"])
    assert pod["terminationGracePeriodSeconds"] > drain + 5
    assert rendered[0].kubernetes_version == "1.29"  # the example's on-prem site: an exec pause
    assert container["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "5"]}}


def test_pods_carry_the_models_version_and_selectors_never_do(hybrid, rendered):
    spec, _ = hybrid
    versions = {m.name: m.version for m in spec.models}
    for rendered_pool in rendered:
        for deployment in by_kind(rendered_pool.manifests, "Deployment"):
            model = deployment["metadata"]["labels"]["gpufleet.io/model"]
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert deployment["spec"]["template"]["metadata"]["labels"]["gpufleet.io/version"] == versions[model]
            assert env["GPUFLEET_REPLICA_VERSION"] == versions[model]
            # a promotion changes the version under the selectors: Deployment, Service and budget select the model
            selectors = [deployment["spec"]["selector"]["matchLabels"]] + [
                m["spec"]["selector"] if m["kind"] == "Service" else m["spec"]["selector"]["matchLabels"]
                for m in rendered_pool.manifests if m["kind"] in ("Service", "PodDisruptionBudget")]
            assert all("gpufleet.io/version" not in s for s in selectors)


def test_the_onprem_site_shares_one_claim_and_no_secret_is_rendered(rendered):
    onprem = next(p for p in rendered if p.pool == "fra-dc1-a100")
    claims = by_kind(onprem.manifests, "PersistentVolumeClaim")
    assert [c["spec"]["storageClassName"] for c in claims] == ["nfs-models"]
    assert all(m["kind"] != "Secret" for p in rendered for m in p.manifests)  # keys stay out of Git


def test_service_budget_and_autoscaler_follow_the_deployment(hybrid, rendered, settings):
    manifests = rendered[0].manifests
    deployment = by_kind(manifests, "Deployment")[0]
    labels = deployment["spec"]["selector"]["matchLabels"]
    pool = next(p for p in hybrid[0].pools if p.name == rendered[0].pool)
    assert by_kind(manifests, "Service")[0] == service(pool, labels["gpufleet.io/model"], settings)  # the one the provider creates
    assert by_kind(manifests, "PodDisruptionBudget")[0]["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": labels}}
    hpa = hpa_of(manifests, deployment)
    planned = hpa["minReplicas"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert planned >= 1 and planned <= hpa["maxReplicas"] <= 2 * planned
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == PROMETHEUS_ADAPTER_RULE["name"]["as"]
    assert hpa["behavior"]["scaleUp"]["stabilizationWindowSeconds"] <= 120  # reacts within minutes


def test_a_cache_too_small_for_what_it_holds_is_bad_input(hybrid):
    spec, _ = hybrid
    models = {m.name: m for m in spec.models}
    seventy = models["llama-3.3-70b"]
    assert 140 < weights_gb(seventy) < 142  # 70.6 B parameters in bf16
    pool = spec.pools[0]
    check_cache(pool.model_copy(update={"model_cache": ModelCache(size_gb=160)}), [seventy])
    with pytest.raises(InputError, match="model_cache.size_gb is 100, and llama-3.3-70b needs 152 GB"):
        check_cache(pool.model_copy(update={"model_cache": ModelCache(size_gb=100)}), [seventy])
    shared = pool.model_copy(update={"model_cache": ModelCache(size_gb=160, storage_class="nfs")})
    with pytest.raises(InputError, match=r"the 2 models it runs .* need 179 GB"):  # a shared cache holds both: 152 + 27
        check_cache(shared, [seventy, models["llama-3.1-8b"]])


def test_an_unknown_pool_is_bad_input(hybrid, settings):
    spec, placement = hybrid
    with pytest.raises(InputError, match="no pool 'nope'"):
        pool_manifests(spec, placement, "nope", settings)


def test_the_cached_check_agrees_with_kubernetes_validates_own(rendered):
    for pool in rendered[:2]:  # a second route: the library's own validate, which reloads its schemas per call
        for manifest in pool.manifests:
            kubernetes_validate.validate(manifest, pool.kubernetes_version, strict=True)
    broken = by_kind(rendered[1].manifests, "Deployment")[0] | {"spec": {"replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33", strict=True)
    assert schema_problems([broken], "1.33")
    for version in SUPPORTED:  # a schema missing would make every check above vacuous
        assert schema_problems([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}], version) == []
    assert schema_problems([{"apiVersion": "v9", "kind": "Namespace", "metadata": {"name": "n"}}], "1.33") == [
        "Namespace n: Kubernetes 1.33 has no v9 Namespace"]
