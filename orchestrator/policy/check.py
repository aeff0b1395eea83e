"""The policy gate: the rules of an environment's spec over its stacks and its plan.

`check_environment` is what `orchestrator policy check` runs; `enforce_placement` is
what rebalance calls before it applies a plan. Paths in the spec's `policies.paths` and
the synth output are taken relative to `root` (the repository: where orchestrator runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.planner.problem import PlacementRules
from orchestrator.policy.data import policy_data, placement_rules
from orchestrator.policy.documents import placement_document
from orchestrator.policy.engine import DATA_ROOT, Document, Namespace, PolicySet, Violation
from orchestrator.policy.errors import PolicyDenied
from orchestrator.policy.sources import plan_document, stack_documents
from orchestrator.spec import FleetSpec

if TYPE_CHECKING:
    from orchestrator.planner.placement import Placement


@dataclass(frozen=True)
class PolicyReport:
    """What was checked and what the rules said about it."""

    environment: str
    documents: tuple[Document, ...]
    violations: tuple[Violation, ...]

    @property
    def denials(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "deny"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warn"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "passed": not self.denials,
            "documents": [{"kind": d.namespace, "name": d.name, "source": d.source} for d in self.documents],
            "counts": {"deny": len(self.denials), "warn": len(self.warnings)},
            "violations": [v.model_dump() for v in self.violations],
        }


def load_policies(spec: FleetSpec, root: Path) -> PolicySet:
    """The rules and default data in the spec's `policies.paths`."""
    return PolicySet(root / path for path in spec.policies.paths)


def _rules(spec: FleetSpec, root: Path) -> tuple[PolicySet, dict[str, Any]]:
    """The spec's rules and their data; broken rules or data fail here, before any slow input."""
    policies = load_policies(spec, root)
    return policies, policy_data(spec, policies.defaults)


def check_environment(
    spec: FleetSpec,
    spec_path: Path,
    root: Path,
    *,
    plan_file: Path | None = None,
    stacks_dir: Path | None = None,
    only: Namespace | None = None,
) -> PolicyReport:
    """Both rule sets (or `only` one): terraform over the synthesized stacks, placement over the plan."""
    policies, data = _rules(spec, root)
    documents: list[Document] = []
    if only in (None, "terraform"):
        documents += stack_documents(root, spec, spec_path, stacks_dir)
    if only in (None, "placement"):
        documents.append(plan_document(spec, spec_path, plan_file, root))
    return PolicyReport(spec.environment or "", tuple(documents), tuple(policies.evaluate(documents, data)))


def conftest_inputs(spec: FleetSpec, spec_path: Path, root: Path, plan_file: Path | None = None) -> tuple[dict[str, Any], Document]:
    """The rules' data (`{"gpufleet": ...}`) and the plan as the rules read it, to run the same
    policies under conftest or OPA."""
    _, data = _rules(spec, root)
    return {DATA_ROOT: data}, plan_document(spec, spec_path, plan_file, root)


def enforce_placement(spec: FleetSpec, placement: Placement, root: Path) -> PolicyReport:
    """Rebalance's gate: raise `PolicyDenied` naming every deny rule that blocks this plan;
    otherwise return the report (its warnings are worth logging)."""
    policies, data = _rules(spec, root)
    document = placement_document(placement, spec, "plan to apply")
    report = PolicyReport(spec.environment or "", (document,), tuple(policies.evaluate([document], data)))
    if report.denials:
        raise PolicyDenied(f"applying the plan of environment '{report.environment}'", report.denials)
    return report


def planning_rules(spec: FleetSpec, root: Path) -> PlacementRules:
    """The placement policies' guardrails for the planner to plan within."""
    return placement_rules(_rules(spec, root)[1])
