"""The safe YAML reader: YAML 1.2, duplicate keys, bounded aliases and nesting, regular files of bounded size."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from orchestrator.errors import InputError, SpecError
from orchestrator.spec import load_spec, parse_spec
from orchestrator.spec.reader import MAX_BYTES, MAX_DEPTH, MAX_NODES, parse_yaml, read_text

LOCAL = (Path(__file__).parents[3] / "environments" / "local.yaml").read_text()


def issue(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "env.yaml")
    return "\n".join(i.render("env.yaml") for i in caught.value.issues)


def test_yaml_1_2_scalars() -> None:
    data = parse_yaml("a: 1:30\nb: yes\nc: off\nd: 0o17\ne: 017\nf: true\n", "f").data
    assert data == {"a": "1:30", "b": "yes", "c": "off", "d": 15, "e": 17, "f": True}


def test_sexagesimal_count_is_not_90() -> None:
    assert "pools[0].max_nodes: Input should be a valid integer (got '1:30')" in issue(LOCAL.replace("max_nodes: 1", "max_nodes: 1:30"))


def test_boolean_is_not_a_count() -> None:
    assert "pools[0].min_nodes: Input should be a valid integer (got True)" in issue(LOCAL.replace("min_nodes: 1", "min_nodes: true"))


def test_duplicate_key_names_both_lines() -> None:
    text = LOCAL.replace("    max_nodes: 1\n", "    max_nodes: 1\n    max_nodes: 2\n", 1)
    first = text.splitlines().index("    max_nodes: 1") + 1
    assert issue(text) == f"env.yaml:{first + 1}: pools[0].max_nodes: duplicate key 'max_nodes' (lines {first} and {first + 1}); allowed: each key once per mapping"


def test_alias_bomb_is_refused_before_it_is_built() -> None:
    rows = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    started = time.monotonic()
    message = issue("\n".join(rows) + "\n")
    assert f"more than {MAX_NODES:,} values with every alias expanded" in message
    assert time.monotonic() - started < 2


def test_alias_bomb_in_policies_data() -> None:
    names = ["a", "b1", "b2", "b3", "b4", "b5", "b6"]
    bomb = "policies:\n  data:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    bomb += "".join(f"    {name}: &{name} [{', '.join(['*' + previous] * 10)}]\n" for previous, name in zip(names, names[1:]))
    assert "values with every alias expanded" in issue(LOCAL + bomb)


def test_modest_aliases_are_fine() -> None:
    data = parse_yaml("a: &a {x: 1}\nb: *a\nc: [*a, *a]\n", "f").data
    assert data == {"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 1}]}


def test_recursive_alias_is_a_cycle_not_a_recursion_error() -> None:
    assert "alias *a refers to a node that contains it" in issue("a: &a [*a]\n")
    assert "alias *m refers to a node that contains it" in issue("a: &m {b: {c: *m}}\n")


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000 + "\n",
                                  "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)) + "  " * 200 + "v\n"])
def test_deep_nesting_is_bounded(text: str) -> None:
    assert f"nested more than {MAX_DEPTH} levels deep" in issue(text)


def test_explicit_python_tag_is_refused() -> None:
    assert "not allowed in a spec" in issue("a: !!python/object/apply:os.system [echo]\n")


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("requests_per_second: 0.5", "requests_per_second: .inf", "demand[0].requests_per_second: Input should be a finite number (got inf)"),
    ("cost_per_hour: 0.05", "cost_per_hour: .nan", "pools[0].cost_per_hour: Input should be a finite number (got nan)"),
])
def test_non_finite_numbers_are_refused(old: str, new: str, expected: str) -> None:
    assert expected in issue(LOCAL.replace(old, new))


def test_huge_numbers_are_out_of_range() -> None:
    assert "less than or equal to 10000 (got 1e+308)" in issue(LOCAL.replace("cost_per_hour: 0.05", "cost_per_hour: 1e308"))
    assert "policies.data" in issue(LOCAL + "policies:\n  data: {ceiling: .inf}\n")
    assert "policies.data" in issue(LOCAL + f"policies:\n  data: {{ceiling: {10**400}}}\n")


def test_file_named_dots_yaml_is_not_an_environment(tmp_path: Path) -> None:
    path = tmp_path / "...yaml"
    path.write_text(LOCAL.replace("environment: local\n", ""))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "environment: required: the file name '..' is not an environment name" in str(caught.value)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(_error_of(fifo)), daemon=True)
    worker.start()
    worker.join(5)
    assert result and "not a regular file (a FIFO)" in result[0]


def test_dev_zero_and_directories_are_refused() -> None:
    assert "not a regular file (a character device)" in _error_of(Path("/dev/zero"))
    assert "not a regular file (a directory)" in _error_of(Path(__file__).parent)


def test_large_file_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(50 << 20)  # 50 MB, sparse: refused from its size, never read
    started = time.monotonic()
    assert f"too large for a fleet spec. To fix: pass a regular fleet spec of at most {MAX_BYTES // 1024} KiB" in _error_of(path)
    assert time.monotonic() - started < 1


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert "not UTF-8 text" in _error_of(path)


def _error_of(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        read_text(path, "fleet spec")
    return str(caught.value)


def test_policy_data_files_are_read_as_safely(tmp_path: Path) -> None:
    from orchestrator.policy.engine import PolicySet
    from orchestrator.policy.errors import PolicyError

    (tmp_path / "data").mkdir()
    names = ["a", *[f"b{i}" for i in range(7)]]
    (tmp_path / "data" / "bomb.yaml").write_text(
        "gpufleet:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"  {name}: &{name} [{', '.join(['*' + previous] * 10)}]\n" for previous, name in zip(names, names[1:])))
    with pytest.raises(PolicyError, match="values with every alias expanded"):
        PolicySet([tmp_path])
