"""Nodes as they are: the managed services' documented reserves, each replica's proportional share,
and that whatever packs by GPUs packs by CPU and memory too."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.catalog.nodes import (
    DAEMONSETS, EVICTION_THRESHOLD_MIB, NodeHardware, Resources, allocatable, host_memory_fits, host_memory_need_gib,
    node_hardware, pods_fit, pool_replica_requests, replica_requests, system_reserve, this_machine,
)
from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.spec import Pool
from orchestrator.spec.models import NodeShape

CATALOG = load_price_catalog()


def test_gke_reserve_matches_its_documented_tiers() -> None:
    # 150 GiB: 25 % of 4 + 20 % of 4 + 10 % of 8 + 6 % of 112 + 2 % of 22 GiB, + 100 MiB eviction = 9.8577 GiB
    assert system_reserve("gcp", NodeHardware(vcpus=8, memory_gib=150)).memory_mib == pytest.approx(9.8577 * 1024, abs=1)
    assert system_reserve("gcp", NodeHardware(vcpus=1, memory_gib=0.6)).memory_mib == 255 + EVICTION_THRESHOLD_MIB
    # CPU: 6 % of the first core, 1 % of the second, 0.5 % of the next two, 0.25 % of the rest
    cpu = {cores: system_reserve("gcp", NodeHardware(vcpus=cores, memory_gib=64)).cpu_millicores for cores in (1, 2, 4, 8, 48)}
    assert cpu == {1: 60, 2: 70, 4: 80, 8: 90, 48: 190}


def test_aks_reserve_follows_its_table_and_memory_rule() -> None:
    table = {1: 60, 2: 100, 4: 140, 8: 180, 16: 260, 32: 420, 64: 740}
    assert {c: system_reserve("azure", NodeHardware(vcpus=c, memory_gib=64)).cpu_millicores for c in table} == table
    # AKS's examples: 8 GB and 30 max pods -> 20 MB x 30 + 50 MB = 650; 4 GB and 70 pods -> 25 % of 4 GB
    assert system_reserve("azure", NodeHardware(vcpus=2, memory_gib=8, max_pods=30)).memory_mib == 650 + 100
    assert system_reserve("azure", NodeHardware(vcpus=2, memory_gib=4, max_pods=70)).memory_mib == 1024 + 100
    # default max pods 250: 5,050 MiB once 25 % of memory exceeds it
    assert system_reserve("azure", NodeHardware(vcpus=96, memory_gib=1900)).memory_mib == 5050 + 100


def test_eks_reserve_grows_with_max_pods() -> None:
    g5 = Pool(name="g5", provider="aws", region="us-east-1", instance_type="g5.xlarge", max_nodes=1)
    hardware = node_hardware(g5, CATALOG)
    assert hardware == NodeHardware(vcpus=4, memory_gib=16, max_pods=58)  # the AMI's ENI table
    assert system_reserve("aws", hardware) == Resources(80, 11 * 58 + 255 + 100)
    unlisted = node_hardware(Pool(name="p5", provider="aws", region="us-east-1", instance_type="p5.48xlarge", max_nodes=1), CATALOG)
    assert unlisted is not None and unlisted.max_pods == 737  # not in the table: the largest step, never under-reserving


def test_allocatable_takes_the_kernels_share_and_the_reserve() -> None:
    hardware = NodeHardware(vcpus=48, memory_gib=192)
    free = allocatable("gcp", hardware)
    reserve = system_reserve("gcp", hardware)
    assert free.cpu_millicores == 48_000 - reserve.cpu_millicores
    assert free.memory_mib < 192 * 1024 - reserve.memory_mib
    assert allocatable("gcp", NodeHardware(vcpus=0.001, memory_gib=0.001)) == Resources(0, 0)


def test_three_two_l4_replicas_fit_two_g2_standard_48_nodes_with_shares_and_not_with_96_gi_each() -> None:
    g2 = Pool(name="l4", provider="gcp", region="europe-west4", instance_type="g2-standard-48", max_nodes=2)
    hardware = node_hardware(g2, CATALOG)
    assert hardware == NodeHardware(vcpus=48, memory_gib=192)
    free = allocatable("gcp", hardware)
    assert pods_fit(free, 4, 2, {2: 3}) and pods_fit(free, 4, 2, {2: 4}) and not pods_fit(free, 4, 2, {2: 5})
    share = replica_requests(free, 4, 2)
    assert share == pool_replica_requests(g2, 2, catalog=CATALOG)
    assert 2 * share.memory_mib <= (free - DAEMONSETS).memory_mib
    # the old fixed request, 48 Gi per GPU: two of them never fit one node, so the third pod stayed Pending
    assert 2 * 96 * 1024 > free.memory_mib


def test_replica_shares_are_proportional_and_bounded() -> None:
    free = allocatable("aws", NodeHardware(vcpus=192, memory_gib=2048, max_pods=737))
    whole, half = replica_requests(free, 8, 8), replica_requests(free, 8, 4)
    assert whole == free - DAEMONSETS
    assert 2 * half.cpu_millicores <= whole.cpu_millicores and 2 * half.memory_mib <= whole.memory_mib
    with pytest.raises(ValueError):
        replica_requests(free, 4, 8)
    assert not pods_fit(free, 4, 4, {8: 1})
    assert pods_fit(free, 4, 0, {2: 0})


def test_host_memory_rule() -> None:
    # 4 GiB + 2 GiB per GPU worker + a quarter of the checkpoint
    assert host_memory_need_gib(16.06, 1) == pytest.approx(4 + 2 + 0.25 * 16.06e9 / 2**30)
    g2_8 = allocatable("gcp", NodeHardware(vcpus=8, memory_gib=32))  # 1 L4
    assert host_memory_fits(g2_8, 1, 1, weights_gb=16.06)  # llama-3.1-8b bf16
    assert not host_memory_fits(g2_8, 1, 1, weights_gb=141)  # a 70B checkpoint's page cache
    assert not host_memory_fits(g2_8, 1, 2, weights_gb=1)  # more GPUs than the node has
    small = Resources(4000, 8 * 1024)
    assert not host_memory_fits(small, 1, 1, weights_gb=1)


def test_node_shapes_come_from_the_spec_the_catalog_or_this_machine() -> None:
    owned = Pool(name="fra", provider="onprem", region="fra-dc1", gpu="A100-80GB", gpus_per_node=8, cost_per_hour=1,
                 capacity="owned", max_nodes=2, node=NodeShape(cpus=256, memory_gb=2048))
    assert node_hardware(owned, CATALOG) == NodeHardware(vcpus=256, memory_gib=2048e9 / 2**30)  # GB, 10^9 bytes
    assert node_hardware(owned.model_copy(update={"node": None}), CATALOG) is None
    override = Pool(name="l4", provider="gcp", region="europe-west4", instance_type="g2-standard-48", max_nodes=2,
                    node=NodeShape(cpus=40, memory_gb=150))
    assert node_hardware(override, CATALOG).vcpus == 40  # type: ignore[union-attr]
    local = Pool(name="here", provider="local", region="local", gpu="CPU", gpus_per_node=1, cost_per_hour=0,
                 capacity="owned", max_nodes=1)
    assert node_hardware(local, CATALOG) == this_machine()
    assert this_machine().vcpus >= 1 and this_machine().memory_gib > 0
    unknown = Pool(name="x", provider="azure", region="westeurope", instance_type="Standard_Nope", max_nodes=1)
    assert node_hardware(unknown, CATALOG) is None and pool_replica_requests(unknown, 1, catalog=CATALOG) is None


POWERS = [1, 2, 4, 8, 16]


@st.composite
def packings(draw):
    """A node, and replicas of power-of-two sizes placed on `nodes` nodes within their GPUs."""
    provider = draw(st.sampled_from(["aws", "gcp", "azure", "onprem", "local"]))
    hardware = NodeHardware(vcpus=draw(st.integers(4, 256)), memory_gib=draw(st.floats(16, 4096)),
                            max_pods=draw(st.sampled_from([None, 29, 58, 234, 737])))
    per_node = draw(st.sampled_from(POWERS))
    nodes = draw(st.lists(st.lists(st.sampled_from([g for g in POWERS if g <= per_node]), max_size=16), min_size=1, max_size=4))
    placed = []
    for sizes in nodes:
        used, kept = 0, []
        for size in sizes:
            if used + size <= per_node:
                used, kept = used + size, kept + [size]
        placed.append(kept)
    return provider, hardware, per_node, placed


@settings(max_examples=300, deadline=None)
@given(packings())
def test_any_gpu_feasible_packing_is_cpu_and_memory_feasible(case) -> None:
    provider, hardware, per_node, placed = case
    free = allocatable(provider, hardware)
    for sizes in placed:  # each node, as the GPUs placed it
        total = Resources(0, 0)
        for size in sizes:
            total = total + replica_requests(free, per_node, size)
        assert (total + DAEMONSETS).within(free)
    # and first-fit decreasing finds a packing whenever the GPUs add up (power-of-two sizes divide each other)
    counts: dict[int, int] = {}
    for size in (s for sizes in placed for s in sizes):
        counts[size] = counts.get(size, 0) + 1
    assert pods_fit(free, per_node, len(placed), counts)


def test_pods_of_every_planned_pool_fit_their_nodes() -> None:
    from orchestrator.inputs import load_inputs
    from orchestrator.planner import plan_fleet
    from tests.conftest import ENVIRONMENTS

    spec, inputs = load_inputs(ENVIRONMENTS / "hybrid.yaml", CATALOG)
    placement = plan_fleet(spec, inputs)
    pools = {p.pool: p for p in inputs.pools}
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in placement.capacity}
    checked = 0
    for planned in placement.pools:
        sizes: dict[int, int] = {}
        for row in placement.replicas:
            if row.pool == planned.pool and row.count:
                size = gpus[(row.model, row.pool)]
                sizes[size] = sizes.get(size, 0) + row.count
        if not sizes:
            continue
        free = pools[planned.pool].allocatable
        assert free is not None, planned.pool
        assert pods_fit(free, planned.gpus_per_node, planned.nodes, sizes), (planned.pool, planned.nodes, sizes)
        checked += 1
    assert checked
