"""On-prem: each pool's namespace, GPU quota, priority classes and device plugin on its site cluster (pulumi-kubernetes)."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s

from stacks.facts import DEVICE_PLUGIN, onprem_pool
from stacks.pools import PoolDeclaration


def providers(pools: list[PoolDeclaration]) -> dict[str, pulumi.ProviderResource]:
    """One Kubernetes provider per site cluster (kube context); Helm releases go through it too."""
    by_cluster = {c: k8s.Provider(f"kubernetes-{c}", context=c) for c in sorted({p.cluster for p in pools})}
    return {p.name: by_cluster[p.cluster] for p in pools}


def declare(pool: PoolDeclaration, provider: pulumi.ProviderResource) -> k8s.core.v1.Namespace:
    facts = onprem_pool(pool)
    options = pulumi.ResourceOptions(provider=provider)
    labels = facts.object_labels
    ns = k8s.core.v1.Namespace(f"{pool.name}_namespace", metadata={"name": facts.namespace, "labels": labels}, opts=options)
    ns_name = ns.metadata.name  # an output, so the quota and release wait for the namespace
    k8s.core.v1.ResourceQuota(f"{pool.name}_gpu-quota", metadata={"name": facts.quota_name, "namespace": ns_name, "labels": labels},
                              spec={"hard": facts.quota_hard}, opts=options)
    for priority in facts.priority_classes:
        k8s.scheduling.v1.PriorityClass(f"{pool.name}_priority-{priority.kind}", metadata={"name": priority.name, "labels": labels},
                                        value=priority.value, preemption_policy=priority.preemption_policy,
                                        description=priority.description, opts=options)
    k8s.helm.v3.Release(f"{pool.name}_device-plugin", name=facts.device_plugin_name, namespace=ns_name,
                        chart=DEVICE_PLUGIN["chart"], version=DEVICE_PLUGIN["version"],
                        repository_opts={"repo": DEVICE_PLUGIN["repository"]},
                        values=json.loads(facts.device_plugin_values), opts=options)
    return ns
