"""One environment's pools, as every back end declares them: loaded and checked once, engine-free.

Specs are loaded and resolved exactly as `orchestrator validate` does, so a bad spec fails
with the same located messages (a `SpecError`) before any engine (jsii, Pulumi) starts; the
stacks add their own checks (a cluster per pool, state backend names the clouds accept).
Stacks are one per environment x provider, named `<env>-<provider>` by both back ends.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from orchestrator.catalog.price_catalog import PriceCatalog, load_price_catalog
from orchestrator.errors import SpecError
from orchestrator.inputs import load_inputs
from orchestrator.settings import load_settings
from orchestrator.spec.loader import line_map, locate
from orchestrator.spec.models import StateBackend
from stacks.pools import PoolDeclaration, declare_pools
from stacks.state import state_issues

PROVIDER_ORDER = ("onprem", "aws", "gcp", "azure", "local")


@dataclass(frozen=True)
class Environment:
    """One environment's pools, as the stacks declare them."""

    name: str
    pools: tuple[PoolDeclaration, ...]
    state: StateBackend  # where the stacks keep their Terraform state (stacks.state)

    def by_provider(self) -> dict[str, list[PoolDeclaration]]:
        groups: dict[str, list[PoolDeclaration]] = defaultdict(list)
        for pool in self.pools:
            groups[pool.pool.provider].append(pool)
        return {p: groups[p] for p in PROVIDER_ORDER if p in groups}


def load_environment(path: Path, catalog: PriceCatalog | None = None) -> Environment:
    """Load, validate and resolve one spec file; every problem is reported with its line."""
    catalog = catalog or load_price_catalog(load_settings().catalog_dir)
    spec, inputs = load_inputs(path, catalog)
    name = spec.environment or path.stem
    try:
        pools = declare_pools(spec, inputs, str(path))
        issues = state_issues(spec.stacks.state, name, {p.provider for p in spec.pools})
        if issues:
            raise SpecError(str(path), issues)
    except SpecError as exc:
        raise SpecError(str(path), locate(exc.issues, line_map(path.read_text()))) from None
    return Environment(name, tuple(pools), spec.stacks.state)


def stack_name(environment: str, provider: str) -> str:
    return f"{environment}-{provider}"
