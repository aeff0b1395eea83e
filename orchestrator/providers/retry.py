"""One retry policy for every provider call: exponential backoff with jitter on `ProviderUnavailable`.

The SDKs' own retries are switched off where the clients are built (`api.py` of each
provider), so that every attempt, its wait and the give-up point are decided here, the
same way for all clouds, and tests can make the waits tiny or record them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TypeVar

from orchestrator.providers.errors import ProviderUnavailable
from orchestrator.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How often and how long to wait between attempts of one call.

    Attempt n (from 0) waits `min(max_s, base_s * 2**n)`, less up to `jitter` of it at
    random (so that many pools throttled together do not retry in step), and never less
    than a `Retry-After` the service sent.
    """

    attempts: int = 5
    base_s: float = 1.0
    max_s: float = 30.0
    jitter: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        return cls(attempts=settings.provider_retry_attempts, base_s=settings.provider_backoff_s,
                   max_s=settings.provider_backoff_max_s)

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempt` (0-based)."""
        ceiling = min(self.max_s, self.base_s * 2 ** attempt)
        return max(ceiling * (1 - self.jitter * random.random()), retry_after_s or 0.0)


def call_with_retries(call: Callable[[], T], *, backoff: Backoff,
                      translate: Callable[[], AbstractContextManager[None]], what: str) -> T:
    """`call()` inside `translate()`, retried while it raises `ProviderUnavailable`; the last one is raised."""
    for attempt in range(backoff.attempts):
        try:
            with translate():
                return call()
        except ProviderUnavailable as exc:
            if attempt + 1 == backoff.attempts:
                raise
            delay = backoff.delay_s(attempt, exc.retry_after_s)
            logger.warning("%s: attempt %d of %d failed (%s); retrying in %.2f s",
                           what, attempt + 1, backoff.attempts, exc, delay)
            backoff.sleep(delay)
    raise ValueError(f"Backoff.attempts must be at least 1, not {backoff.attempts}")
