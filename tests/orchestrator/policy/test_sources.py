"""Where checked documents come from: synth output (synthesized when stale), and plans."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.policy import SynthFailed
from orchestrator.policy.sources import plan_document, stack_documents
from orchestrator.settings import load_settings
from orchestrator.spec import load_spec
from tests.conftest import ENVIRONMENTS

FIXTURES = Path(__file__).parents[2] / "policies" / "fixtures"
HYBRID_SPEC = ENVIRONMENTS / "hybrid.yaml"

# A stand-in stacks app: writes one stack per environment and counts its runs.
FAKE_APP = """
import json, pathlib
runs = pathlib.Path("synth-runs")
runs.write_text(str(int(runs.read_text()) + 1 if runs.exists() else 1))
out = pathlib.Path("cdktf.out/stacks/hybrid-aws")
out.mkdir(parents=True, exist_ok=True)
(out / "cdk.tf.json").write_text(json.dumps({"resource": {}}))
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository root with a spec (older than anything synthesized later)."""
    shutil.copy(HYBRID_SPEC, tmp_path / "hybrid.yaml")
    os.utime(tmp_path / "hybrid.yaml", (1, 1))
    return tmp_path


def with_app(root: Path, source: str = FAKE_APP) -> Path:
    (root / "stacks").mkdir()
    (root / "stacks" / "__main__.py").write_text(source)
    return root


def runs(root: Path) -> int:
    return int((root / "synth-runs").read_text()) if (root / "synth-runs").exists() else 0


def test_synthesizes_missing_stacks_then_reuses_them(repo: Path) -> None:
    spec = load_spec(repo / "hybrid.yaml")
    with_app(repo)
    assert [d.name for d in stack_documents(repo, spec, repo / "hybrid.yaml")] == ["hybrid-aws"]
    assert [d.name for d in stack_documents(repo, spec, repo / "hybrid.yaml")] == ["hybrid-aws"]
    assert runs(repo) == 1


def test_synthesizes_again_when_the_spec_is_newer(repo: Path) -> None:
    spec = load_spec(repo / "hybrid.yaml")
    with_app(repo)
    stack_documents(repo, spec, repo / "hybrid.yaml")
    output = repo / "cdktf.out/stacks/hybrid-aws/cdk.tf.json"
    os.utime(output, (2, 2))
    os.utime(repo / "hybrid.yaml", (3, 3))
    os.utime(repo / "stacks/__main__.py", (1, 1))
    stack_documents(repo, spec, repo / "hybrid.yaml")
    assert runs(repo) == 2


def test_a_failing_synth_says_so(repo: Path) -> None:
    with_app(repo, "raise SystemExit('no cloud credentials for provider aws')")
    with pytest.raises(SynthFailed, match=r"`python -m stacks` failed \(exit 1\):\nno cloud credentials"):
        stack_documents(repo, load_spec(repo / "hybrid.yaml"), repo / "hybrid.yaml")


def test_a_synth_that_skips_the_environment_is_an_input_error(repo: Path) -> None:
    with_app(repo, "pass")
    with pytest.raises(InputError, match="wrote no stacks of environment 'hybrid'"):
        stack_documents(repo, load_spec(repo / "hybrid.yaml"), repo / "hybrid.yaml")


def test_without_a_stacks_app_or_output_it_says_what_to_do(repo: Path) -> None:
    with pytest.raises(InputError, match=r"no stacks app \(stacks/__main__\.py\).*--stacks DIR, or check the plan alone with --only placement"):
        stack_documents(repo, load_spec(repo / "hybrid.yaml"), repo / "hybrid.yaml")


def test_existing_output_is_read_without_a_stacks_app(repo: Path) -> None:
    shutil.copytree(FIXTURES / "hybrid" / "stacks", repo / "cdktf.out" / "stacks")
    documents = stack_documents(repo, load_spec(repo / "hybrid.yaml"), repo / "hybrid.yaml")
    assert [d.name for d in documents] == ["hybrid-aws", "hybrid-azure", "hybrid-gcp", "hybrid-onprem"]


def test_an_environment_without_cloud_pools_has_no_stacks(repo: Path) -> None:
    with_app(repo)
    assert stack_documents(repo, load_spec(ENVIRONMENTS / "local.yaml"), ENVIRONMENTS / "local.yaml") == []
    assert runs(repo) == 0


def test_an_explicit_directory_is_read_as_it_is(repo: Path) -> None:
    spec = load_spec(repo / "hybrid.yaml")
    assert len(stack_documents(repo, spec, repo / "hybrid.yaml", FIXTURES / "hybrid" / "stacks")) == 4
    with pytest.raises(InputError, match="no stacks of environment 'hybrid' in"):
        stack_documents(repo, spec, repo / "hybrid.yaml", FIXTURES / "bad" / "stacks")


def test_plan_from_a_file_then_the_stored_plan() -> None:
    spec = load_spec(HYBRID_SPEC)
    given = plan_document(spec, HYBRID_SPEC, FIXTURES / "hybrid" / "plan.json")
    assert given.source.endswith("plan.json") and given.namespace == "placement"
    stored = load_settings().state_dir("hybrid") / "plans" / "latest.json"
    stored.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "hybrid" / "plan.json", stored)
    assert plan_document(spec, HYBRID_SPEC).source == str(stored)


def test_plans_now_without_a_plan() -> None:
    document = plan_document(load_spec(ENVIRONMENTS / "local.yaml"), ENVIRONMENTS / "local.yaml")
    assert document.source == "planned now (no stored plan)"
    assert document.content["environment"] == "local" and document.content["replicas"]


def test_a_plan_of_another_environment_is_refused() -> None:
    with pytest.raises(InputError, match="the plan is for environment 'hybrid', not 'local'"):
        plan_document(load_spec(ENVIRONMENTS / "local.yaml"), ENVIRONMENTS / "local.yaml", FIXTURES / "hybrid" / "plan.json")


@pytest.mark.parametrize("content, problem", [
    (None, "no such placement file"), ("{", "not a placement"), (json.dumps({"environment": "hybrid"}), "not a placement"),
])
def test_bad_plan_files_are_input_errors(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=f"{problem}.*To fix"):
        plan_document(load_spec(HYBRID_SPEC), HYBRID_SPEC, path)
