"""boto3 clients for the node-pool calls, and botocore's errors as typed provider errors.

Clients are built without botocore's own retries (`retry.py` decides every retry) and
with the settings' timeout; `GPUFLEET_AWS_ENDPOINT_URL` points them elsewhere (a proxy,
moto's server in the tests). Credentials come from boto3's usual chain.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.providers.errors import CredentialsInvalid, ProviderUnavailable, classify, import_sdk
from orchestrator.settings import Settings


@functools.cache
def _model_loader() -> Any:
    """botocore's loader of service models: read-only data, parsed once per process (EKS, Auto Scaling)."""
    from botocore.loaders import create_loader

    return create_loader()


def session() -> Any:
    """A boto3 session (credentials resolved afresh) whose clients share the parsed service models."""
    boto3 = import_sdk("boto3.session", "aws")
    import botocore.session

    core = botocore.session.get_session()
    core.register_component("data_loader", _model_loader())
    return boto3.Session(botocore_session=core)


def client(session: Any, settings: Settings, service: str, region: str) -> Any:
    """A boto3 client of `service` ("eks", "autoscaling") in `region`."""
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                    connect_timeout=settings.provider_call_timeout_s, read_timeout=settings.provider_call_timeout_s)
    return session.client(service, region_name=region, endpoint_url=settings.aws_endpoint_url, config=config)


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """botocore's exceptions as the provider errors they mean (`from` the original)."""
    from botocore import exceptions as aws

    try:
        yield
    except aws.ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        raise classify(status, error.get("Code"), error.get("Message", ""), where=where) from exc
    except (aws.NoCredentialsError, aws.PartialCredentialsError) as exc:
        raise CredentialsInvalid(f"{where}: {exc}. To fix: set AWS credentials (a profile, role or "
                                 "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)") from exc
    except (aws.ConnectionError, aws.HTTPClientError) as exc:  # timeouts, refused or dropped connections
        raise ProviderUnavailable(f"{where}: {exc}") from exc
