"""Run a journaled rebalance's remaining steps through the providers, resumably.

Each step is marked `started` before its provider is asked and `done` after the provider
reports it holds; a provider that is still working raises `StepPending` and is asked again
after the delay it gives (bounded), with the lock's lease kept fresh meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from orchestrator.errors import ProviderError
from orchestrator.providers.base import StepPending
from orchestrator.rebalance.journal import Run, finish_run, heartbeat, mark_step
from orchestrator.rebalance.steps import Step
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)

MAX_POLL_S = 10.0


class StepTimeout(ProviderError):
    """A step did not complete within its time limit; the run stays resumable."""


class StepFailed(ProviderError):
    """A provider failed a step for good; the provider's error is the cause. The run is marked failed."""

    def __init__(self, seq: int, step: Step, cause: ProviderError) -> None:
        super().__init__(f"step {seq + 1} ({step.kind} on {step.pool}) failed: {cause}")
        self.step = step


class Applies(Protocol):
    def apply(self, step: Step) -> None: ...


def apply_step(store: StateStore, environment: str, step: Step, provider: Applies, *, step_timeout_s: float,
               sleep: Callable[[float], None] = time.sleep, on_wait: Callable[[str], None] | None = None,
               where: str = "a step", resume_with: str = "rebalance") -> None:
    """Apply one step until its provider says it holds, polling while it is under way (keeping the environment's
    lock fresh); StepTimeout past `step_timeout_s`, the provider's ProviderError when it fails for good."""
    deadline = time.monotonic() + step_timeout_s
    while True:
        try:
            provider.apply(step)
            return
        except StepPending as waiting:
            if time.monotonic() >= deadline:
                raise StepTimeout(f"{where} ({step.kind} on {step.pool}) not done after {step_timeout_s:.0f} s: {waiting}. "
                                  f"To fix: check the pool, then run {resume_with} again; it resumes here") from waiting
            heartbeat(store, environment)
            if on_wait is not None:
                on_wait(str(waiting))
            sleep(min(max(waiting.retry_after_s, 0.05), MAX_POLL_S))


def execute(
    store: StateStore,
    environment: str,
    run: Run,
    provider_for: Callable[[Step], Applies],
    *,
    step_timeout_s: float = 1800.0,
    sleep: Callable[[float], None] = time.sleep,
    on_step: Callable[[int, Step], None] | None = None,
    on_wait: Callable[[int, Step, str], None] | None = None,
) -> None:
    """Apply the run's remaining steps in order, then mark the run done.

    A provider error marks the run failed and raises StepFailed (the next rebalance
    re-observes and re-plans);
    a crash leaves it running (the next rebalance resumes it).
    """
    for pending in run.remaining:
        step = pending.step
        mark_step(store, run.id, pending.seq, "started")
        logger.info("rebalance %s step %d: %s %s", environment, pending.seq, step.kind, step.model_dump(exclude={"kind", "replica"}))
        try:
            apply_step(store, environment, step, provider_for(step), step_timeout_s=step_timeout_s, sleep=sleep,
                       on_wait=None if on_wait is None else lambda note, seq=pending.seq, step=step: on_wait(seq, step, note),
                       where=f"step {pending.seq + 1}", resume_with="rebalance")
        except StepTimeout:
            raise
        except ProviderError as exc:
            finish_run(store, run.id, error=str(exc))
            raise StepFailed(pending.seq, step, exc) from exc
        mark_step(store, run.id, pending.seq, "done")
        if on_step is not None:
            on_step(pending.seq, step)
    finish_run(store, run.id)
