"""Shared by the provider tests: a step driver, fault timing (the recording backoff is in tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from orchestrator.providers.base import StepPending
from orchestrator.settings import Settings
from tests.conftest import BASE_S
from tests.fakes.cloud_fake import FakeCloudApi

@pytest.fixture
def settle() -> Callable[..., int]:
    """Call a step until it stops raising StepPending; returns how many times it did."""

    def run(step: Callable[[], object], *, tries: int = 100, pause_s: float = 0.02) -> int:
        for pending in range(tries):
            try:
                step()
                return pending
            except StepPending:
                time.sleep(pause_s)
        raise TimeoutError(f"still pending after {tries} tries")

    return run


@dataclass(frozen=True)
class Faults:
    """How the tests time calls out, and what they expect of the backoff after injected faults.

    Calls get a generous timeout (a busy machine must not time out a call no fault holds);
    a "timeout" fault holds its answer for `held_s`, past the short timeout that test uses.
    """

    sleeps: list[float]
    call_timeout_s: float = 5.0
    short_timeout_s: float = 0.3
    held_s: float = 0.5

    def inject(self, fake: FakeCloudApi, fault: str, method: str, path: str, times: int,
               error: Callable[[str, str], tuple[int, object, str]]) -> None:
        """`fault` on the next `times` calls of `method` to `path`; `error(fault, path)` gives a failure's
        status, body and content type in the cloud's own shape."""
        if fault == "timeout":
            fake.delay_next(self.held_s, times=times, method=method, path=path)
            return
        status, body, content_type = error(fault, path)
        fake.fail_next(status, body, times=times, content_type=content_type, method=method, path=path)

    def settings(self, settings: Settings, fault: str) -> Settings:
        """`settings`, with the short timeout when the fault is a timeout."""
        if fault != "timeout":
            return settings
        return settings.model_copy(update={"provider_call_timeout_s": self.short_timeout_s})

    def assert_retried(self, fault: str, times: int) -> None:
        """One backoff wait per injected failure (a timeout test may see one more on a busy machine, never fewer)."""
        expected = [BASE_S * 2 ** n for n in range(times)]
        assert self.sleeps[:times] == expected if fault == "timeout" else self.sleeps == expected


@pytest.fixture
def faults(sleeps: list[float]) -> Faults:
    return Faults(sleeps)
