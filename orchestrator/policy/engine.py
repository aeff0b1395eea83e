"""Rego through regorus (OPA semantics): load rules and their default data once, then
evaluate the conftest-style `deny` and `warn` sets of every package over many documents.

A document is evaluated by the packages under its namespace (`terraform.*` for
synthesized stacks, `placement.*` for plans), in one query per document. Entries are
conftest's: a string, or an object with `msg` plus gpufleet's `rule` and `subject`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import regorus
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import InputError
from orchestrator.policy.errors import PolicyError
from orchestrator.spec.reader import parse_yaml, read_text

Severity = Literal["deny", "warn"]
Namespace = Literal["terraform", "placement"]
SEVERITIES: tuple[Severity, ...] = ("deny", "warn")
DATA_ROOT = "gpufleet"
"""Every data key lives under `data.gpufleet`, clear of the rule packages' own paths."""
DATA_DIR = "data"
TEST_SUFFIX = "_test.rego"
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.MULTILINE)
_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_LOCATED_ERROR = re.compile(r"-->\s*(\S+).*?^error: (.*)", re.MULTILINE | re.DOTALL)


class Violation(BaseModel):
    """One deny or warn entry a rule produced for one document."""

    model_config = ConfigDict(frozen=True)

    severity: Severity = Field(description="deny blocks; warn is reported.")
    rule: str = Field(description="The rule's id, e.g. terraform.tags (its package when the rule gives none).")
    package: str = Field(description="The Rego package whose deny or warn set held the entry.")
    subject: str = Field(description="The resource address or model the entry is about ('' when the rule gives none).")
    message: str = Field(description="What is wrong and how to fix it, as conftest prints it.")
    document: str = Field(description="The checked document: a stack name (hybrid-aws) or `plan`.")


@dataclass(frozen=True)
class Document:
    """One input to the rules: a synthesized stack or a placement."""

    namespace: Namespace
    name: str
    source: str
    content: dict[str, Any]


@dataclass(frozen=True)
class RegoTest:
    package: str
    rule: str
    file: str


@dataclass(frozen=True)
class TestRun:
    """Rego unit tests run: which failed, and which policy lines (or whole files) no test reached."""

    passed: tuple[RegoTest, ...]
    failed: tuple[tuple[RegoTest, str], ...]
    uncovered: dict[str, list[int]]
    unreached: tuple[str, ...]


def _reason(exc: Exception) -> str:
    """regorus's message on one line: `file:line:col: error`, without the code excerpt and backtrace."""
    text = str(exc).split("Stack backtrace:")[0].strip()
    located = _LOCATED_ERROR.search(text)
    return f"{located.group(1)}: {located.group(2).strip()}" if located else " ".join(text.split())


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; anything else in `override` replaces what `base` had."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def _read_data_file(path: Path) -> dict[str, Any]:
    """A policy data file, read as bounded as a fleet spec (orchestrator.spec.reader): size, nesting, aliases."""
    try:
        text = read_text(path, "policy data file")
        content = json.loads(text) if path.suffix == ".json" else parse_yaml(text, _display(path)).data
    except (InputError, ValueError, RecursionError) as exc:
        raise PolicyError(f"{_display(path)}: cannot read policy data ({' '.join(str(exc).split())}). To fix: make it valid JSON or YAML") from None
    if not isinstance(content, dict) or set(content) != {DATA_ROOT} or not isinstance(content[DATA_ROOT], dict):
        raise PolicyError(f"{_display(path)}: policy data files hold one mapping under `{DATA_ROOT}:`. "
                          f"To fix: nest its keys under `{DATA_ROOT}:`")
    return content[DATA_ROOT]


class PolicySet:
    """Rego modules and default data from policy directories, parsed once."""

    def __init__(self, directories: Iterable[Path], *, tests: bool = False):
        """Load every `.rego` below each directory (`*_test.rego` only with `tests`) and
        the default data in each directory's `data/` (JSON or YAML, keys under `gpufleet`)."""
        self._engine = regorus.Engine()
        self.files: list[Path] = []
        self.tests: list[RegoTest] = []
        self.defaults: dict[str, Any] = {}
        for directory in directories:
            if not directory.is_dir():
                raise PolicyError(f"policy directory {_display(directory)} does not exist. "
                                  "To fix: correct policies.paths in the spec (directories relative to where you run orchestrator)")
            for path in sorted(directory.rglob("*.rego")):
                is_test = path.name.endswith(TEST_SUFFIX)
                if is_test and not tests:
                    continue
                self._add_module(path, is_test)
            for path in sorted((directory / DATA_DIR).glob("*")):
                if path.suffix in (".json", ".yaml", ".yml"):
                    self.defaults = deep_merge(self.defaults, _read_data_file(path))
        packages = self._engine.get_packages()
        self.packages = {ns: sorted(p.removeprefix("data.") for p in packages if p.startswith(f"data.{ns}."))
                         for ns in get_args(Namespace)}

    def _add_module(self, path: Path, is_test: bool) -> None:
        text = path.read_text()
        try:
            self._engine.add_policy(_display(path), text)
        except RuntimeError as exc:
            raise PolicyError(f"{_reason(exc)}. To fix: correct the Rego (rules use `import rego.v1`; docs/policies.md)") from None
        if not is_test:
            self.files.append(path)
            return
        package = _PACKAGE.search(text)
        for rule in dict.fromkeys(_TEST_RULE.findall(text)):
            self.tests.append(RegoTest(package.group(1) if package else "", rule, _display(path)))

    def evaluate(self, documents: Iterable[Document], data: dict[str, Any]) -> list[Violation]:
        """Every deny and warn entry of every document, with `data` as `data.gpufleet`."""
        engine = self._engine.clone()
        engine.add_data({DATA_ROOT: data})
        violations: list[Violation] = []
        for document in documents:
            engine.set_input(document.content)
            try:
                answer = json.loads(engine.eval_query_as_json(f"data.{document.namespace}"))
            except RuntimeError as exc:
                raise PolicyError(f"evaluating the {document.namespace} rules on {document.name} failed: {_reason(exc)}. "
                                  "To fix: make the rule tolerate this input (docs/policies.md)") from None
            results = answer.get("result") or [{"expressions": [{"value": {}}]}]
            tree = results[0]["expressions"][0]["value"]
            violations += [_violation(entry, severity, package, document.name)
                           for package in self.packages[document.namespace]
                           for severity in SEVERITIES
                           for entry in _entries(tree, package, severity)]
        return violations

    def run_tests(self, tests: Iterable[RegoTest] | None = None, coverage: bool = True) -> TestRun:
        """Run `tests` (default: every `test_*` rule of the loaded `*_test.rego` files) with
        the default data; with `coverage`, report the policy lines they did not reach."""
        engine = self._engine.clone()
        engine.add_data({DATA_ROOT: self.defaults})
        engine.set_enable_coverage(coverage)
        passed, failed = [], []
        for test in self.tests if tests is None else tests:
            try:
                result = engine.eval_rule(f"data.{test.package}.{test.rule}")
            except RuntimeError as exc:
                failed.append((test, _reason(exc)))
                continue
            if result is True:
                passed.append(test)
            else:
                failed.append((test, "false or undefined"))
        uncovered: dict[str, list[int]] = {}
        unreached: tuple[str, ...] = ()
        if coverage:
            report = {f["path"]: f["not_covered"] for f in json.loads(engine.get_coverage_report_as_json())["files"]}
            policy_files = [_display(p) for p in self.files]
            uncovered = {path: report[path] for path in policy_files if report.get(path)}
            unreached = tuple(path for path in policy_files if path not in report)
        return TestRun(tuple(passed), tuple(failed), uncovered, unreached)


def _entries(tree: dict[str, Any], package: str, severity: Severity) -> list[Any]:
    """A package's `deny` or `warn` set in the namespace's evaluated tree (a set is a JSON list)."""
    node: Any = tree
    for part in package.split(".")[1:]:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    entries = node.get(severity) if isinstance(node, dict) else None
    return entries if isinstance(entries, list) else []


def _violation(entry: Any, severity: Severity, package: str, document: str) -> Violation:
    """conftest's entry shapes: a message string, or an object with `msg` (and gpufleet's rule, subject)."""
    if isinstance(entry, dict):
        return Violation(severity=severity, rule=str(entry.get("rule", package)), package=package,
                         subject=str(entry.get("subject", "")), message=str(entry.get("msg", entry)), document=document)
    return Violation(severity=severity, rule=package, package=package, subject="", message=str(entry), document=document)
