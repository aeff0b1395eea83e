"""The README's console blocks, run: each command that works offline runs as written (bash, the venv on
PATH, a temporary working directory and GPUFLEET_HOME shared in README order), and what the README says
of it is checked; the others are listed with why they are not run. A command added to the README
without an entry here fails `test_every_readme_command_is_run_or_skipped_with_a_reason`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from orchestrator.spec import load_spec
from tests.conftest import ENVIRONMENTS, REPO


IMAGE = "registry.example.com/gpufleet/vllm@sha256:" + "0" * 64


@dataclass(frozen=True)
class Command:
    line: str  # as written after `$ `, without its comment
    shown: tuple[str, ...]  # the output the README shows under it ("..." at the end: the line goes on)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str
    cwd: Path


def readme_commands() -> list[Command]:
    commands: list[Command] = []
    for block in re.findall(r"```console\n(.*?)```", (REPO / "README.md").read_text(), re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append(Command(re.sub(r"\s+#.*$", "", line[2:]).strip(), ()))
            elif line.strip() and commands:
                commands[-1] = Command(commands[-1].line, (*commands[-1].shown, line))
    return commands


NOT_RUN = {
    "make run": "installs the pinned dependencies and starts CPU vLLM replicas (what the local-fleet tests do)",
    "make test": "the whole test suite, this test included",
    ". .venv/bin/activate": "shell setup: the commands here run with the venv's bin first on PATH",
    "orchestrator rebalance --env local --yes --measured-window 600": "starts real replicas and reads what they served: "
                                                                       "needs the running fleet",
    "orchestrator catalog refresh --provider azure": "calls Azure's Retail Prices API: needs the network",
    "orchestrator rollout --env local --model tiny-llama --to v2": "starts a second replica and judges it on live "
                                                                   "traffic: needs the running fleet "
                                                                   "(tests/orchestrator/rollout/test_rollout_local.py)",
}


def money(text: str) -> float:
    return float(text.replace(",", ""))


def validates_hybrid(r: Result) -> None:
    """'check a spec; tables of what the planner weighs': pools, replica capacity, RTTs, every pool named."""
    assert r.code == 0, r.err
    for title in ("Pools of 'hybrid'", "Replica capacity within each model's SLO", "RTT from user regions to pools"):
        assert title in r.out
    assert all(p.name in r.out for p in load_spec(ENVIRONMENTS / "hybrid.yaml").pools)


def plans_hybrid(r: Result) -> None:
    """'placement, cost per provider, savings vs baselines': the per-provider $/h add up to the plan's."""
    assert r.code == 0, r.err
    headline = re.match(r"hybrid: \$([\d,.]+)/h \(lower bound \$([\d,.]+)/h", r.out)
    assert headline, r.out.splitlines()[0]
    cost, bound = money(headline[1]), money(headline[2])
    by_provider = re.search(r"by provider: (.*)", r.out)[1]
    shares = [money(v) for v in re.findall(r"\$([\d,.]+)/h", by_provider)]
    assert len(shares) == 4 and sum(shares) == pytest.approx(cost, abs=0.02) and bound <= cost
    assert "Against the baselines" in r.out and re.search(r"\bsaving\b", r.out)


def writes_the_placement_contract(r: Result) -> None:
    """'the placement contract': plan.json validates against docs/placement.schema.json; its pools add up."""
    assert r.code == 0 and r.out == "", r.err
    placement = json.loads((r.cwd / "plan.json").read_text())
    jsonschema.validate(placement, json.loads((REPO / "docs" / "placement.schema.json").read_text()))
    assert placement["cost_per_hour"] == pytest.approx(sum(p["cost_per_hour"] for p in placement["pools"]), abs=1e-6)


def checks_stacks_and_plan(r: Result) -> None:
    """'Rego guardrails over the stacks and the plan': every provider's stack and the plan checked, none denied."""
    assert r.code == 0, r.err
    for stack in ("hybrid-onprem", "hybrid-aws", "hybrid-gcp", "hybrid-azure"):
        assert f"checked terraform {stack}:" in r.out
    assert "checked placement plan" in r.out and "✓ passed: 0 denials" in r.out


def synthesizes_terraform_json(r: Result) -> None:
    """'synthesize the node-pool stacks (Terraform JSON)': one stack per provider, each a Terraform JSON file."""
    assert r.code == 0, r.err
    stacks = r.out.strip().rpartition(": ")[2].split(", ")
    assert sorted(stacks) == ["hybrid-aws", "hybrid-azure", "hybrid-gcp", "hybrid-onprem"]
    for stack in stacks:
        assert "resource" in json.loads((r.cwd / "cdktf.out" / "stacks" / stack / "cdk.tf.json").read_text())


def renders_workloads_per_cluster(r: Result) -> None:
    """'replica workloads per cluster (kustomize)': one kustomization per cluster the stored plan runs replicas in."""
    assert r.code == 0, r.err
    placement = json.loads((r.cwd / "plan.json").read_text())  # the latest stored plan: plan --format json saved it
    running = {row["pool"] for row in placement["replicas"] if row["count"]}
    clusters = {p.cluster for p in load_spec(ENVIRONMENTS / "hybrid.yaml").pools if p.name in running}
    assert {k.parent.name for k in (r.cwd / "gitops").glob("*/kustomization.yaml")} == clusters
    assert f"for {len(clusters)} clusters under gitops" in r.err


def previews_the_move(r: Result) -> None:
    """'the move, its steps and $/h' (and, being a dry run, nothing started: see status)."""
    assert r.code == 0, r.err
    assert re.search(r"^\s*\$/h\s+[\d.]+\s+[\d.]+\s*$", r.out, re.M)
    assert re.search(r"^\s*1\. pool local → 1 nodes$", r.out, re.M) and re.search(r"^\s*2\. start 1 × tiny-llama", r.out, re.M)


def shows_status(r: Result) -> None:
    """'gateway, pools, replicas, drift': here the dry run above started nothing."""
    assert r.code == 0, r.err
    assert r.out.startswith("local: $0.000/h; gateway not running")
    assert all(column in r.out for column in ("healthy nodes", "requested", "model", "url", "pid", "restarts"))
    for pool in load_spec(ENVIRONMENTS / "local.yaml").pools:
        assert re.search(rf"│ {re.escape(pool.name)}\s+│\s+0 │\s+0 │", r.out), r.out  # its nodes: none started


def shows_catalog_offers(r: Result) -> None:
    """Only GCP's H100 offers in europe-west4, as many rows as it says match."""
    assert r.code == 0, r.err
    rows = [line for line in r.out.splitlines() if re.match(r"\s+gcp\s+europe-west4-\w\s", line)]
    assert rows and all("H100" in row for row in rows)
    assert f"{len(rows)} offers match" in r.out


def reports_every_problem_in_one_run(r: Result) -> None:
    """Exit 2, one line per problem (the lines shown are checked for every command)."""
    assert r.code == 2 and r.out == ""


BROKEN = (("    min_nodes: 0\n    max_nodes: 4\n    cluster: eks-prod-use1", "    min_nodes: 5\n    max_nodes: 4\n    cluster: eks-prod-use1"),
          ("instance_type: g6.12xlarge", "instance_type: g6.12xlarg"))
"""broken.yaml as the README describes it: hybrid.yaml with min_nodes 5 in its second pool, the L4 pool's type mistyped."""


def write_broken(cwd: Path) -> None:
    text = (ENVIRONMENTS / "hybrid.yaml").read_text()
    for old, new in BROKEN:
        assert old in text
        text = text.replace(old, new, 1)
    (cwd / "broken.yaml").write_text(text)


RUN: dict[str, Callable[[Result], None]] = {
    "orchestrator validate --env hybrid": validates_hybrid,
    "orchestrator plan --env hybrid": plans_hybrid,
    "orchestrator plan --env hybrid --format json > plan.json": writes_the_placement_contract,
    "orchestrator policy check --env hybrid": checks_stacks_and_plan,
    "python -m stacks --env hybrid": synthesizes_terraform_json,
    "orchestrator manifests --env hybrid --out gitops/": renders_workloads_per_cluster,
    "orchestrator rebalance --env local --dry-run": previews_the_move,
    "orchestrator status --env local": shows_status,
    "orchestrator catalog show --gpu H100 --provider gcp --region europe-west4": shows_catalog_offers,
    "orchestrator validate --spec broken.yaml": reports_every_problem_in_one_run,
}
PREPARE: dict[str, Callable[[Path], None]] = {"orchestrator validate --spec broken.yaml": write_broken}


def test_every_readme_command_is_run_or_skipped_with_a_reason() -> None:
    written = [c.line for c in readme_commands()]
    unlisted = [line for line in written if line not in RUN and line not in NOT_RUN]
    assert not unlisted, f"README commands neither run nor skipped with a reason (add them to RUN or NOT_RUN): {unlisted}"
    gone = [line for line in (*RUN, *NOT_RUN) if line not in written]
    assert not gone, f"no longer in the README (drop them here): {gone}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A working directory as the README assumes (the repository's environments/, policies/ and stacks/ in it,
    so what the commands write lands here) and one GPUFLEET_HOME for the whole README, in its order."""
    cwd = tmp_path_factory.mktemp("readme")
    for name in ("environments", "policies", "stacks"):
        (cwd / name).symlink_to(REPO / name)
    env = {key: value for key, value in os.environ.items() if not key.startswith("GPUFLEET_") and key != "COLUMNS"}
    env |= {"GPUFLEET_HOME": str(tmp_path_factory.mktemp("readme-home")),
            "GPUFLEET_KUBERNETES_IMAGE": IMAGE,  # set as the README's Configuration says, to render manifests
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    return cwd, env


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in readme_commands() if c.line in RUN], ids=lambda c: c.line)
def test_readme_command_does_what_the_readme_says(command: Command, workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    if command.line in PREPARE:
        PREPARE[command.line](cwd)
    done = subprocess.run(["bash", "-c", command.line], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    result = Result(done.returncode, done.stdout, done.stderr, cwd)
    RUN[command.line](result)
    printed = (done.stdout + done.stderr).splitlines()
    for shown in command.shown:
        head = shown.removesuffix("...").rstrip()
        assert any(line == shown or (shown.endswith("...") and line.startswith(head)) for line in printed), \
            f"the README shows {shown!r} under `{command.line}`; it printed:\n" + "\n".join(printed)
