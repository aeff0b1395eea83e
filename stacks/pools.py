"""What every provider's construct needs to know about one pool, resolved once.

The spec says what a pool is; the catalog (through `orchestrator.inputs`) says which
GPU and how many per node. This module joins the two with what all four clouds share:
the tags every pool carries, the Kubernetes labels and taints its nodes get, and the
checks the stacks add to the orchestrator's (a cluster to join, a parseable taint),
reported the same way: every problem at once, located in the file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from orchestrator.errors import SpecError, SpecIssue
from orchestrator.inputs import FleetInputs
from orchestrator.spec import FleetSpec, Pool

LABEL_PREFIX = "gpufleet.io"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_TAINT = re.compile(r"^(?P<key>[A-Za-z0-9./_-]+)(=(?P<value>[A-Za-z0-9._-]*))?:(?P<effect>\w+)$")


@dataclass(frozen=True)
class Taint:
    """A Kubernetes node taint; each cloud spells the effect its own way."""

    key: str
    value: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"

    @property
    def upper_effect(self) -> str:
        """EKS and GKE spelling: NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE."""
        return re.sub(r"(?<!^)([A-Z])", r"_\1", self.effect).upper()


@dataclass(frozen=True)
class PoolDeclaration:
    """One pool as the stacks declare it: spec, resolved hardware, and shared metadata."""

    environment: str
    pool: Pool
    gpu: str
    gpus_per_node: int
    tags: dict[str, str]
    labels: dict[str, str]
    taints: tuple[Taint, ...]

    @property
    def name(self) -> str:
        return self.pool.name

    @property
    def cluster(self) -> str:
        return self.pool.cluster or ""


def gpu_resource(gpu: str) -> str:
    """The extended resource a GPU is scheduled as (and the key of its taint)."""
    return "amd.com/gpu" if gpu.upper().startswith("MI") else "nvidia.com/gpu"


def bounded_name(name: str, limit: int) -> str:
    """`name` if it fits in `limit` characters, else a prefix and a short hash (stable, still unique)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[:limit - 7].rstrip('-_.')}-{digest}"


def pool_tags(spec: FleetSpec, pool: Pool) -> dict[str, str]:
    """Environment tags, then the pool's, then what gpufleet sets itself (which always wins)."""
    return {**spec.tags, **pool.tags, "env": spec.environment or "", "pool": pool.name, "managed-by": "gpufleet"}


def node_labels(spec: FleetSpec, pool: Pool, gpu: str) -> dict[str, str]:
    """The pool's labels plus gpufleet's own, which placement and drains select nodes by."""
    return {
        **pool.labels,
        f"{LABEL_PREFIX}/environment": spec.environment or "",
        f"{LABEL_PREFIX}/pool": pool.name,
        f"{LABEL_PREFIX}/capacity": pool.capacity,
        f"{LABEL_PREFIX}/gpu": gpu,
    }


def parse_taint(text: str) -> Taint:
    """`key=value:Effect` (value optional) as a Taint; ValueError says what is allowed."""
    match = _TAINT.match(text.strip())
    if match is None or match["effect"] not in TAINT_EFFECTS:
        raise ValueError(f"taint '{text}' is not key=value:Effect with Effect one of {', '.join(TAINT_EFFECTS)}")
    return Taint(match["key"], match["value"] or "", match["effect"])


def gpu_taint(gpu: str) -> Taint:
    """`nvidia.com/gpu=present:NoSchedule` (or AMD's): only workloads asking for GPUs land on GPU nodes."""
    return Taint(gpu_resource(gpu), "present", "NoSchedule")


def node_taints(pool: Pool, gpu: str) -> tuple[Taint, ...]:
    """The pool's taints, plus the GPU taint unless the pool taints that key itself."""
    taints = tuple(parse_taint(t) for t in pool.taints)
    default = gpu_taint(gpu)
    return taints if any(t.key == default.key for t in taints) else (*taints, default)


def _issues(index: int, pool: Pool) -> list[SpecIssue]:
    at = f"pools[{index}]"
    issues = []
    if pool.provider == "local":  # runs on this machine: nothing to provision, nothing to check
        return issues
    if not pool.cluster:
        issues.append(SpecIssue(f"{at}.cluster", f"required to declare a {pool.provider} pool: the Kubernetes cluster (or kube context for onprem) its nodes join"))
    if pool.provider != "onprem" and pool.max_nodes < 1:
        issues.append(SpecIssue(f"{at}.max_nodes", f"{pool.provider} node pools need max_nodes >= 1; to switch a pool off, remove it or set max_nodes: 1 and min_nodes: 0"))
    for j, text in enumerate(pool.taints):
        try:
            parse_taint(text)
        except ValueError as exc:
            issues.append(SpecIssue(f"{at}.taints[{j}]", str(exc)))
    return issues


def declare_pools(spec: FleetSpec, inputs: FleetInputs, file: str) -> list[PoolDeclaration]:
    """Every pool of the spec as the stacks declare it, or a SpecError naming each problem."""
    resolved = {p.pool: p for p in inputs.pools}
    issues = [issue for i, pool in enumerate(spec.pools) for issue in _issues(i, pool)]
    if issues:
        raise SpecError(file, issues)
    return [
        PoolDeclaration(
            environment=spec.environment or "",
            pool=pool,
            gpu=resolved[pool.name].gpu,
            gpus_per_node=resolved[pool.name].gpus_per_node,
            tags=pool_tags(spec, pool),
            labels=node_labels(spec, pool, resolved[pool.name].gpu),
            taints=node_taints(pool, resolved[pool.name].gpu),
        )
        for pool in spec.pools
    ]
