"""The Rego unit tests (`test_*` rules in policies/**/*_test.rego), one pytest each, run by
regorus as `orchestrator policy test` runs them; plus the conventions conftest relies on."""

from __future__ import annotations

import re

import pytest

from orchestrator.policy import PolicySet
from tests.conftest import REPO

POLICIES = REPO / "policies"
SUITE = PolicySet([POLICIES], tests=True)


@pytest.mark.parametrize("test", SUITE.tests, ids=lambda t: f"{t.package}.{t.rule}")
def test_rego(test) -> None:
    result = SUITE.run_tests([test], coverage=False)
    assert not result.failed, f"{test.file}: {test.rule}: {result.failed[0][1]}"
    assert result.passed == (test,)


def test_every_policy_line_is_reached_by_a_test() -> None:
    run = SUITE.run_tests()
    assert not run.failed
    assert run.uncovered == {} and run.unreached == ()


def _rule_packages() -> dict[str, str]:
    """package -> file, for every rule file (conftest runs their deny and warn)."""
    packages = {}
    for path in POLICIES.rglob("*.rego"):
        text = path.read_text()
        if not path.name.endswith("_test.rego") and re.search(r"^(deny|warn) contains", text, re.MULTILINE):
            packages[re.search(r"^package (\S+)", text, re.MULTILINE).group(1)] = str(path.relative_to(REPO))
    return packages


def test_every_rule_has_a_passing_and_a_failing_test() -> None:
    packages = _rule_packages()
    assert {"terraform.tags", "terraform.iam", "placement.residency", "placement.budget"} <= set(packages)
    for package in packages:
        names = [t.rule for t in SUITE.tests if t.package == f"{package}_test"]
        assert any(n.startswith("test_allows_") for n in names), f"{package}: no test_allows_* test"
        assert any(n.startswith(("test_denies_", "test_warns_")) for n in names), f"{package}: no test_denies_* test"


@pytest.mark.parametrize("path", sorted(POLICIES.rglob("*.rego")), ids=lambda p: str(p.relative_to(POLICIES)))
def test_rego_files_follow_the_layout(path) -> None:
    """conftest/OPA run the files as they are: rego.v1, and a package named after the folder."""
    text = path.read_text()
    assert re.search(r"^import rego\.v1$", text, re.MULTILINE), "rules use `import rego.v1`"
    package = re.search(r"^package (\S+)", text, re.MULTILINE).group(1)
    assert package.split(".")[0] == path.relative_to(POLICIES).parts[0]
