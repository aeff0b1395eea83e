"""Make-before-break step ordering: grow, start, drain, shrink — never below demand."""

from __future__ import annotations

import pytest

from orchestrator.planner.placement import (
    CapacityRow, DemandRow, ModelRow, Placement, PoolRow, ReplicaRow, SolverInfo,
)
from orchestrator.providers.base import ReplicaSpec, ScaleDown, ScaleUp
from orchestrator.rebalance import Fleet, RebalanceUnsafe, ResizePool, check_steps, plan_steps

SPECS = {"m": ReplicaSpec(source="s3://b/m/", served_name="m"), "k": ReplicaSpec(source="s3://b/k/", served_name="k")}


def SPEC(model: str, pool: str) -> ReplicaSpec:  # noqa: N802 - a constant-like lookup
    return SPECS[model]


def target(replicas: dict[tuple[str, str], int], nodes: dict[str, int], *, max_nodes: int = 4, gpus_per_node: int = 2,
           demand: float = 2.0, min_replicas: int = 1) -> Placement:
    pools = sorted(nodes)
    return Placement(
        environment="t", cost_per_hour=0, lower_bound_per_hour=0, solver=SolverInfo(status="optimal", seconds=0),
        models=[ModelRow(model=m, min_replicas=min_replicas, max_rtt_ms=100, ttft_p95_ms=1, tpot_p95_ms=1) for m in ("m", "k")],
        demand=[DemandRow(model="m", region="r", rps=demand, input_tokens=1, output_tokens=1)],
        pools=[PoolRow(pool=p, provider="aws", region=p, gpu="H100", capacity="on_demand", gpus_per_node=gpus_per_node,
                       min_nodes=0, max_nodes=max_nodes, cost_per_node_hour=1, nodes=nodes[p]) for p in pools],
        capacity=[CapacityRow(model=m, pool=p, gpus_per_replica=1, rps_per_replica=1.0) for m in ("m", "k") for p in pools],
        latency=[], routes=[],
        replicas=[ReplicaRow(model=m, pool=p, count=c) for (m, p), c in replicas.items()],
    )


def kinds(steps) -> list[tuple]:
    return [(s.kind, getattr(s, "model", None), s.pool, getattr(s, "count", getattr(s, "nodes", None))) for s in steps]


def test_nothing_to_do() -> None:
    plan = target({("m", "a"): 2}, {"a": 1})
    assert plan_steps(Fleet.of(plan), plan, SPEC) == []


def test_move_between_pools_is_make_before_break() -> None:
    current = Fleet({"a": 1, "b": 0}, {("m", "a"): 2})
    steps = plan_steps(current, target({("m", "b"): 2}, {"a": 0, "b": 1}), SPEC)
    assert kinds(steps) == [
        ("resize_pool", None, "b", 1),   # grow first
        ("scale_up", "m", "b", 2),       # start and wait until ready, in the gateway
        ("scale_down", "m", "a", 0),     # then drain the old ones
        ("resize_pool", None, "a", 0),   # and give the node back
    ]


def test_scale_out_and_in_within_a_pool() -> None:
    up = plan_steps(Fleet({"a": 1}, {("m", "a"): 2}), target({("m", "a"): 4}, {"a": 2}), SPEC)
    assert kinds(up) == [("resize_pool", None, "a", 2), ("scale_up", "m", "a", 4)]
    down = plan_steps(Fleet({"a": 2}, {("m", "a"): 4}), target({("m", "a"): 2}, {"a": 1}), SPEC)
    assert kinds(down) == [("scale_down", "m", "a", 2), ("resize_pool", None, "a", 1)]


def test_full_pool_drains_a_model_with_capacity_elsewhere_first() -> None:
    # pool a is at max_nodes with k's 2 replicas; m needs a's room, k moves to b
    current = Fleet({"a": 1, "b": 0}, {("k", "a"): 2, ("m", "b"): 0})
    plan = target({("m", "a"): 2, ("k", "b"): 2}, {"a": 1, "b": 1}, max_nodes=1, demand=0.0)
    steps = plan_steps(current, plan, SPEC)
    assert kinds(steps) == [("resize_pool", None, "b", 1), ("scale_up", "k", "b", 2), ("scale_down", "k", "a", 0), ("scale_up", "m", "a", 2)]


def test_refuses_a_move_that_would_drop_below_demand() -> None:
    # m must leave pool a (max 1 node) for pool b, but b has no room before a empties: m would fall to 0 req/s
    current = Fleet({"a": 1, "b": 1}, {("m", "a"): 2, ("k", "b"): 2})
    plan = target({("m", "b"): 2, ("k", "a"): 2}, {"a": 1, "b": 1}, max_nodes=1)
    with pytest.raises(RebalanceUnsafe, match="no room|below"):
        plan_steps(current, plan, SPEC)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([ScaleDown(model="m", pool="a", count=0), ScaleUp(model="m", pool="b", count=2, replica=SPECS["m"])], "drops m to 0.00 req/s"),
        ([ScaleUp(model="m", pool="b", count=2, replica=SPECS["m"])], "leaves b with 2 GPUs of replicas on 0 nodes"),
        ([ResizePool(pool="b", nodes=1), ScaleUp(model="m", pool="b", count=2, replica=SPECS["m"]), ResizePool(pool="b", nodes=0)],
         "leaves b with 2 GPUs"),
    ],
)
def test_check_catches_break_before_make(steps, message) -> None:
    current = Fleet({"a": 1, "b": 0}, {("m", "a"): 2})
    with pytest.raises(RebalanceUnsafe, match=message):
        check_steps(current, target({("m", "b"): 2}, {"a": 0, "b": 1}), steps)


def test_min_replicas_floor_holds_without_demand() -> None:
    current = Fleet({"a": 1, "b": 0}, {("k", "a"): 1})
    steps = [ScaleDown(model="k", pool="a", count=0), ResizePool(pool="b", nodes=1), ScaleUp(model="k", pool="b", count=1, replica=SPECS["k"])]
    with pytest.raises(RebalanceUnsafe, match="drops k to 0 replicas, below min_replicas 1"):
        check_steps(current, target({("k", "b"): 1}, {"a": 0, "b": 1}), steps)
