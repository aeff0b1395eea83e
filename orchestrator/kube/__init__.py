"""Kubernetes manifests for one pool of a placement: Deployment, Service, PodDisruptionBudget, autoscaler."""

from orchestrator.kube.manifests import PROMETHEUS_ADAPTER_RULE, pool_manifests

__all__ = ["PROMETHEUS_ADAPTER_RULE", "pool_manifests"]
