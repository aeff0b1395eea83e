"""Cross-field checks of a fleet spec that need nothing but the spec itself.

Each check yields `SpecIssue`s pointing at the exact field, so the user sees every
problem of a file in one run instead of fixing them one at a time.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterator

from orchestrator.errors import SpecIssue
from orchestrator.spec.models import FleetSpec, Pool

OWNED_PROVIDERS = ("onprem", "local")


def did_you_mean(name: str, known: object) -> str:
    """' Did you mean 'x'?' for the closest known names, or '' when none is close."""
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)  # type: ignore[arg-type]
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _duplicates(kind: str, names: list[str]) -> Iterator[SpecIssue]:
    counts = Counter(names)
    for index, name in enumerate(names):
        if counts[name] > 1 and names.index(name) != index:
            yield SpecIssue(f"{kind}[{index}].name", f"duplicate name '{name}' (first at {kind}[{names.index(name)}]); names must be unique")


def _pool_issues(index: int, pool: Pool) -> Iterator[SpecIssue]:
    at = f"pools[{index}]"
    if pool.min_nodes > pool.max_nodes:
        yield SpecIssue(f"{at}.min_nodes", f"min_nodes ({pool.min_nodes}) is greater than max_nodes ({pool.max_nodes}); allowed: 0 <= min_nodes <= max_nodes")
    owned = pool.provider in OWNED_PROVIDERS
    if owned and pool.capacity != "owned":
        yield SpecIssue(f"{at}.capacity", f"'{pool.capacity}' is not a capacity market of {pool.provider} hardware; allowed: owned")
    if not owned and pool.capacity == "owned":
        yield SpecIssue(f"{at}.capacity", f"'owned' is for onprem and local pools; allowed for {pool.provider}: on_demand, spot, reserved")
    if owned:
        for field in ("gpu", "gpus_per_node", "cost_per_hour"):
            if getattr(pool, field) is None:
                yield SpecIssue(f"{at}.{field}", f"required for {pool.provider} pools (their hardware is in no price catalog)")
        if pool.instance_type is not None:
            yield SpecIssue(f"{at}.instance_type", f"not allowed for {pool.provider} pools; state gpu, gpus_per_node and cost_per_hour instead")
    elif pool.instance_type is None:
        yield SpecIssue(f"{at}.instance_type", f"required for {pool.provider} pools; see `orchestrator catalog show --provider {pool.provider}`")
    if pool.provider == "onprem" and pool.location is None:
        yield SpecIssue(f"{at}.location", "required for onprem pools: a nearby metro or cloud region (e.g. frankfurt) or {lat, lon}")
    if pool.provider == "onprem" and pool.node is None:
        yield SpecIssue(f"{at}.node", "required for onprem pools: the CPUs and memory of one node, e.g. {cpus: 128, memory_gb: 2048} (replicas request their GPUs' share of it)")
    if pool.provider == "local" and pool.region != "local":
        yield SpecIssue(f"{at}.region", f"local pools run on this machine; allowed: local (got '{pool.region}')")


def check_spec(spec: FleetSpec) -> list[SpecIssue]:
    """Every self-contained inconsistency in the spec (an empty list means it is consistent)."""
    issues: list[SpecIssue] = []
    issues += _duplicates("pools", [p.name for p in spec.pools])
    issues += _duplicates("models", [m.name for m in spec.models])
    for index, pool in enumerate(spec.pools):
        issues += _pool_issues(index, pool)

    model_names = {m.name for m in spec.models}
    seen: dict[tuple[str, str], int] = {}
    for index, demand in enumerate(spec.demand):
        if demand.model not in model_names:
            issues.append(SpecIssue(f"demand[{index}].model", f"unknown model '{demand.model}'.{did_you_mean(demand.model, model_names)} Known models: {', '.join(sorted(model_names))}"))
        key = (demand.model, demand.region)
        if key in seen:
            issues.append(SpecIssue(f"demand[{index}]", f"duplicate demand for model '{demand.model}' from region '{demand.region}' (first at demand[{seen[key]}]); allowed: one row per (model, region) — give different request sizes as one row's size_mix"))
        seen.setdefault(key, index)

    providers_present = {p.provider for p in spec.pools}
    for index, model in enumerate(spec.models):
        for j, provider in enumerate(model.residency.providers):
            if provider not in providers_present:
                issues.append(SpecIssue(f"models[{index}].residency.providers[{j}]", f"no pool of provider '{provider}' in this environment; providers with pools: {', '.join(sorted(providers_present))}"))
        remote = [p.name for p in spec.pools if p.provider != "local"
                  and (not model.residency.providers or p.provider in model.residency.providers)]
        if model.scale_to_zero is not None and remote:
            issues.append(SpecIssue(f"models[{index}].scale_to_zero", f"pools {', '.join(remote)} may host this model, and "
                                    "scale to zero works only where gpufleet's gateway fronts the replicas (local pools) "
                                    "for now; allowed: scale_to_zero with local pools only, or limit the model's "
                                    "residency.providers to local (docs/scale-to-zero.md)"))
    return issues
