"""Fuzzing fleet specs through `plan`: hostile files end in exit 0, 1 or 2 (never a traceback), within bounded
time and memory, with nothing written unless the plan succeeded, and no NaN or Infinity in any JSON."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import ENVIRONMENTS, REPO

BASE = (ENVIRONMENTS / "local.yaml").read_text()
LINES = BASE.splitlines()
VALUE_LINES = [i for i, line in enumerate(LINES) if re.match(r"^\s*(- )?[a-z_]+: [^#\s]", line)]
HOSTILE_VALUES = [
    ".inf", "-.inf", ".nan", ".NaN", "1e308", "-1e308", "1e-300", "-1", "0", "-0.0", "2.5", "'5'", "true", "yes",
    "no", "off", "1:30", "0x1F", "0o17", "~", "null", "''", "[]", "{}", "9" * 400, "2024-01-01", "..", "../../etc",
    "a" * 3000, "!!binary aGVsbG8=", "!!python/object/apply:os.system [echo]", "!custom x", "*undefined", "&a [*a]",
    "\"\\0\\x01\"", "{a: 1, a: 2}", "[" * 300,
]
BENIGN_VALUES = ["0", "1", "2", "0.5", "1e-300", "1e-9"]  # in range for some fields: plans that succeed
BOMB = ("policies:\n  data:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"    b{i}: &b{i} [{', '.join(['*a' if i == 0 else f'*b{i - 1}'] * 10)}]\n" for i in range(7)))
APPENDIX = [BOMB, "policies:\n  data: &r {self: *r}\n", "policies:\n  data:\n    deep: " + "[" * 2000 + "]" * 2000 + "\n",
            "pools: []\n", "budget: {usd_per_hour: .inf}\n", "policies:\n  data: {n: .nan}\n"]
FILE_NAMES = ["spec.yaml", "...yaml", "..yaml", "A B.yaml", "-x.yaml", "ok.yml"]


def not_finite(constant: str) -> float:
    raise AssertionError(f"JSON holds {constant}")


@st.composite
def hostile_specs(draw: st.DrawFn) -> str:
    """local.yaml with up to three mutations: a value replaced (by a hostile, a benign or a random one), a line
    repeated or dropped, a hostile appendix, random text spliced in, or the file cut short."""
    lines = list(LINES)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["value", "benign value", "text value", "repeat", "drop", "append", "splice", "cut"]))
        at = draw(st.sampled_from([i for i in VALUE_LINES if i < len(lines)] or [len(lines)]))
        if kind in ("value", "benign value", "text value"):
            key = lines[at].split(":")[0] if at < len(lines) else "x"
            value = (draw(st.sampled_from(HOSTILE_VALUES)) if kind == "value" else draw(st.sampled_from(BENIGN_VALUES))
                     if kind == "benign value" else draw(st.text(max_size=40).filter(lambda t: "\n" not in t and "\r" not in t)))
            lines[at:at + 1] = [f"{key}: {value}"]
        elif kind == "repeat" and at < len(lines):
            lines.insert(at, lines[at])
        elif kind == "drop" and at < len(lines):
            del lines[at]
        elif kind == "append":
            lines.append(draw(st.sampled_from(APPENDIX)))
        elif kind == "splice":
            lines.insert(at, draw(st.text(max_size=60)))
        else:
            lines = lines[: draw(st.integers(0, len(lines)))]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def bounded_memory(extra_bytes: int = 2 << 30) -> Iterator[None]:
    """This process may map at most `extra_bytes` more while inside (RLIMIT_AS): an input that would exhaust
    the host raises MemoryError here instead."""
    vm = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
              if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run(*argv: str) -> tuple[int, str, str]:
    """The CLI in-process under `bounded_memory`; an exception other than SystemExit (a traceback) fails the
    test where it is raised."""
    from orchestrator.cli import main

    out, err = io.StringIO(), io.StringIO()
    with bounded_memory(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # policies are read from where orchestrator runs


@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile_specs(), name=st.sampled_from(FILE_NAMES))
def test_plan_of_a_hostile_spec_fails_cleanly_or_plans_finitely(text: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as scratch, mock.patch.dict(os.environ, {"GPUFLEET_HOME": str(Path(scratch) / "home")}):
        spec = Path(scratch) / name
        spec.write_text(text, encoding="utf-8", errors="surrogatepass")
        started = time.monotonic()
        code, out, err = run("plan", "--spec", str(spec), "--format", "json")
        assert time.monotonic() - started < 10
        assert code in (0, 1, 2), err
        assert "Traceback" not in err
        event(f"exit {code}")
        document = json.loads(out, parse_constant=not_finite)  # stdout is JSON, an error too, never NaN
        home = Path(scratch) / "home"
        written = [p for p in home.rglob("*") if p.is_file()] if home.exists() else []
        if code:
            assert set(document) == {"error"} and written == []
        else:
            assert written and all(json.loads(p.read_text(), parse_constant=not_finite) for p in written if p.suffix == ".json")


CASES = {
    "alias bomb": lambda d: _write(d, BASE + BOMB),
    "recursive alias": lambda d: _write(d, "a: &a [*a]\n"),
    "deep nesting": lambda d: _write(d, "a: " + "[" * 100_000 + "\n"),
    "dev zero": lambda d: "/dev/zero",
    "fifo": lambda d: (os.mkfifo(Path(d) / "fifo.yaml"), str(Path(d) / "fifo.yaml"))[1],
    "50 MB": lambda d: (os.truncate(_write(d, ""), 50 << 20), str(Path(d) / "spec.yaml"))[1],
    "inf rate": lambda d: _write(d, BASE.replace("requests_per_second: 0.5", "requests_per_second: .inf")),
    "huge cost": lambda d: _write(d, BASE.replace("cost_per_hour: 0.05", "cost_per_hour: 1e308")),
}


def _write(directory: str, text: str) -> str:
    path = Path(directory) / "spec.yaml"
    path.write_text(text)
    return str(path)


DRIVER = """
import contextlib, io, json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
from orchestrator.cli import main
results = {}
for name, spec in json.loads(sys.argv[2]).items():
    out, err, started = io.StringIO(), io.StringIO(), time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["validate", "--spec", spec, "--format", "json"])
            code = 0
        except SystemExit as exc:
            code = exc.code
    results[name] = {"code": code, "seconds": time.monotonic() - started, "err": err.getvalue()}
print(json.dumps(results))
"""


def test_the_known_host_exhausting_specs_fail_fast_under_a_memory_limit(tmp_path: Path) -> None:
    """Each of the issue's host-exhausting inputs, run by the CLI in one process limited to 2 GiB of address space."""
    specs = {name: make(str(tmp_path)) for name, make in CASES.items()}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(2 << 30), json.dumps(specs)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "GPUFLEET_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.splitlines()[-1])
    assert {name: r["code"] for name, r in results.items()} == dict.fromkeys(CASES, 2)
    assert all(r["seconds"] < 5 and "Traceback" not in r["err"] for r in results.values()), results
    assert not (tmp_path / "home").exists()
