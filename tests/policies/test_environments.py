"""Whole environments through the gate: the hybrid example's stacks and plan pass, and a
deliberately bad production environment is blocked with the expected messages."""

from __future__ import annotations

from pathlib import Path

from orchestrator.policy import check_environment
from orchestrator.spec import load_spec
from tests.conftest import ENVIRONMENTS, REPO

FIXTURES = Path(__file__).parent / "fixtures"
HYBRID = FIXTURES / "hybrid"
BAD = FIXTURES / "bad"


def lines(report) -> list[str]:
    return [f"{v.severity.upper()} {v.document}: {v.message}" for v in report.violations]


def test_hybrid_stacks_and_plan_pass() -> None:
    spec_file = ENVIRONMENTS / "hybrid.yaml"
    report = check_environment(load_spec(spec_file), spec_file, REPO, plan_file=HYBRID / "plan.json", stacks_dir=HYBRID / "stacks")
    assert [d.name for d in report.documents] == ["hybrid-aws", "hybrid-azure", "hybrid-gcp", "hybrid-onprem", "plan"]
    assert lines(report) == []


def test_bad_environment_is_blocked_with_the_expected_messages() -> None:
    spec_file = BAD / "prod.yaml"
    report = check_environment(load_spec(spec_file), spec_file, REPO, plan_file=BAD / "plan.json", stacks_dir=BAD / "stacks")
    assert lines(report) == (BAD / "expected.txt").read_text().splitlines()
    fired = {v.rule for v in report.denials}
    assert fired == {
        "terraform.tags", "terraform.network", "terraform.encryption", "terraform.imds", "terraform.spot",
        "terraform.nodes", "terraform.providers", "terraform.iam",
        "placement.residency", "placement.licence", "placement.budget", "placement.replicas", "placement.spot",
    }
