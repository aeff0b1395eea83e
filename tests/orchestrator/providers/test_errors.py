"""Which typed error a failed cloud call means, from its status, code and message."""

from __future__ import annotations

import pytest

from orchestrator.errors import ProviderError
from orchestrator.providers.errors import (
    CapacityUnavailable, CredentialsInvalid, PoolNotFound, ProviderUnavailable, QuotaExceeded, classify, import_sdk,
)


@pytest.mark.parametrize("status,code,message,expected", [
    # throttling and passing failures: retried
    (400, "Throttling", "Rate exceeded", ProviderUnavailable),
    (429, "ThrottlingException", "Rate exceeded", ProviderUnavailable),
    (429, "RATE_LIMIT_EXCEEDED", "Quota exceeded for quota metric 'Read requests' per minute", ProviderUnavailable),
    (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'",
     ProviderUnavailable),
    (429, "TooManyRequests", "The request is being throttled.", ProviderUnavailable),
    (503, "ServiceUnavailable", "unavailable", ProviderUnavailable),
    (500, None, "etcdserver: request timed out", ProviderUnavailable),
    # quotas and limits: the pool is taken out
    (400, "ResourceLimitExceededException", "no", QuotaExceeded),
    (403, "QUOTA_EXCEEDED", "Quota 'NVIDIA_H100_GPUS' exceeded. Limit: 8.0", QuotaExceeded),
    (409, "OperationNotAllowed", "results in exceeding approved Total Regional Cores quota", QuotaExceeded),
    (None, "RESOURCE_EXHAUSTED", 'Insufficient regional quota to satisfy request: resource "NVIDIA_H100_GPUS"',
     QuotaExceeded),
    (None, None, "Launching EC2 instance failed. VcpuLimitExceeded", QuotaExceeded),
    (403, "Forbidden", "exceeded quota: gpus, requested: requests.nvidia.com/gpu=1", QuotaExceeded),
    # no capacity: the pool is taken out
    (500, "InsufficientInstanceCapacity", "no p5.48xlarge", CapacityUnavailable),
    (None, "ZONE_RESOURCE_POOL_EXHAUSTED", "The zone does not have enough resources", CapacityUnavailable),
    (409, "SkuNotAvailable", "not available in location", CapacityUnavailable),
    (200, "AllocationFailed", "Allocation failed", CapacityUnavailable),
    # access
    (403, "AccessDeniedException", "not authorized to perform: eks:UpdateNodegroupConfig", CredentialsInvalid),
    (401, "Unauthorized", "Unauthorized", CredentialsInvalid),
    (403, "AuthorizationFailed", "does not have authorization", CredentialsInvalid),
    # missing
    (404, "ResourceNotFoundException", "No node group found", PoolNotFound),
    # anything else
    (400, "InvalidParameterException", "desiredSize must be at least minSize", ProviderError),
])
def test_classify(status, code, message, expected) -> None:
    error = classify(status, code, message, where="aws us-east-1 pool gpu")
    assert type(error) is expected
    assert str(error).startswith("aws us-east-1 pool gpu: ")


def test_typed_errors_say_how_to_fix() -> None:
    for error in (classify(400, "LimitExceeded", "x", where="w"), classify(None, "stockout", "x", where="w"),
                  classify(403, "AccessDenied", "x", where="w"), classify(404, "NotFound", "x", where="w")):
        assert "To fix:" in str(error)


def test_a_retry_after_hint_travels_with_a_passing_failure() -> None:
    assert classify(429, "TooManyRequests", "slow", where="w", retry_after_s=7.0).retry_after_s == 7.0


def test_a_missing_sdk_names_the_extra_to_install() -> None:
    with pytest.raises(ProviderError, match=r"pip install 'gpufleet\[gcp\]'"):
        import_sdk("google.cloud.not_an_sdk", "gcp")
