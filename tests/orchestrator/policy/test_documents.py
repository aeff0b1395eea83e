"""Documents the rules read: stacks found per environment, plans with continents added."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.planner.placement import Placement
from orchestrator.policy.documents import placement_document, read_stack, stack_files
from orchestrator.spec import load_spec
from tests.conftest import ENVIRONMENTS

HYBRID_PLAN = Path(__file__).parents[2] / "policies" / "fixtures" / "hybrid" / "plan.json"


def test_stack_files_are_the_environments_own(tmp_path: Path) -> None:
    for stack in ("prod-aws", "prod-gcp", "prod-eu-aws", "production-aws", "dev-aws"):
        (tmp_path / stack).mkdir()
        (tmp_path / stack / "cdk.tf.json").write_text("{}")
    (tmp_path / "prod-azure").mkdir()  # not synthesized yet
    assert [p.parent.name for p in stack_files(tmp_path, "prod")] == ["prod-aws", "prod-gcp"]
    assert [p.parent.name for p in stack_files(tmp_path, "prod-eu")] == ["prod-eu-aws"]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_unreadable_stacks_are_input_errors(tmp_path: Path, text: str) -> None:
    (tmp_path / "cdk.tf.json").write_text(text)
    with pytest.raises(InputError, match="cdk.tf.json: .*To fix: synthesize it again"):
        read_stack(tmp_path / "cdk.tf.json")


def test_placement_document_adds_each_pool_and_user_regions_continent() -> None:
    spec = load_spec(ENVIRONMENTS / "hybrid.yaml")
    placement = Placement.model_validate(json.loads(HYBRID_PLAN.read_text()))
    document = placement_document(placement, spec, "plan.json")
    pools = {p["pool"]: p["continent"] for p in document.content["pools"]}
    assert pools["fra-dc1-a100"] == "europe"  # on-prem: from the spec's `location: frankfurt`
    assert pools["gcp-euw4-l4-spot"] == "europe" and pools["aws-use1-h100"] == "north-america"
    users = {d["region"]: d["continent"] for d in document.content["demand"]}
    assert users["london"] == "europe" and users["san-francisco"] == "north-america"
    assert document.content["replicas"] == placement.model_dump(mode="json")["replicas"]


def test_unknown_places_have_no_continent() -> None:
    spec = load_spec(ENVIRONMENTS / "hybrid.yaml")
    raw = json.loads(HYBRID_PLAN.read_text())
    raw["pools"][0].update(pool="elsewhere", provider="onprem", region="dc-unknown")
    raw["demand"][0]["region"] = "atlantis"
    document = placement_document(Placement.model_validate(raw), spec, "plan.json")
    assert document.content["pools"][0]["continent"] is None
    assert document.content["demand"][0]["continent"] is None
