"""Kubernetes manifests rendered from a placement for one pool, as plain dicts (pure; no cluster needed).

Per model the placement runs in the pool:

- the Deployment the Kubernetes provider applies (`providers/kubernetes/models.deployment`:
  replica image, GPUs and their share of the node's allocatable CPU and memory
  (`catalog/nodes.replica_requests`, memory limited to its request, CPU unlimited), the pool's
  node selector and tolerations, readiness and a startup probe on vLLM's `/health` long enough
  for weights to load), with the gateway API key from the Secret `gpufleet-gateway` (key
  `api-key`: create it in the namespace; rebalance creates it itself);
- a ClusterIP Service over its pods (what a site's vllm-router discovers; `models.service`, the
  one the provider creates);
- a PodDisruptionBudget allowing one voluntary disruption at a time;
- a HorizontalPodAutoscaler (autoscaling/v2) bounded from the planned count up to twice it
  (at most what the pool's nodes hold), scaling on vLLM's waiting requests per pod, read
  through the Prometheus adapter with `PROMETHEUS_ADAPTER_RULE`. It adds a pod within a
  minute of a queue building and removes one only after five quiet minutes.
"""

from __future__ import annotations

from orchestrator.errors import InputError
from orchestrator.planner import Placement
from orchestrator.providers.base import ReplicaSpec
from orchestrator.providers.kubernetes.models import deployment, object_meta, service
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec

WAITING_PER_POD = 2  # scale out when more requests than this wait per replica
WAITING_METRIC = "vllm_num_requests_waiting"
PROMETHEUS_ADAPTER_RULE = {
    "seriesQuery": 'vllm:num_requests_waiting{namespace!="",pod!=""}',
    "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
    "name": {"matches": "^vllm:num_requests_waiting$", "as": WAITING_METRIC},
    "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
}


def pool_manifests(spec: FleetSpec, placement: Placement, pool_name: str, settings: Settings) -> list[dict]:
    """Every manifest for `pool_name`'s share of `placement`, in apply order."""
    pool = next((p for p in spec.pools if p.name == pool_name), None)
    if pool is None:
        raise InputError(f"no pool '{pool_name}' in the spec. To fix: use one of {', '.join(p.name for p in spec.pools)}")
    models = {m.name: m for m in spec.models}
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in placement.capacity}
    manifests: list[dict] = []
    for row in sorted((r for r in placement.replicas if r.pool == pool_name and r.count > 0), key=lambda r: r.model):
        model = models[row.model]
        tp = gpus.get((row.model, pool_name), model.gpus_per_replica or 1)
        replica = ReplicaSpec(source=model.source, served_name=model.name, tensor_parallel_size=tp,
                              max_model_len=model.max_model_len)
        base = deployment(pool, model.name, replica, row.count, settings, api_key=True)
        capacity = (pool.max_nodes * (pool.gpus_per_node or tp)) // tp
        manifests += [base, service(base, settings), _disruption_budget(base),
                      _autoscaler(base, row.count, max(row.count, min(2 * row.count, capacity)))]
    return manifests


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

