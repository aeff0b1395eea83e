"""The GKE and Compute Engine clients over REST, and google-api-core's errors as typed provider errors.

REST, not gRPC: one transport for both APIs, through proxies, and against the tests'
local fake. An http:// endpoint (a local fake) gets anonymous credentials, so no Google
token travels in clear text; otherwise Application Default Credentials. Calls pass
`retry=None` (`retry.py` decides every retry) and the settings' timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.errors import InputError
from orchestrator.providers.errors import CredentialsInvalid, ProviderUnavailable, classify, import_sdk
from orchestrator.settings import Settings


def project(settings: Settings) -> str:
    if not settings.gcp_project:
        raise InputError("GPUFLEET_GCP_PROJECT is not set. To fix: set it to the project of the GKE clusters")
    return settings.gcp_project


def _options(endpoint: str | None) -> dict[str, Any]:
    if not endpoint:
        return {"client_options": {}}
    from google.auth.credentials import AnonymousCredentials

    credentials = AnonymousCredentials() if endpoint.startswith("http://") else None
    return {"client_options": {"api_endpoint": endpoint}, "credentials": credentials}


def container_client(settings: Settings) -> Any:
    """GKE's ClusterManagerClient."""
    container = import_sdk("google.cloud.container_v1", "gcp")
    return container.ClusterManagerClient(transport="rest", **_options(settings.gcp_container_endpoint))


def compute_clients(settings: Settings) -> tuple[Any, Any]:
    """Compute Engine's InstanceGroupManagersClient and ZoneOperationsClient."""
    compute = import_sdk("google.cloud.compute_v1", "gcp")
    options = _options(settings.gcp_compute_endpoint)
    return (compute.InstanceGroupManagersClient(transport="rest", **options),
            compute.ZoneOperationsClient(transport="rest", **options))


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """google-api-core, google-auth and transport exceptions as the provider errors they mean."""
    import requests
    from google.api_core import exceptions as google
    from google.auth import exceptions as auth

    try:
        yield
    except google.GoogleAPICallError as exc:
        status = exc.code if isinstance(exc.code, int) else None
        code = exc.reason or (exc.grpc_status_code.name if exc.grpc_status_code else None)
        raise classify(status, code, exc.message, where=where) from exc
    except (auth.DefaultCredentialsError, auth.RefreshError) as exc:
        raise CredentialsInvalid(f"{where}: {exc}. To fix: run `gcloud auth application-default login` "
                                 "or give the workload a service account") from exc
    except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
        raise ProviderUnavailable(f"{where}: {exc}") from exc
