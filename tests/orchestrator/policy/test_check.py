"""The gate rebalance calls, and the report `policy check` renders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.planner.placement import Placement
from orchestrator.policy import PolicyDenied, check_environment, enforce_placement
from orchestrator.spec import load_spec
from tests.conftest import ENVIRONMENTS, REPO

FIXTURES = Path(__file__).parents[2] / "policies" / "fixtures"
BAD = FIXTURES / "bad"


def placement(path: Path) -> Placement:
    return Placement.model_validate(json.loads(path.read_text()))


def test_rebalance_gate_passes_a_good_plan() -> None:
    report = enforce_placement(load_spec(ENVIRONMENTS / "hybrid.yaml"), placement(FIXTURES / "hybrid" / "plan.json"), REPO)
    assert report.denials == [] and [d.name for d in report.documents] == ["plan"]


def test_rebalance_gate_names_every_deny_rule() -> None:
    with pytest.raises(PolicyDenied) as denied:
        enforce_placement(load_spec(BAD / "prod.yaml"), placement(BAD / "plan.json"), REPO)
    assert {v.rule for v in denied.value.violations} == {
        "placement.budget", "placement.licence", "placement.replicas", "placement.residency", "placement.spot"}
    message = str(denied.value)
    assert message.startswith("applying the plan of environment 'prod' is blocked by 8 policy denials:\n")
    assert "  plan: [placement.budget] prod: plan costs $122.51/h, over the budget of $100/h." in message
    assert message.endswith("To fix: follow each message's fix and re-plan, or change the policy data (docs/policies.md)")


def test_only_one_rule_set() -> None:
    spec = load_spec(BAD / "prod.yaml")
    terraform = check_environment(spec, BAD / "prod.yaml", REPO, stacks_dir=BAD / "stacks", only="terraform")
    assert {d.namespace for d in terraform.documents} == {"terraform"}
    placement_only = check_environment(spec, BAD / "prod.yaml", REPO, plan_file=BAD / "plan.json", only="placement")
    assert [d.name for d in placement_only.documents] == ["plan"]


def test_report_as_json() -> None:
    report = check_environment(load_spec(BAD / "prod.yaml"), BAD / "prod.yaml", REPO, plan_file=BAD / "plan.json", only="placement")
    payload = report.to_dict()
    assert payload["environment"] == "prod" and payload["passed"] is False
    assert payload["counts"] == {"deny": 8, "warn": 0}
    assert payload["documents"] == [{"kind": "placement", "name": "plan", "source": str(BAD / "plan.json")}]
    assert set(payload["violations"][0]) == {"severity", "rule", "package", "subject", "message", "document"}
