"""What one GPU node offers pods, and each replica's share of it (docs/capacity.md, "Nodes as they are").

A node's allocatable CPU and memory is what the kubelet lets pods request: the machine's
vCPUs and memory, less the system reserve its managed service documents (GKE, EKS's AMI
bootstrap, AKS), less the memory eviction threshold. Every replica requests a share of it
proportional to its GPUs, after an allowance for the node's DaemonSet pods:

    requests = floor((allocatable - daemonsets) x gpus_per_replica / gpus_per_node)

Floors of shares add up to at most the whole, so whenever replicas fit a node by GPUs they
fit it by CPU and memory too, for any mix of replica sizes: the planner keeps packing GPUs
only, and a planned placement schedules.

Units: CPU in millicores, memory in MiB (as Kubernetes quantities `m` and `Mi`); catalog
memory is GiB as the providers state it; a spec's `node.memory_gb` is GB (10^9 bytes).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.catalog.price_catalog import PriceCatalog
    from orchestrator.spec.models import Pool

MIB_PER_GIB = 1024
GIB_PER_GB = 1e9 / 2**30
EVICTION_THRESHOLD_MIB = 100  # kubelet's default `memory.available<100Mi`, kept by GKE, EKS's AMI and AKS >= 1.29
# The kubelet's capacity is the kernel's MemTotal, a few percent below the instance's stated size
# (firmware, kernel image, crash kernel): an allowance, not a documented figure.
KERNEL_MEMORY_SHARE = 0.05
# Per-node DaemonSet pods (kube-proxy, CNI, CSI, GPU device plugin, logging and metrics agents)
# request from the same allocatable; a few hundred millicores and MiB each on the managed services.
DAEMONSET_CPU_MILLICORES = 1000
DAEMONSET_MEMORY_MIB = 2 * MIB_PER_GIB
AKS_MAX_PODS = 250  # the most AKS allows per node, and Azure CNI Overlay's default
# vLLM's needs on the host (docs/capacity.md): the API server and engine process, one worker process
# per GPU (torch, CUDA context, pinned buffers), and part of the checkpoint's page cache while it loads.
HOST_RUNTIME_GIB = 4.0
WORKER_GIB_PER_GPU = 2.0
WEIGHTS_HOST_SHARE = 0.25

# EKS: max pods per instance type, from the EKS AMI's files/eni-max-pods.txt (ENIs x (IPv4 per ENI - 1) + 2).
EKS_MAX_PODS = {
    "g4dn.xlarge": 29, "g4dn.2xlarge": 29, "g4dn.4xlarge": 29, "g4dn.8xlarge": 58, "g4dn.12xlarge": 234,
    "g4dn.16xlarge": 58, "g4dn.metal": 737,
    "g5.xlarge": 58, "g5.2xlarge": 58, "g5.4xlarge": 234, "g5.8xlarge": 234, "g5.12xlarge": 737,
    "g5.16xlarge": 234, "g5.24xlarge": 737, "g5.48xlarge": 345,
    "p3.2xlarge": 58, "p3.8xlarge": 234, "p3.16xlarge": 234, "p3dn.24xlarge": 737,
    "p4d.24xlarge": 737, "p4de.24xlarge": 737,
}


@dataclass(frozen=True)
class NodeHardware:
    """One node's machine: vCPUs, memory (GiB) and, on EKS, the max pods its kube-reserved memory grows with."""

    vcpus: float
    memory_gib: float
    max_pods: int | None = None


@dataclass(frozen=True)
class Resources:
    """CPU (millicores) and memory (MiB): what a node has for pods, or what a pod requests."""

    cpu_millicores: int
    memory_mib: int

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_millicores + other.cpu_millicores, self.memory_mib + other.memory_mib)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu_millicores - other.cpu_millicores, self.memory_mib - other.memory_mib)

    def within(self, other: Resources) -> bool:
        return self.cpu_millicores <= other.cpu_millicores and self.memory_mib <= other.memory_mib

    def quantities(self) -> dict[str, str]:
        """As a container's `resources.requests` (Kubernetes quantities)."""
        return {"cpu": f"{self.cpu_millicores}m", "memory": f"{self.memory_mib}Mi"}


DAEMONSETS = Resources(DAEMONSET_CPU_MILLICORES, DAEMONSET_MEMORY_MIB)


def _tiers(amount: float, tiers: list[tuple[float, float]]) -> float:
    """Sum of `share x part` over consecutive parts of `amount`, each tier (size, share); the last size may be inf."""
    reserved, rest = 0.0, amount
    for size, share in tiers:
        part = min(rest, size)
        reserved += part * share
        rest -= part
        if rest <= 0:
            break
    return reserved


def _cpu_reserve_gke(vcpus: float) -> float:
    """GKE (and the EKS AMI): 6 % of the first core, 1 % of the next, 0.5 % of the next 2, 0.25 % above 4."""
    return _tiers(vcpus * 1000, [(1000, 0.06), (1000, 0.01), (2000, 0.005), (math.inf, 0.0025)])


def _memory_reserve_gke(memory_gib: float) -> float:
    """GKE: 255 MiB below 1 GiB; else 25 % of the first 4 GiB, 20 % of the next 4, 10 % of the next 8,
    6 % of the next 112 and 2 % above 128 GiB (MiB)."""
    if memory_gib < 1:
        return 255.0
    return _tiers(memory_gib, [(4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (math.inf, 0.02)]) * MIB_PER_GIB


_AKS_CPU = [(1, 60), (2, 100), (4, 140), (8, 180), (16, 260), (32, 420), (64, 740)]


def _cpu_reserve_aks(vcpus: float) -> float:
    """AKS's documented table (millicores at 1..64 cores), linear between its points; above 64 cores
    its last slope (10 millicores a core), an extrapolation."""
    if vcpus <= 1:
        return 60.0
    for (c0, m0), (c1, m1) in zip(_AKS_CPU, _AKS_CPU[1:]):
        if vcpus <= c1:
            return m0 + (m1 - m0) * (vcpus - c0) / (c1 - c0)
    return 740.0 + 10.0 * (vcpus - 64)


def eks_max_pods(instance_type: str | None, vcpus: float) -> int:
    """The EKS AMI's default max pods: its ENI table where known, else the table's usual step for the
    size (29 / 58 / 234 / 737 pods), rounded up so the reserve is never under-estimated."""
    if instance_type in EKS_MAX_PODS:
        return EKS_MAX_PODS[instance_type]
    return 29 if vcpus <= 2 else 58 if vcpus <= 8 else 234 if vcpus <= 48 else 737


def system_reserve(provider: str, hardware: NodeHardware) -> Resources:
    """CPU and memory a node's kubelet keeps from pods: kube/system-reserved plus the eviction threshold.

    - gcp (GKE): CPU and memory tiers of "Plan GKE node sizes"; + 100 MiB eviction.
    - aws (EKS AMI bootstrap): the same CPU tiers; memory 11 MiB x max pods + 255 MiB; + 100 MiB eviction.
    - azure (AKS >= 1.29): CPU from its table; memory min(20 MB x max pods + 50 MB, 25 % of memory), max
      pods 250 (MB taken as MiB: slightly more); + 100 MiB eviction.
    - onprem, local: GKE's rule (a kubelet with no managed defaults still needs a reserve; GKE's tiers
      are documented, scale with the machine and are the largest of the three on big nodes).
    """
    memory_mib = hardware.memory_gib * MIB_PER_GIB
    if provider == "aws":
        max_pods = hardware.max_pods or eks_max_pods(None, hardware.vcpus)
        cpu, memory = _cpu_reserve_gke(hardware.vcpus), 11.0 * max_pods + 255
    elif provider == "azure":
        max_pods = hardware.max_pods or AKS_MAX_PODS
        cpu, memory = _cpu_reserve_aks(hardware.vcpus), min(20.0 * max_pods + 50, 0.25 * memory_mib)
    else:
        cpu, memory = _cpu_reserve_gke(hardware.vcpus), _memory_reserve_gke(hardware.memory_gib)
    return Resources(math.ceil(cpu), math.ceil(memory) + EVICTION_THRESHOLD_MIB)


def allocatable(provider: str, hardware: NodeHardware) -> Resources:
    """What pods may request on one node: vCPUs and the kernel's memory, less `system_reserve` (floored at 0)."""
    reserve = system_reserve(provider, hardware)
    capacity = Resources(math.floor(hardware.vcpus * 1000),
                         math.floor(hardware.memory_gib * MIB_PER_GIB * (1 - KERNEL_MEMORY_SHARE)))
    left = capacity - reserve
    return Resources(max(0, left.cpu_millicores), max(0, left.memory_mib))


def replica_requests(allocatable: Resources, gpus_per_node: int, gpus_per_replica: int) -> Resources:
    """A replica's CPU and memory requests: its GPUs' share of what the node's DaemonSets leave.

    Proportional floors: replicas that fit a node by GPUs fit it by CPU and memory as well.
    """
    if not 0 < gpus_per_replica <= gpus_per_node:
        raise ValueError(f"a replica of {gpus_per_replica} GPUs does not fit a node of {gpus_per_node}")
    free = allocatable - DAEMONSETS
    return Resources(max(0, free.cpu_millicores) * gpus_per_replica // gpus_per_node,
                     max(0, free.memory_mib) * gpus_per_replica // gpus_per_node)


def host_memory_need_gib(weights_gb: float, gpus_per_replica: int) -> float:
    """Host memory (GiB) one vLLM replica needs: 4 GiB for the API server and engine, 2 GiB per GPU
    worker, and a quarter of the checkpoint (`weights_gb`, GB): vLLM memory-maps safetensors by
    default, and their pages, reclaimable, count to the pod while they load (docs/capacity.md)."""
    return HOST_RUNTIME_GIB + WORKER_GIB_PER_GPU * gpus_per_replica + WEIGHTS_HOST_SHARE * weights_gb * GIB_PER_GB


def host_memory_fits(allocatable: Resources, gpus_per_node: int, gpus_per_replica: int, weights_gb: float) -> bool:
    """Whether a replica's memory request on this node (`replica_requests`) covers `host_memory_need_gib`;
    the planner leaves out (model, pool) pairs where it does not."""
    if not 0 < gpus_per_replica <= gpus_per_node:
        return False
    share = replica_requests(allocatable, gpus_per_node, gpus_per_replica).memory_mib
    return share >= host_memory_need_gib(weights_gb, gpus_per_replica) * MIB_PER_GIB


def pods_fit(allocatable: Resources, gpus_per_node: int, nodes: int, replicas_by_size: Mapping[int, int]) -> bool:
    """Whether replicas ({gpus per replica: count}) with their `replica_requests` fit `nodes` nodes,
    packed first-fit decreasing by GPUs, every node's GPUs, CPU and memory (after its DaemonSets) within
    its allocatable: the scheduler's view of a planned pool."""
    free = [(gpus_per_node, allocatable - DAEMONSETS) for _ in range(nodes)]
    for size in sorted((s for s, count in replicas_by_size.items() if count > 0), reverse=True):
        if size > gpus_per_node:
            return False
        want = replica_requests(allocatable, gpus_per_node, size)
        for _ in range(replicas_by_size[size]):
            node = next((i for i, (gpus, left) in enumerate(free) if gpus >= size and want.within(left)), None)
            if node is None:
                return False
            gpus, left = free[node]
            free[node] = (gpus - size, left - want)
    return True


def this_machine() -> NodeHardware:
    """This machine's CPUs and memory (a local pool's node unless its spec says otherwise)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small laptop
        memory = 8 * 2**30
    return NodeHardware(vcpus=float(os.cpu_count() or 1), memory_gib=memory / 2**30)


def node_hardware(pool: Pool, catalog: PriceCatalog | None) -> NodeHardware | None:
    """A pool's node: the spec's `node` when given (it overrides the catalog for cloud pools), else the
    catalog's vCPUs and memory of its instance type, else this machine for a local pool; None when unknown."""
    if pool.node is not None:
        vcpus, memory_gib = float(pool.node.cpus), pool.node.memory_gb * GIB_PER_GB
    elif pool.provider == "local":
        return this_machine()
    elif pool.provider == "onprem" or catalog is None or not pool.instance_type:
        return None
    else:
        offer = next((o for o in catalog.find(provider=pool.provider, instance_type=pool.instance_type)
                      if o.vcpus and o.memory_gb), None)
        if offer is None or offer.vcpus is None or offer.memory_gb is None:
            return None
        vcpus, memory_gib = float(offer.vcpus), float(offer.memory_gb)
    max_pods = eks_max_pods(pool.instance_type, vcpus) if pool.provider == "aws" else None
    return NodeHardware(vcpus=vcpus, memory_gib=memory_gib, max_pods=max_pods)


def gpus_per_node(pool: Pool, catalog: PriceCatalog | None) -> int | None:
    """GPUs of one node: the spec's for owned pools, the catalog's for an instance type."""
    if pool.gpus_per_node:
        return pool.gpus_per_node
    if catalog is None or not pool.instance_type:
        return None
    offer = next(iter(catalog.find(provider=pool.provider, instance_type=pool.instance_type)), None)
    return offer.gpu_count if offer else None


@lru_cache(maxsize=4)
def _catalog(catalog_dir: Path | None) -> PriceCatalog:
    from orchestrator.catalog.price_catalog import load_price_catalog

    return load_price_catalog(catalog_dir)


def pool_replica_requests(pool: Pool, gpus_per_replica: int, catalog_dir: Path | None = None,
                          catalog: PriceCatalog | None = None) -> Resources | None:
    """A replica's requests in `pool` (its node from `node_hardware`; the catalog read from `catalog_dir`
    unless given), or None when the pool's node is unknown or smaller than the replica."""
    catalog = catalog if catalog is not None else _catalog(catalog_dir)
    hardware, gpus = node_hardware(pool, catalog), gpus_per_node(pool, catalog)
    if hardware is None or gpus is None or not 0 < gpus_per_replica <= gpus:
        return None
    return replica_requests(allocatable(pool.provider, hardware), gpus, gpus_per_replica)
