"""One Pulumi stack's program: the environment's pools of one provider, rendered from `stacks.facts`.

A Pulumi stack is named like its CDK Terrain twin, `<env>-<provider>` (`hybrid-aws`). Each
provider module offers `providers(pools)` (one provider resource per region, site or
account) and `declare(pool, provider)`; the stack exports `pools`, each pool's main
resource id. Local pools run on this machine and declare nothing.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pulumi

from orchestrator.cli.common import spec_path
from orchestrator.errors import InputError
from stacks.environment import Environment, load_environment

REPO = Path(__file__).resolve().parents[2]
MODULES = {"aws": "stacks.pulumi.aws", "gcp": "stacks.pulumi.gcp", "azure": "stacks.pulumi.azure", "onprem": "stacks.pulumi.onprem"}


def declare_stack(environment: Environment, provider: str) -> None:
    """Declare the environment's pools of `provider` in the current Pulumi stack."""
    pools = environment.by_provider().get(provider)
    if not pools:
        raise InputError(f"environment '{environment.name}' has no {provider} pools. "
                         f"To fix: name a stack after a provider it has: {', '.join(environment.by_provider())}")
    if provider not in MODULES:
        pulumi.export("pools", {p.name: p.name for p in pools})
        return
    module = importlib.import_module(MODULES[provider])
    providers = module.providers(pools)
    pulumi.export("pools", {p.name: module.declare(p, providers[p.name]).id for p in pools})
    if hasattr(module, "declare_shared"):  # what the provider's pools share: the replicas' workload identity
        module.declare_shared(pools, environment.sources, providers)


def split_stack_name(stack: str) -> tuple[str, str]:
    """`hybrid-aws` -> ("hybrid", "aws"); the provider is the last dash-separated part."""
    environment, _, provider = stack.rpartition("-")
    if not environment or provider not in (*MODULES, "local"):
        raise InputError(f"Pulumi stack '{stack}' is not <environment>-<provider> with provider one of "
                         f"{', '.join((*MODULES, 'local'))}. To fix: `pulumi stack init hybrid-aws`, say")
    return environment, provider


def main() -> None:
    """What `pulumi up` runs: the stack's name says environment and provider; config `gpufleet:spec`
    may name the spec file (default: environments/<environment>.yaml). Paths are taken from the
    repository, as `python -m stacks` takes them, not from this directory, where Pulumi starts."""
    os.chdir(REPO)
    environment_name, provider = split_stack_name(pulumi.get_stack())
    spec = pulumi.Config("gpufleet").get("spec")
    path = spec_path(None, Path(spec)) if spec else spec_path(environment_name, None)
    declare_stack(load_environment(path), provider)
