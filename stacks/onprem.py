"""On-prem: an owned GPU pool declared on the site's Kubernetes cluster, like a cloud pool.

The hardware is already there, so what is declared is what makes it a gpufleet pool:
a namespace for the pool's replicas; a ResourceQuota capping the GPUs they may request
at the pool's size (`max_nodes` x `gpus_per_node`), which is the site's equivalent of a
node group's max size; two priority classes, `serving` for replicas that carry traffic
and `standby` (never preempts) for replicas warming up during a rebalance; and the
NVIDIA device plugin, scheduled onto the pool's nodes only, so their GPUs become
schedulable `nvidia.com/gpu`. The site's nodes must carry the pool's labels
(`gpufleet.io/pool=<name>`) and taints; docs/stacks.md has the commands.

Priority classes are cluster-wide objects, so their names carry the pool's name: two
pools on one cluster never fight over one object.
"""

from __future__ import annotations

import json

from constructs import Construct

from stacks import bindings
from stacks.pools import LABEL_PREFIX, PoolDeclaration, bounded_name, gpu_resource

DEVICE_PLUGIN = {
    "repository": "https://nvidia.github.io/k8s-device-plugin",
    "chart": "nvidia-device-plugin",
    "version": "0.17.1",
}
PRIORITIES = {  # name suffix -> (value, preemption policy, what for)
    "serving": (100_000, "PreemptLowerPriority", "gpufleet replicas carrying traffic"),
    "standby": (10_000, "Never", "gpufleet replicas warming up during a rebalance; never preempts"),
}


def namespace(pool: PoolDeclaration) -> str:
    return bounded_name(f"gpufleet-{pool.name}", 63)


def priority_class(pool: PoolDeclaration, kind: str) -> str:
    return bounded_name(f"gpufleet-{pool.name}-{kind}", 253)


def quota_hard(pool: PoolDeclaration) -> dict[str, str]:
    """The most GPUs the pool's pods may request: all GPUs of all its nodes."""
    return {f"requests.{gpu_resource(pool.gpu)}": str(pool.pool.max_nodes * pool.gpus_per_node)}


def device_plugin_values(pool: PoolDeclaration) -> str:
    """Helm values (JSON is YAML): run on the pool's nodes, tolerating their taints."""
    return json.dumps({
        "nodeSelector": {f"{LABEL_PREFIX}/pool": pool.name},
        "tolerations": [{"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect} for t in pool.taints],
        "priorityClassName": "system-node-critical",
    }, sort_keys=True)


def providers(scope: Construct, pools: list[PoolDeclaration]) -> dict[str, tuple[object, object]]:
    """Each pool's providers: a Kubernetes and a Helm provider per site cluster (kube context), aliased by it."""
    bindings.load_provider("onprem")
    from cdktn_provider_helm.provider import HelmProvider
    from cdktn_provider_kubernetes.provider import KubernetesProvider

    by_cluster = {
        cluster: (
            KubernetesProvider(scope, f"kubernetes-{cluster}", config_context=cluster, alias=cluster),
            HelmProvider(scope, f"helm-{cluster}", kubernetes={"config_context": cluster}, alias=cluster),
        )
        for cluster in sorted({p.cluster for p in pools})
    }
    return {p.name: by_cluster[p.cluster] for p in pools}


class OnpremGpuPool(Construct):
    """One owned GPU pool: namespace, GPU quota, priority classes and device plugin on its cluster."""

    def __init__(self, scope: Construct, id: str, pool: PoolDeclaration, provider: tuple[object, object]):
        super().__init__(scope, id)
        bindings.load_provider("onprem")
        from cdktn_provider_helm.release import Release
        from cdktn_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
        from cdktn_provider_kubernetes.priority_class_v1 import PriorityClassV1
        from cdktn_provider_kubernetes.resource_quota_v1 import ResourceQuotaV1

        kubernetes, helm = provider
        labels = {f"{LABEL_PREFIX}/environment": pool.environment, f"{LABEL_PREFIX}/pool": pool.name}
        ns = NamespaceV1(self, "namespace", metadata=[NamespaceV1Metadata(name=namespace(pool), labels=labels)], provider=kubernetes)
        ns_name = ns.metadata.get(0).name  # a reference, so the quota and release wait for the namespace
        ResourceQuotaV1(self, "gpu-quota", metadata={"name": "gpu", "namespace": ns_name, "labels": labels},
                        spec={"hard": quota_hard(pool)}, provider=kubernetes)
        for kind, (value, preemption, description) in PRIORITIES.items():
            PriorityClassV1(self, f"priority-{kind}", metadata={"name": priority_class(pool, kind), "labels": labels},
                            value=value, preemption_policy=preemption, description=description, provider=kubernetes)
        self.device_plugin = Release(self, "device-plugin", name="nvidia-device-plugin", namespace=ns_name,
                                     **DEVICE_PLUGIN, values=[device_plugin_values(pool)], provider=helm)
        self.identifiers = {
            "provider": "onprem", "region": pool.pool.region, "cluster": pool.cluster, "node_pool": pool.name,
            "namespace": namespace(pool), "node_selector": f"{LABEL_PREFIX}/pool={pool.name}",
            "priority_class": priority_class(pool, "serving"), "id": ns.id,
        }
