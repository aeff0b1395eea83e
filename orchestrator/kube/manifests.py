"""Kubernetes manifests rendered from a placement, per pool and per cluster, as plain dicts (pure; no cluster needed).

A pool's manifests, in apply order: its Namespace (Pod Security `restricted`), then the objects
the Kubernetes provider creates for each model the placement runs there (`providers/kubernetes/
models.replica_objects`, the same function: the replicas' ServiceAccount with the pool's identity,
the shared cache claim when the spec asks for one, the model's Service and Deployment, whose pods
carry the model's `version`, the release its own fields describe), and per model:

- a PodDisruptionBudget allowing one voluntary disruption at a time;
- a HorizontalPodAutoscaler (autoscaling/v2) bounded from the planned count up to twice it
  (at most what the pool's nodes hold), scaling on vLLM's waiting requests per pod, read
  through the Prometheus adapter with `PROMETHEUS_ADAPTER_RULE`. It adds a pod within a
  minute of a queue building and removes one only after five quiet minutes.

One owner per count: the HPA owns the Deployment's `replicas`, and the plan owns the HPA's
floor (`minReplicas`). So the rendered Deployment states no `replicas`: Argo CD or Flux
would otherwise reset the HPA's count at every sync. (rebalance, when it finds such an HPA
on the cluster, writes the floor on it too: providers/kubernetes/provider.py.)

The gateway's API key is read from the Secret `gpufleet-gateway` (key `api-key`) and a pool's
`identity.secret` from the Secret it names: neither is rendered (keys stay out of Git); create
them in the namespace (rebalance creates the first itself).

A rollout (`orchestrator rollout`) changes the Deployment's pod template on the cluster (and adds,
then removes, a `-canary` Deployment): with GitOps, write the promoted version's fields into the
spec and render again, or the next sync puts the old template back (docs/rollouts-kubernetes.md).

Before anything is rendered, each pool's cache must hold what it caches: one model's checkpoint
per pod in an emptyDir, every placed model's in a shared claim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.errors import InputError
from orchestrator.planner import Placement
from orchestrator.profiles.architectures import resolve_architecture
from orchestrator.profiles.perf_model import weight_bytes_per_param
from orchestrator.providers.base import ReplicaSpec
from orchestrator.providers.kubernetes.models import namespace_object, object_meta, replica_objects
from orchestrator.providers.kubernetes.versions import schema_version
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec, Model, Pool

WAITING_PER_POD = 2  # scale out when more requests than this wait per replica
WAITING_METRIC = "vllm_num_requests_waiting"
PROMETHEUS_ADAPTER_RULE = {
    "seriesQuery": 'vllm:num_requests_waiting{namespace!="",pod!=""}',
    "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
    "name": {"matches": "^vllm:num_requests_waiting$", "as": WAITING_METRIC},
    "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
}
COMPILE_CACHE_GB = 10  # vLLM's compiled graphs beside the weights, per model


@dataclass(frozen=True)
class PoolManifests:
    """One pool's manifests, with the cluster they go to and the Kubernetes version they are for."""

    pool: str
    cluster: str
    kubernetes_version: str
    manifests: list[dict]


def environment_manifests(spec: FleetSpec, placement: Placement, settings: Settings) -> list[PoolManifests]:
    """The manifests of every Kubernetes pool the placement runs replicas in, pool by pool in spec order."""
    placed = {r.pool for r in placement.replicas if r.count > 0}
    result = []
    for index, pool in enumerate(spec.pools):
        if pool.name not in placed or pool.provider == "local":
            continue
        if not pool.cluster:
            raise InputError(f"pools[{index}] ({pool.name}) runs replicas in the plan but names no cluster. "
                             "To fix: set its cluster (the kube context of its Kubernetes cluster)")
        result.append(PoolManifests(pool.name, pool.cluster, schema_version(pool),
                                    pool_manifests(spec, placement, pool.name, settings)))
    return result


def pool_manifests(spec: FleetSpec, placement: Placement, pool_name: str, settings: Settings) -> list[dict]:
    """Every manifest for `pool_name`'s share of `placement`, in apply order."""
    pool = next((p for p in spec.pools if p.name == pool_name), None)
    if pool is None:
        raise InputError(f"no pool '{pool_name}' in the spec. To fix: use one of {', '.join(p.name for p in spec.pools)}")
    models = {m.name: m for m in spec.models}
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in placement.capacity}
    rows = sorted((r for r in placement.replicas if r.pool == pool_name and r.count > 0), key=lambda r: r.model)
    check_cache(pool, [models[r.model] for r in rows])
    manifests: list[dict] = [namespace_object(pool)] if rows else []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        model = models[row.model]
        tp = gpus.get((row.model, pool_name), model.gpus_per_replica or 1)
        replica = ReplicaSpec(source=model.source, served_name=model.name, tensor_parallel_size=tp,
                              max_model_len=model.max_model_len, version=model.version)
        objects = replica_objects(pool, model.name, replica, row.count, settings, api_key=True)
        base = objects[-1]
        del base["spec"]["replicas"]  # the HPA's to set, from the planned floor up
        capacity = (pool.max_nodes * (pool.gpus_per_node or tp)) // tp
        for body in objects:  # the pool's ServiceAccount and claim once
            key = (body["kind"], body["metadata"]["name"])
            if key not in seen:
                seen.add(key)
                manifests.append(body)
        manifests += [_disruption_budget(base), _autoscaler(base, row.count, max(row.count, min(2 * row.count, capacity)))]
    return manifests


def weights_gb(model: Model) -> float:
    """A model's checkpoint size, GB: its parameters at its dtype."""
    return resolve_architecture(model.architecture).params_b * weight_bytes_per_param(model.dtype)


def check_cache(pool: Pool, models: list[Model]) -> None:
    """InputError unless the pool's cache holds what it must: each model alone (a pod's emptyDir), or all of
    them (the pool's shared claim), each with its compile cache."""
    if not models:
        return
    need = {m.name: math.ceil(weights_gb(m)) + COMPILE_CACHE_GB for m in models}
    shared = pool.model_cache.storage_class is not None
    want = sum(need.values()) if shared else max(need.values())
    if want > pool.model_cache.size_gb:
        what = (f"the {len(need)} models it runs ({', '.join(need)}) need" if shared
                else f"{max(need, key=lambda name: need[name])} needs")
        raise InputError(f"pool {pool.name}'s model_cache.size_gb is {pool.model_cache.size_gb}, and {what} "
                         f"{want} GB (checkpoint and compile cache). To fix: set model_cache.size_gb to {want} or more")


def _disruption_budget(deployment_: dict) -> dict:
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": object_meta(deployment_),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": deployment_["spec"]["selector"]["matchLabels"]}},
    }


def _autoscaler(deployment_: dict, planned: int, most: int) -> dict:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": object_meta(deployment_),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_["metadata"]["name"]},
            "minReplicas": planned, "maxReplicas": most,
            "metrics": [{"type": "Pods", "pods": {"metric": {"name": WAITING_METRIC},
                                                  "target": {"type": "AverageValue", "averageValue": str(WAITING_PER_POD)}}}],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                              "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
            },
        },
    }
