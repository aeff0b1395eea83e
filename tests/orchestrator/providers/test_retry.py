"""Backoff between tries of a provider call: exponential, capped, jittered, honouring Retry-After."""

from __future__ import annotations

import contextlib

import pytest

from orchestrator.providers.errors import ProviderUnavailable, QuotaExceeded
from orchestrator.providers.retry import Backoff, call_with_retries
from orchestrator.settings import Settings


def test_waits_double_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1.0, max_s=5.0, jitter=0.0)
    assert [backoff.delay_s(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_only_shortens_a_wait_by_up_to_its_share() -> None:
    backoff = Backoff(base_s=4.0, max_s=30.0, jitter=0.5)
    assert all(2.0 <= backoff.delay_s(0) <= 4.0 for _ in range(200))


def test_a_retry_after_hint_is_a_floor() -> None:
    assert Backoff(base_s=1.0, jitter=0.0).delay_s(0, retry_after_s=9.0) == 9.0


def test_settings_set_the_policy() -> None:
    backoff = Backoff.from_settings(Settings(provider_retry_attempts=3, provider_backoff_s=0.5, provider_backoff_max_s=4))
    assert (backoff.attempts, backoff.base_s, backoff.max_s) == (3, 0.5, 4)


def failing(errors: list[Exception], result: str = "ok"):
    def call() -> str:
        if errors:
            raise errors.pop(0)
        return result
    return call


def test_passing_failures_are_retried_until_the_call_succeeds() -> None:
    sleeps: list[float] = []
    backoff = Backoff(attempts=3, base_s=0.1, jitter=0.0, sleep=sleeps.append)
    errors = [ProviderUnavailable("throttled"), ProviderUnavailable("503")]
    assert call_with_retries(failing(errors), backoff=backoff, translate=contextlib.nullcontext, what="x") == "ok"
    assert sleeps == [0.1, 0.2]


def test_the_last_passing_failure_is_raised() -> None:
    sleeps: list[float] = []
    backoff = Backoff(attempts=2, base_s=0.1, jitter=0.0, sleep=sleeps.append)
    errors = [ProviderUnavailable("one"), ProviderUnavailable("two")]
    with pytest.raises(ProviderUnavailable, match="two"):
        call_with_retries(failing(errors), backoff=backoff, translate=contextlib.nullcontext, what="x")
    assert sleeps == [0.1]


def test_other_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    with pytest.raises(QuotaExceeded):
        call_with_retries(failing([QuotaExceeded("quota")]), backoff=Backoff(sleep=sleeps.append),
                          translate=contextlib.nullcontext, what="x")
    assert sleeps == []
