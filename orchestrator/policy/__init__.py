"""Policy-as-code: Rego guardrails (OPA semantics, conftest layout) over the synthesized
stacks and the placements, evaluated in-process by regorus. See docs/policies.md."""

from orchestrator.policy.check import PolicyReport, check_environment, enforce_placement, load_policies, planning_rules
from orchestrator.policy.engine import Document, PolicySet, Violation
from orchestrator.policy.errors import PolicyDenied, PolicyError, SynthFailed

__all__ = [
    "Document", "PolicyDenied", "PolicyError", "PolicyReport", "PolicySet", "SynthFailed", "Violation",
    "check_environment", "enforce_placement", "load_policies", "planning_rules",
]
