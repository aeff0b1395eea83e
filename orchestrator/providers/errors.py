"""Typed provider failures, so rebalance can tell "take this pool out and re-plan" from "try later".

Every cloud and Kubernetes call runs inside its SDK's `translate_errors()` (in each
provider's `api.py`), which reads the SDK's exception into (HTTP status, error code,
message) and lets `classify` pick the most specific class here, chained `from` the SDK's
exception so the original stays in the traceback:

    ProviderError (orchestrator.errors)
    ├── StepPending            (base.py) under way, apply again later: not a failure
    ├── ProviderUnavailable    throttled, 5xx, timed out: `retry.py` retries it with backoff
    ├── QuotaExceeded          an account, project or group limit: take the pool out, re-plan
    ├── CapacityUnavailable    no machines of this type there now (stockout, spot): same
    ├── CredentialsInvalid     missing, expired or not allowed: fix access, re-run
    └── PoolNotFound           the node pool or group is not there: deploy the stacks
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from orchestrator.errors import ProviderError


class ProviderUnavailable(ProviderError):
    """A call that may succeed if repeated: throttling (429), a 5xx, a timeout, a dropped connection."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QuotaExceeded(ProviderError):
    """A limit stops the pool from growing: a cloud quota, the group's own max size, a namespace quota."""


class CapacityUnavailable(ProviderError):
    """The cloud has no machines of the pool's type where it asked, now (stockout, spot reclaimed)."""


class CredentialsInvalid(ProviderError):
    """No credentials, expired ones, or ones not allowed to make this call."""


class PoolNotFound(ProviderError):
    """The node pool, group or cluster a pool names does not exist in the cloud."""


# Error codes as the clouds spell them (AWS, GCP, Azure); matched case-insensitively.
_THROTTLING = {"throttling", "throttlingexception", "toomanyrequestsexception", "requestlimitexceeded",
               "toomanyrequests", "rate_limit_exceeded", "ratelimitexceeded", "slowdown"}
_QUOTA = {"limitexceeded", "limitexceededexception", "resourcelimitexceeded", "resourcelimitexceededexception",
          "instancelimitexceeded",
          "vcpulimitexceeded", "servicequotaexceededexception", "quota_exceeded", "quotaexceeded",
          "maxspotinstancecountexceeded"}
_CAPACITY = {"insufficientinstancecapacity", "insufficientcapacity", "ec2insufficientcapacity",
             "zone_resource_pool_exhausted", "zone_resource_pool_exhausted_with_details", "stockout",
             "skunotavailable", "allocationfailed", "zonalallocationfailed", "overconstrainedallocationrequest",
             "overconstrainedzonalallocationrequest"}
_CREDENTIALS = {"accessdenied", "accessdeniedexception", "unauthorizedoperation", "unrecognizedclientexception",
                "invalidclienttokenid", "authfailure", "expiredtoken", "expiredtokenexception",
                "signaturedoesnotmatch", "authorizationfailed", "invalidauthenticationtoken",
                "permission_denied", "unauthenticated", "forbidden", "unauthorized"}
_NOT_FOUND = {"resourcenotfoundexception", "notfound", "not_found", "resourcenotfound", "resourcegroupnotfound"}
_TRANSIENT_CODES = {"serviceunavailable", "internalfailure", "internalerror", "serverexception", "unavailable",
                    "internal", "backenderror", "deadline_exceeded"}
# "Quota exceeded for quota metric 'Read requests' and limit '... per minute'" is throttling, not a quota.
_RATE_WORDS = re.compile(r"per (second|minute|100 seconds)|rate limit|rate exceeded|too many requests", re.I)
_QUOTA_WORDS = re.compile(r"quota|limit ?exceeded|exceeding approved", re.I)
_CAPACITY_WORDS = re.compile(r"insufficient ?\w* ?capacity|resource_pool_exhausted|does not have enough resources|"
                             r"allocation ?failed|stockout", re.I)


def classify(status: int | None, code: str | None, message: str, *, where: str,
             retry_after_s: float | None = None) -> ProviderError:
    """The error a failed call means, from what every SDK gives: HTTP status, error code, message.

    `where` names the provider, region and pool (or cluster) for the message.
    """
    key = (code or "").lower()
    text = f"{where}: {message}".rstrip(". ")
    if key in _CAPACITY or (key not in _THROTTLING and _CAPACITY_WORDS.search(message)):
        return CapacityUnavailable(f"{text}. To fix: pick another zone or instance type; "
                                   "rebalance re-plans without this pool")
    quota_words = _QUOTA_WORDS.search(message) and not _RATE_WORDS.search(message)
    if key in _QUOTA or (key not in _THROTTLING and status != 429 and quota_words):
        return QuotaExceeded(f"{text}. To fix: request a quota increase (or raise the group's max size); "
                             "rebalance re-plans without this pool")
    if key in _THROTTLING or key in _TRANSIENT_CODES or status == 429 or (status is not None and status >= 500):
        return ProviderUnavailable(f"{text} (status {status}, {code or 'no code'})", retry_after_s)
    if key in _CREDENTIALS or status in (401, 403):
        return CredentialsInvalid(f"{text}. To fix: check the credentials and the role's permissions "
                                  "(docs/providers.md)")
    if key in _NOT_FOUND or status == 404:
        return PoolNotFound(f"{text}. To fix: deploy the environment's stacks (cdktf deploy) or correct the pool's "
                            "cluster and name")
    return ProviderError(f"{text} (status {status}, {code or 'no code'})")


def import_sdk(module: str, extra: str) -> Any:
    """Import a cloud SDK module, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ProviderError(f"the {extra} provider needs {module}, which is not installed. "
                            f"To fix: pip install 'gpufleet[{extra}]'") from exc
