"""The stacks of every environment, synthesized once per test session (about two seconds)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ENVIRONMENTS

# Debian's Node 20 makes the jsii kernel print an end-of-life banner on every start.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass
class Synth:
    """A synthesized app: its output directory, its stacks and their Terraform JSON."""

    outdir: Path
    app: object
    pools: dict  # pool name -> PoolDeclaration, every environment

    def stack(self, name: str) -> object:
        return self.app.node.find_child(name)

    def json(self, name: str) -> dict:
        return json.loads((self.outdir / "stacks" / name / "cdk.tf.json").read_text())

    def names(self) -> list[str]:
        return sorted(p.name for p in (self.outdir / "stacks").iterdir())


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every environment in environments/, synthesized with the bundled catalog and an empty home."""
    from stacks.app import build_app, load_environment

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GPUFLEET_HOME", str(tmp_path_factory.mktemp("home")))
        environments = [load_environment(path) for path in sorted(ENVIRONMENTS.glob("*.yaml"))]
    outdir = tmp_path_factory.mktemp("cdktf.out")
    app = build_app(environments, str(outdir))
    app.synth()
    return Synth(outdir, app, {p.name: p for e in environments for p in e.pools})

