"""`npx cdktn synth` runs the same app through cdktf.json (needs scripts/setup_stacks.sh to have run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

CLI = REPO / "node_modules" / ".bin" / "cdktn"


@pytest.mark.slow
@pytest.mark.skipif(not CLI.exists(), reason="the cdktn CLI is not installed: run scripts/setup_stacks.sh")
@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (npm) is not on PATH")
def test_cli_synth_writes_every_stack(tmp_path):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # the app's `python` is this venv's
        "CHECKPOINT_DISABLE": "1",  # no version check against HashiCorp's servers
        "GPUFLEET_HOME": str(tmp_path / "home"),
    }
    result = subprocess.run(["npx", "--no-install", "cdktn", "synth", "--output", str(tmp_path / "out")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {"hybrid-aws", "hybrid-gcp", "hybrid-azure", "hybrid-onprem", "local-local"} <= set(manifest["stacks"])
    assert (tmp_path / "out" / "stacks" / "hybrid-aws" / "cdk.tf.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not CLI.exists(), reason="the cdktn CLI is not installed: run scripts/setup_stacks.sh")
@pytest.mark.skipif(shutil.which("npx") is None or shutil.which("terraform") is None, reason="npx or terraform is not on PATH")
def test_cli_diff_runs_with_the_local_backend_and_no_cloud_account(tmp_path):
    """`terraform plan` of the stack that needs no provider plugin (the others need the pinned providers,
    which are downloads: see test_terraform_validate.py), with its state in a local file."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CHECKPOINT_DISABLE": "1", "GPUFLEET_HOME": str(tmp_path / "home"), "GPUFLEET_STACKS_BACKEND": "local",
        "TF_IN_AUTOMATION": "1",
    }
    result = subprocess.run(["npx", "--no-install", "cdktn", "diff", "local-local", "--output", str(tmp_path / "out")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Changes to Outputs" in result.stdout and (tmp_path / "out" / "stacks" / "local-local" / "plan").is_file()
    for stack in ("hybrid-aws", "hybrid-gcp", "hybrid-azure", "hybrid-onprem"):  # every stack was synthesized for it
        backend = json.loads((tmp_path / "out" / "stacks" / stack / "cdk.tf.json").read_text())["terraform"]["backend"]
        assert list(backend) == ["local"]
