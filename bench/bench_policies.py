"""How fast the policy gate answers over an environment's synthesized stacks and plan.

    python -m bench.bench_policies

Every terraform rule runs over each stack, every placement rule over the plan.
`orchestrator policy check` runs after synth and before every rebalance, so on the hybrid
environment (4 stacks, 7 cloud GPU pools, 8 pools in the plan) it must answer in under a
second. The stacks are the real synth output under cdktf.out/stacks when there is one,
else the realistic fixtures the tests use (said on the line). A fleet 25x the size shows
how the rules scale. Each line prints the measurement and its ratio to the target.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from orchestrator.planner.placement import Placement
from orchestrator.policy import PolicySet, check_environment, load_policies
from orchestrator.policy.data import policy_data
from orchestrator.policy.documents import placement_document, read_stack, stack_files
from orchestrator.spec import load_spec

from bench.bench_inputs import best_of, report

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "environments" / "hybrid.yaml"
FIXTURES = REPO / "tests" / "policies" / "fixtures" / "hybrid"
PLAN = FIXTURES / "plan.json"
SCALE = 25


def stacks_dir() -> tuple[Path, str]:
    """The real synth output of the hybrid environment when present, else the test fixtures."""
    synthesized = REPO / "cdktf.out" / "stacks"
    if stack_files(synthesized, "hybrid"):
        return synthesized, "synthesized"
    return FIXTURES / "stacks", "fixtures"


def scaled(document: dict, copies: int) -> dict:
    """A stack or plan with every resource (or pool row) repeated `copies` times under new names."""
    out = copy.deepcopy(document)
    if "resource" in document:
        text = json.dumps(document["resource"])
        names = [name for resources in document["resource"].values() for name in resources]
        out["resource"] = {}
        for i in range(copies):
            copy_text = text
            for name in names:
                copy_text = copy_text.replace(name, f"{name}-{i}")
            for kind, resources in json.loads(copy_text).items():
                out["resource"].setdefault(kind, {}).update(resources)
        return out
    for key in ("pools", "capacity", "latency", "replicas", "routes"):
        out[key] = [{**row, "pool": f"{row['pool']}-{i}"} for i in range(copies) for row in document[key]]
    return out


def main() -> None:
    print(__doc__.splitlines()[0])
    print(f"python {sys.version.split()[0]}; best of several runs\n")
    spec = load_spec(SPEC)
    directory, origin = stacks_dir()
    report("load rules + data (policies/, parse only)", best_of(5, lambda: load_policies(spec, REPO)), 0.2)

    def check() -> None:
        check_environment(spec, SPEC, REPO, plan_file=PLAN, stacks_dir=directory)

    report(f"policy check: hybrid, {len(stack_files(directory, 'hybrid'))} stacks ({origin}) + plan", best_of(5, check), 1.0)

    policies = PolicySet([REPO / "policies"])
    data = policy_data(spec, policies.defaults)
    stacks = [read_stack(f) for f in stack_files(directory, "hybrid")]
    plan = placement_document(Placement.model_validate(json.loads(PLAN.read_text())), spec, str(PLAN))
    big = [type(d)(d.namespace, d.name, d.source, scaled(d.content, SCALE)) for d in [*stacks, plan]]
    pools = sum(len(d.content["resource"].get(kind, {})) for d in big[:-1]
                for kind in ("aws_eks_node_group", "google_container_node_pool", "azurerm_kubernetes_cluster_node_pool"))
    report(f"evaluate only: {SCALE}x hybrid ({pools} GPU pools, {len(big[-1].content['pools'])} plan pools)",
           best_of(3, lambda: policies.evaluate(big, data)), 5.0)

    command = [sys.executable, "-c", "from orchestrator.cli.policy import app; app()", "check", "--env", "hybrid",
               "--plan", str(PLAN), "--stacks", str(directory), "--format", "json"]
    def cold_check() -> None:
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if done.returncode not in (0, 1):  # 1: a deny fired, still a full check
            raise SystemExit(f"policy check failed to run: {done.stderr.strip()}")

    report("cold process: policy check --env hybrid (imports included)", best_of(3, cold_check), 2.0)


if __name__ == "__main__":
    main()
