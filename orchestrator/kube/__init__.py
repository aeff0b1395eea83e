"""Kubernetes manifests of a placement's replicas, per pool and cluster, for review and GitOps (`orchestrator manifests`)."""

from orchestrator.kube.manifests import PROMETHEUS_ADAPTER_RULE, PoolManifests, environment_manifests, pool_manifests

__all__ = ["PROMETHEUS_ADAPTER_RULE", "PoolManifests", "environment_manifests", "pool_manifests"]
