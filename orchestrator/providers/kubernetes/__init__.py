"""Replicas on Kubernetes clusters (cloud node pools and on-prem sites) as Deployments (official client)."""

from orchestrator.providers.kubernetes.provider import KubernetesDeployments

__all__ = ["KubernetesDeployments"]
