"""`terraform validate` on the AWS stacks, offline, against a filesystem mirror of the AWS provider.

The mirror is GPUFLEET_TERRAFORM_PLUGIN_MIRROR, else the first of Terraform's implied local
mirror directories holding hashicorp/aws; without one (or without terraform) the test skips.
The bindings pin the provider version they were generated for; a mirror may hold another
version, which is then validated in its place (same resources and arguments).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROVIDER = Path("registry.terraform.io") / "hashicorp" / "aws"


def _candidates() -> list[Path]:
    """GPUFLEET_TERRAFORM_PLUGIN_MIRROR, then Terraform's implied mirror directories on Unix."""
    if os.environ.get("GPUFLEET_TERRAFORM_PLUGIN_MIRROR"):
        return [Path(os.environ["GPUFLEET_TERRAFORM_PLUGIN_MIRROR"])]
    home = Path.home()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    data_dirs = (os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(os.pathsep)
    return [home / ".terraform.d" / "plugins", data_home / "terraform" / "plugins",
            *(Path(d) / "terraform" / "plugins" for d in data_dirs if d)]


def _mirror() -> tuple[Path, str] | None:
    for root in _candidates():
        versions = sorted((p.name for p in (root / PROVIDER).glob("*") if p.is_dir()), key=lambda v: tuple(map(int, v.split("."))))
        if versions:
            return root, versions[-1]
    return None


MIRROR = _mirror()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
@pytest.mark.skipif(MIRROR is None, reason="no offline mirror of hashicorp/aws: set GPUFLEET_TERRAFORM_PLUGIN_MIRROR to one")
def test_aws_stacks_are_valid_terraform(synthesized, tmp_path):
    root, version = MIRROR
    aws_stacks = [name for name in synthesized.names() if name.endswith("-aws")]
    assert aws_stacks
    cli_config = tmp_path / "terraformrc"
    cli_config.write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(cli_config), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    for name in aws_stacks:
        config = synthesized.json(name)
        config["terraform"]["required_providers"]["aws"]["version"] = version
        del config["terraform"]["backend"]  # validation needs no state
        workdir = tmp_path / name
        workdir.mkdir()
        (workdir / "main.tf.json").write_text(json.dumps(config))
        init = subprocess.run(["terraform", "init", "-backend=false", "-input=false", f"-plugin-dir={root}"],
                              cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
        assert init.returncode == 0, init.stdout + init.stderr
        validate = subprocess.run(["terraform", "validate", "-json"], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
        report = json.loads(validate.stdout)
        assert report["valid"], json.dumps(report["diagnostics"], indent=2)
