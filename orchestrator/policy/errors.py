"""Errors of the policy gate (under `orchestrator.errors.GpufleetError`).

    GpufleetError
    ├── InputError
    │   └── PolicyError     a rule or data file that cannot be loaded or evaluated: exit 2
    ├── PolicyDenied        deny rules block a plan or a stack: exit 1; carries the violations
    └── SynthFailed         `python -m stacks` failed while synthesizing the stacks to check: exit 1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.errors import GpufleetError, InputError

if TYPE_CHECKING:
    from orchestrator.policy.engine import Violation


class PolicyError(InputError):
    """A policy (Rego module, data file, or data in the spec) that cannot be used as written."""


class PolicyDenied(GpufleetError):
    """Deny rules block what was about to be applied; the message lists every one of them."""

    def __init__(self, what: str, violations: list[Violation]):
        self.violations = violations
        lines = "\n".join(f"  {v.document}: {v.message}" for v in violations)
        super().__init__(
            f"{what} is blocked by {len(violations)} policy denial{'s' if len(violations) != 1 else ''}:\n{lines}\n"
            "To fix: follow each message's fix and re-plan, or change the policy data (docs/policies.md)"
        )


class SynthFailed(GpufleetError):
    """Synthesizing the stacks (`python -m stacks`) failed or timed out."""
