"""`terraform validate` of every stack of hybrid, offline, against a filesystem mirror of the providers it pins.

The mirror is GPUFLEET_TERRAFORM_PLUGIN_MIRROR, else the first of Terraform's implied local
mirror directories. A stack is validated against exactly the provider versions it pins (the
versions its cdktn-provider bindings were generated for); where the mirror lacks one, that
stack skips, naming the provider and version missing and what the mirror holds. A stack that
pins no provider (local-local) is validated wherever terraform is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REGISTRY = "registry.terraform.io"
STACKS = ["hybrid-aws", "hybrid-gcp", "hybrid-azure", "hybrid-onprem", "local-local"]


def _candidates() -> list[Path]:
    """GPUFLEET_TERRAFORM_PLUGIN_MIRROR, then Terraform's implied mirror directories on Unix."""
    if os.environ.get("GPUFLEET_TERRAFORM_PLUGIN_MIRROR"):
        return [Path(os.environ["GPUFLEET_TERRAFORM_PLUGIN_MIRROR"])]
    home = Path.home()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    data_dirs = (os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(os.pathsep)
    return [home / ".terraform.d" / "plugins", data_home / "terraform" / "plugins",
            *(Path(d) / "terraform" / "plugins" for d in data_dirs if d)]


def mirrored(root: Path, source: str) -> set[str]:
    """The versions of a provider (`hashicorp/aws`) in a mirror, unpacked (`<version>/<os_arch>/`) or packed (zips)."""
    directory = root / REGISTRY / source
    unpacked = {p.name for p in directory.glob("*") if p.is_dir()}
    packed = {m["version"] for p in directory.glob("*.zip")
              if (m := re.match(r"terraform-provider-[^_]+_(?P<version>[^_]+)_", p.name))}
    return unpacked | packed


MIRROR = next((root for root in _candidates() if (root / REGISTRY).is_dir()), None)


def pinned(config: dict) -> dict[str, str]:
    """The stack's providers (`hashicorp/<name>`, as the registry's short sources mean) and the versions it pins."""
    providers = config.get("terraform", {}).get("required_providers", {})
    return {(p["source"] if "/" in p["source"] else f"hashicorp/{p['source']}"): p["version"] for p in providers.values()}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
@pytest.mark.parametrize("stack", STACKS)
def test_stack_is_valid_terraform_with_the_providers_it_pins(synthesized, tmp_path, stack):
    config = synthesized.json(stack)
    wanted = pinned(config)
    if wanted:
        if MIRROR is None:
            pytest.skip(f"{stack} pins {', '.join(f'{s} {v}' for s, v in wanted.items())}, and there is no offline provider "
                        "mirror: set GPUFLEET_TERRAFORM_PLUGIN_MIRROR to one (`terraform providers mirror DIR` where the registry is reachable)")
        missing = {s: v for s, v in wanted.items() if v not in mirrored(MIRROR, s)}
        if missing:
            pytest.skip(f"{stack} pins {', '.join(f'{s} {v}' for s, v in missing.items())}; the mirror {MIRROR} holds "
                        + "; ".join(f"{s}: {', '.join(sorted(mirrored(MIRROR, s))) or 'no version'}" for s in missing)
                        + ". To run: add the pinned versions to the mirror (`terraform providers mirror DIR`)")
    del config["terraform"]["backend"]  # validation needs no state
    (tmp_path / "main.tf.json").write_text(json.dumps(config))
    cli_config = tmp_path / "terraformrc"
    cli_config.write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(cli_config), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    plugin_dir = [f"-plugin-dir={MIRROR}"] if wanted else []
    init = subprocess.run(["terraform", "init", "-backend=false", "-input=false", *plugin_dir],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stdout + init.stderr
    validate = subprocess.run(["terraform", "validate", "-json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads(validate.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
