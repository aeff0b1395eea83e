"""Kubernetes API clients per kube context, and the client's errors as typed provider errors.

A pool's `cluster` names a context of the kubeconfig (`GPUFLEET_KUBECONFIG`, else the
client's default: $KUBECONFIG or ~/.kube/config), whose credentials are used as they
are (exec plugins for EKS/GKE/AKS included). urllib3's own retries are off: `retry.py`
decides every retry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.errors import ProviderError
from orchestrator.providers.errors import ProviderUnavailable, classify, import_sdk
from orchestrator.settings import Settings


def api_client(settings: Settings, context: str) -> Any:
    """An ApiClient for one kube context."""
    kubernetes = import_sdk("kubernetes", "kubernetes")
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(config_file=str(settings.kubeconfig) if settings.kubeconfig else None,
                                           context=context, client_configuration=configuration, persist_config=False)
    except kubernetes.config.ConfigException as exc:
        raise ProviderError(f"kube context {context}: {exc}. To fix: add a context named {context} to the "
                            "kubeconfig (`aws eks update-kubeconfig --alias`, `gcloud container clusters "
                            "get-credentials`, `az aks get-credentials --context`) or set GPUFLEET_KUBECONFIG") from exc
    configuration.retries = False
    return kubernetes.client.ApiClient(configuration)


def _body(exc: Any) -> tuple[str | None, str]:
    """(reason, message) of an ApiException's `Status` body."""
    try:
        status = json.loads(exc.body or "{}")
    except ValueError:
        return exc.reason, str(exc.body or exc.reason)
    return status.get("reason") or exc.reason, status.get("message") or str(exc.reason)


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """The client's ApiException and urllib3's transport errors as the provider errors they mean."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    try:
        yield
    except ApiException as exc:
        reason, message = _body(exc)
        retry_after = (exc.headers or {}).get("Retry-After")
        raise classify(exc.status, reason, message, where=where,
                       retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None) from exc
    except urllib3.exceptions.HTTPError as exc:  # timeouts, refused or dropped connections
        raise ProviderUnavailable(f"{where}: {exc}") from exc
