"""The CDK Terrain app: one stack per environment x provider, read from the fleet specs.

Each stack (`hybrid-aws`, `hybrid-gcp`, `hybrid-azure`, `hybrid-onprem`, `local-local`)
declares its environment's pools of one provider with that provider's construct, keeps
its state in that provider's backend (`stacks.state`; a local file with `local_state`), and outputs `pools`: per pool,
the identifiers `rebalance` needs to resize it (cluster, node pool, region, resource id).
Local pools run on this machine; their stack declares nothing and only outputs them, so
every environment is read the same way.

Specs are loaded by `stacks.environment` (shared with the Pulumi back end), so a bad spec
fails with the orchestrator's located messages before jsii is involved. Each provider's
bindings load when its first stack is built, and only then.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from cdktn import App, TerraformOutput, TerraformStack
from constructs import Construct

from orchestrator.errors import InputError
from stacks import bindings
from stacks.backends import attach_backend
from stacks.environment import Environment, load_environment, stack_name
from stacks.pools import PoolDeclaration
from stacks.state import backend_for

__all__ = ["Environment", "FleetStack", "build_app", "load_environment", "stack_name"]

# provider -> (module, construct class); imported when a stack of that provider is built
CONSTRUCTS = {
    "aws": ("stacks.aws", "AwsGpuPool"),
    "gcp": ("stacks.gcp", "GcpGpuPool"),
    "azure": ("stacks.azure", "AzureGpuPool"),
    "onprem": ("stacks.onprem", "OnpremGpuPool"),
}
PROJECT_FILE = Path(__file__).resolve().parent.parent / "cdktf.json"


def local_identifiers(pool: PoolDeclaration) -> dict[str, str]:
    """A local pool needs no cloud identifiers: it is this machine."""
    return {"provider": "local", "region": pool.pool.region, "cluster": "", "node_pool": pool.name}


class FleetStack(TerraformStack):
    """One environment's pools of one provider."""

    def __init__(self, scope: Construct, environment: Environment, provider: str, pools: list[PoolDeclaration], *,
                 local_state: bool = False):
        name = stack_name(environment.name, provider)
        super().__init__(scope, name)
        attach_backend(self, backend_for(name, provider, pools, environment.state, local=local_state))
        identifiers = {}
        if provider in CONSTRUCTS:
            module_name, class_name = CONSTRUCTS[provider]
            module = importlib.import_module(module_name)
            construct = getattr(module, class_name)
            providers = module.providers(self, pools)
            for pool in pools:
                identifiers[pool.name] = construct(self, pool.name, pool, providers[pool.name]).identifiers
        else:
            identifiers = {pool.name: local_identifiers(pool) for pool in pools}
        TerraformOutput(self, "pools", value=identifiers,
                        description="Per pool: what rebalance needs to find and resize it (see docs/stacks.md)")


def project_context() -> dict:
    """The context the CLI hands the app from cdktf.json (its `context` and `targetVersions`),
    so `python -m stacks` synthesizes and validates exactly as `cdktn synth` does."""
    project = json.loads(PROJECT_FILE.read_text())
    return {**project.get("context", {}), "targetVersions": project["targetVersions"]}


def build_app(environments: list[Environment], outdir: str | None = None, *, trim: bool = True,
              local_state: bool = False) -> App:
    """An app with every stack of the environments. Without `outdir`, cdktn's default: the CLI's
    CDKTF_OUTDIR, else `cdktf.out`. `trim=False` loads whole provider assemblies (benchmarks only).
    `local_state`: every stack keeps its state in a local file (trying it out, no cloud account)."""
    names = [e.name for e in environments]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"more than one spec declares environment {', '.join(repr(n) for n in twice)}; stack names would clash. "
                         "To fix: give each spec its own `environment:` name")
    if outdir:
        Path(outdir).mkdir(parents=True, exist_ok=True)  # cdktn creates only the last level
    app = App(outdir=outdir, context=project_context()) if outdir else App(context=project_context())
    for environment in environments:
        for provider, pools in environment.by_provider().items():
            if not trim and provider in bindings.PACKAGES:
                bindings.load_provider(provider, trim=False)
            FleetStack(app, environment, provider, pools, local_state=local_state)
    return app
