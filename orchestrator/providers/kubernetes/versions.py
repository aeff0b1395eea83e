"""Kubernetes versions the replica workloads support, and what a pool's cluster version lets them use.

Supported: the minor versions of the spec's `KubernetesVersion` (1.28 to 1.37). Every manifest
gpufleet renders is checked against each one's OpenAPI schema in the tests (kubernetes-validate,
strict), and `orchestrator manifests` checks them against the pool's own. A pool that names no
version gets what all of them accept.

Gated on the version: the native `preStop.sleep` action (PodLifecycleSleepAction, beta and on by
default from 1.30, GA in 1.34); older clusters, and pools of unknown version, pause with an exec of
the image's `sleep` instead (the same pause, one process more).
"""

from __future__ import annotations

from typing import get_args

from orchestrator.spec import Pool
from orchestrator.spec.models import KubernetesVersion

SUPPORTED: tuple[str, ...] = get_args(KubernetesVersion)
SLEEP_ACTION_SINCE = "1.30"


def minor(version: str) -> tuple[int, int]:
    """`1.30` as (1, 30), for comparing versions."""
    major, _, minor_ = version.partition(".")
    return int(major), int(minor_)


def schema_version(pool: Pool) -> str:
    """The version a pool's manifests are checked against: its cluster's, else the oldest supported."""
    return pool.kubernetes_version or SUPPORTED[0]


def pre_stop_pause(pool: Pool, seconds: int) -> dict:
    """A preStop handler that waits `seconds`: the native sleep action where the cluster has it."""
    if minor(schema_version(pool)) >= minor(SLEEP_ACTION_SINCE):
        return {"sleep": {"seconds": seconds}}
    return {"exec": {"command": ["sleep", str(seconds)]}}
