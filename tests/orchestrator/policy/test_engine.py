"""PolicySet: loading rules and data, reading conftest's entry shapes, failing with the file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.policy import Document, PolicyError, PolicySet

RULE = """package terraform.sample
import rego.v1
deny contains {"msg": sprintf("[terraform.sample] %s: too big", [name]), "rule": "terraform.sample", "subject": name} if {
\tsome name, r in input.resource.thing
\tr.size + 0 > data.gpufleet.limit
}
warn contains "plain string warning" if input.resource.thing.loud
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def stack(**things: dict) -> Document:
    return Document("terraform", "env-aws", "cdk.tf.json", {"resource": {"thing": things}})


def test_evaluates_deny_and_warn_entries_of_every_package(tmp_path: Path) -> None:
    policies = PolicySet([write(tmp_path, {"terraform/sample.rego": RULE, "data/limits.yaml": "gpufleet:\n  limit: 3\n"})])
    assert policies.defaults == {"limit": 3}
    violations = policies.evaluate([stack(big={"size": 5}, loud={"size": 1}), stack(small={"size": 1})], policies.defaults)
    assert [(v.severity, v.rule, v.subject, v.message) for v in violations] == [
        ("deny", "terraform.sample", "big", "[terraform.sample] big: too big"),
        ("warn", "terraform.sample", "", "plain string warning"),
    ]
    assert {v.document for v in violations} == {"env-aws"}


def test_data_decides(tmp_path: Path) -> None:
    policies = PolicySet([write(tmp_path, {"terraform/sample.rego": RULE})])
    assert policies.evaluate([stack(big={"size": 5})], {"limit": 10}) == []
    assert len(policies.evaluate([stack(big={"size": 5})], {"limit": 4})) == 1


def test_only_the_documents_namespace_runs(tmp_path: Path) -> None:
    policies = PolicySet([write(tmp_path, {"terraform/sample.rego": RULE})])
    plan = Document("placement", "plan", "plan.json", {"resource": {"thing": {"big": {"size": 5}}}})
    assert policies.evaluate([plan], {"limit": 1}) == []


def test_tests_load_only_when_asked(tmp_path: Path) -> None:
    root = write(tmp_path, {"terraform/sample.rego": RULE, "terraform/sample_test.rego":
                            "package terraform.sample_test\nimport rego.v1\ntest_fails if { false }\ntest_passes if { true }\n"})
    assert PolicySet([root]).tests == []
    run = PolicySet([root], tests=True).run_tests()
    assert [t.rule for t in run.passed] == ["test_passes"]
    assert [(t.rule, why) for t, why in run.failed] == [("test_fails", "false or undefined")]
    assert run.unreached == (str(root / "terraform/sample.rego"),)


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    root = write(tmp_path, {"terraform/broken.rego": "package terraform.broken\nimport rego.v1\ndeny contains x if {\n"})
    with pytest.raises(PolicyError, match=r"^\S*terraform/broken\.rego:4:1: expecting expression\. To fix: correct the Rego"):
        PolicySet([root])


def test_a_runtime_error_names_the_document(tmp_path: Path) -> None:
    policies = PolicySet([write(tmp_path, {"terraform/sample.rego": RULE})])
    with pytest.raises(PolicyError, match=r"terraform rules on env-aws failed: \S*sample\.rego:5:\d+: `add` expects numeric argument.*To fix: make the rule tolerate this input"):
        policies.evaluate([stack(big={"size": "huge"})], {"limit": 3})


@pytest.mark.parametrize("text", ["limit: 3\n", "gpufleet: [1]\n", "gpufleet: {a: 1}\nother: {}\n", "gpufleet: {a: [\n"])
def test_data_files_hold_one_gpufleet_mapping(tmp_path: Path, text: str) -> None:
    root = write(tmp_path, {"terraform/sample.rego": RULE, "data/bad.yaml": text})
    with pytest.raises(PolicyError, match=r"data/bad\.yaml: .*To fix"):
        PolicySet([root])


def test_data_files_merge_objects_and_replace_the_rest(tmp_path: Path) -> None:
    root = write(tmp_path, {"data/a.yaml": "gpufleet: {ceilings: {default: 1}, tags: [a]}\n",
                            "data/b.json": '{"gpufleet": {"ceilings": {"prod": 2}, "tags": ["b"]}}'})
    assert PolicySet([root]).defaults == {"ceilings": {"default": 1, "prod": 2}, "tags": ["b"]}


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist.*policies.paths"):
        PolicySet([tmp_path / "nope"])
