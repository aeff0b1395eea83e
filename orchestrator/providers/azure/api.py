"""Resource Manager clients for AKS and Compute, and azure-core's errors as typed provider errors.

Clients are built with azure-core's retries off (`retry.py` decides every retry), the
settings' timeouts, and the settings' polling interval for long-running operations.
Credentials: a bearer token from `GPUFLEET_AZURE_ACCESS_TOKEN`, else azure-identity's
DefaultAzureCredential. `GPUFLEET_AZURE_ARM_ENDPOINT` points the clients elsewhere; the
SDK refuses to send a token over plain http, so that endpoint must be https.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.errors import InputError
from orchestrator.providers.errors import CredentialsInvalid, ProviderUnavailable, classify, import_sdk
from orchestrator.settings import Settings

TOKEN_LIFETIME_S = 3600  # a given token is not refreshed; Resource Manager rejects it once it expires


class StaticToken:
    """A TokenCredential over one bearer token (from `az account get-access-token`, or a test)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + TOKEN_LIFETIME_S)


def subscription(settings: Settings) -> str:
    if not settings.azure_subscription_id:
        raise InputError("GPUFLEET_AZURE_SUBSCRIPTION_ID is not set. To fix: set it to the subscription of the "
                         "AKS clusters and scale sets")
    return settings.azure_subscription_id


def _client(settings: Settings, module: str, name: str) -> Any:
    sdk = import_sdk(module, "azure")
    token = settings.azure_access_token
    credential = (StaticToken(token.get_secret_value()) if token
                  else import_sdk("azure.identity", "azure").DefaultAzureCredential())
    endpoint = {"base_url": settings.azure_arm_endpoint} if settings.azure_arm_endpoint else {}
    return getattr(sdk, name)(
        credential, subscription(settings), **endpoint, retry_total=0,
        connection_timeout=settings.provider_call_timeout_s, read_timeout=settings.provider_call_timeout_s,
        polling_interval=settings.provider_poll_s,
    )


def container_client(settings: Settings) -> Any:
    """AKS: ContainerServiceClient."""
    return _client(settings, "azure.mgmt.containerservice", "ContainerServiceClient")


def compute_client(settings: Settings) -> Any:
    """VM scale sets: ComputeManagementClient."""
    return _client(settings, "azure.mgmt.compute", "ComputeManagementClient")


def _retry_after_s(response: Any) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    return float(value) if value and value.replace(".", "", 1).isdigit() else None


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """azure-core's exceptions (HTTP errors, failed operations, transport) as the provider errors they mean."""
    from azure.core import exceptions as azure

    try:
        yield
    except azure.ClientAuthenticationError as exc:
        raise CredentialsInvalid(f"{where}: {exc.message}. To fix: sign in (`az login`, workload identity) or "
                                 "set GPUFLEET_AZURE_ACCESS_TOKEN; the identity needs the roles in "
                                 "docs/providers.md") from exc
    except azure.HttpResponseError as exc:
        code = exc.error.code if exc.error else None
        message = exc.error.message if exc.error and exc.error.message else exc.message
        raise classify(exc.status_code, code, message, where=where, retry_after_s=_retry_after_s(exc.response)) from exc
    except (azure.ServiceRequestError, azure.ServiceResponseError) as exc:  # timeouts, refused or dropped connections
        raise ProviderUnavailable(f"{where}: {exc.message}") from exc
