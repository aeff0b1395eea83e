"""On-prem: an owned GPU pool declared on the site's Kubernetes cluster, like a cloud pool.

The hardware is already there, so what is declared is what makes it a gpufleet pool
(`stacks.facts.OnpremPool`, shared with the Pulumi program): a namespace, a ResourceQuota
capping its GPUs at the pool's size, two priority classes (`serving`; `standby`, which
never preempts) and the NVIDIA device plugin on the pool's nodes only. The site's nodes
must carry the pool's labels (`gpufleet.io/pool=<name>`) and taints; docs/stacks.md has
the commands.
"""

from __future__ import annotations

from constructs import Construct

from stacks import bindings
from stacks.facts import DEVICE_PLUGIN, onprem_pool
from stacks.pools import PoolDeclaration


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
        facts = onprem_pool(pool)
        labels = facts.object_labels
        ns = NamespaceV1(self, "namespace", metadata=[NamespaceV1Metadata(name=facts.namespace, labels=labels)], provider=kubernetes)
        ns_name = ns.metadata.get(0).name  # a reference, so the quota and release wait for the namespace
        ResourceQuotaV1(self, "gpu-quota", metadata={"name": facts.quota_name, "namespace": ns_name, "labels": labels},
                        spec={"hard": facts.quota_hard}, provider=kubernetes)
        for priority in facts.priority_classes:
            PriorityClassV1(self, f"priority-{priority.kind}", metadata={"name": priority.name, "labels": labels},
                            value=priority.value, preemption_policy=priority.preemption_policy,
                            description=priority.description, provider=kubernetes)
        self.device_plugin = Release(self, "device-plugin", name=facts.device_plugin_name, namespace=ns_name,
                                     **DEVICE_PLUGIN, values=[facts.device_plugin_values], provider=helm)
        self.identifiers = {
            "provider": "onprem", "region": pool.pool.region, "cluster": facts.cluster, "node_pool": pool.name,
            "namespace": facts.namespace, "node_selector": facts.node_selector,
            "priority_class": facts.serving_class, "id": ns.id,
        }
