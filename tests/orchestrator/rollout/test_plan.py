"""A rollout's plan (`rollout.plan`): new-version replicas per step, room in the pools, growth, refusals."""

from __future__ import annotations

import pytest

from orchestrator.planner.placement import CapacityRow, Placement, PoolRow, SolverInfo
from orchestrator.rebalance.steps import Fleet
from orchestrator.rollout.plan import RolloutRefused, canary_counts, plan_rollout
from orchestrator.spec.models import Model

MODEL = Model.model_validate({
    "name": "m", "architecture": "tiny-llama", "source": "/weights/m", "max_model_len": 512,
    "slo": {"ttft_p95_ms": 1000, "tpot_p95_ms": 100, "max_rtt_ms": 50},
    "versions": [{"name": "v2", "max_model_len": 256, "vllm_args": ["--seed", "7"]}],
    "rollout": {"steps": [25, 50, 100]},
})


def placement(pools: dict[str, tuple[int, int]], gpus: dict[tuple[str, str], int]) -> Placement:
    """An applied placement: pool -> (gpus_per_node, max_nodes); (model, pool) -> GPUs per replica."""
    return Placement(
        environment="e", cost_per_hour=1.0, lower_bound_per_hour=1.0, solver=SolverInfo(status="optimal", seconds=0.1),
        models=[], demand=[], latency=[], replicas=[], routes=[],
        pools=[PoolRow(pool=p, provider="local", region="r", gpu="CPU", capacity="owned", gpus_per_node=per_node,
                       min_nodes=0, max_nodes=most, cost_per_node_hour=1.0) for p, (per_node, most) in pools.items()],
        capacity=[CapacityRow(model=m, pool=p, gpus_per_replica=n, rps_per_replica=1.0) for (m, p), n in gpus.items()])


@pytest.mark.parametrize(("steps", "stable", "counts"), [
    ([5, 25, 50, 100], 4, [1, 1, 2, 4]),
    ([25, 50, 100], 8, [2, 4, 8]),
    ([50, 100], 1, [1, 1]),
    ([100], 3, [3]),
    ([10, 100], 10, [1, 10]),  # 10 % of 10 is one replica, not two (no float round-up)
    ([30, 100], 10, [3, 10]),
])
def test_canary_counts_are_the_steps_share_of_the_stable_replicas_rounded_up_at_least_one(steps, stable, counts) -> None:
    assert canary_counts(steps, stable) == counts


def test_a_pool_with_room_runs_the_new_version_beside_the_old_without_growing() -> None:
    applied = placement({"a": (5, 1)}, {("m", "a"): 1, ("other", "a"): 1})  # 3 used + 2 new: just fits
    plan = plan_rollout(MODEL, "v1", "v2", Fleet({"a": 1}, {("m", "a"): 2, ("other", "a"): 1}), applied)
    [pool] = plan.pools
    assert (pool.pool, pool.stable, pool.canary, pool.nodes, pool.grow_to) == ("a", 2, [1, 1, 2], 1, None)
    assert (plan.model, plan.from_version, plan.to_version, plan.steps) == ("m", "v1", "v2", [25, 50, 100])
    replica = plan.replica["a"]
    assert (replica.version, replica.max_model_len, replica.vllm_args, replica.source, replica.served_name,
            replica.tensor_parallel_size) == ("v2", 256, ("--seed", "7"), "/weights/m", "m", 1)


def test_a_pool_without_room_grows_within_max_nodes_for_the_rollout() -> None:
    applied = placement({"a": (2, 4), "b": (8, 1)}, {("m", "a"): 2, ("m", "b"): 2})
    plan = plan_rollout(MODEL, "v1", "v2", Fleet({"a": 2, "b": 1}, {("m", "a"): 2, ("m", "b"): 1}), applied)
    grown, roomy = plan.pools
    assert (grown.pool, grown.nodes, grown.grow_to, grown.gpus_per_replica) == ("a", 2, 4, 2)  # 4 GPUs used + 4 new: 4 nodes
    assert (roomy.pool, roomy.grow_to) == ("b", None)
    assert plan.replica["a"].tensor_parallel_size == 2


def test_a_pool_that_cannot_grow_enough_refuses_naming_the_pool() -> None:
    applied = placement({"tight": (2, 1)}, {("m", "tight"): 1})
    with pytest.raises(RolloutRefused, match=r"pool tight has room for 0 more GPUs at its max_nodes 1; m's new version "
                                             r"needs 2 beside the old one.*raise tight's max_nodes"):
        plan_rollout(MODEL, "v1", "v2", Fleet({"tight": 1}, {("m", "tight"): 2}), applied)


def test_a_model_without_replicas_or_in_a_pool_the_plan_does_not_know_is_refused() -> None:
    applied = placement({"a": (2, 1)}, {("m", "a"): 1})
    with pytest.raises(RolloutRefused, match="no replica of m runs"):
        plan_rollout(MODEL, "v1", "v2", Fleet({"a": 1}, {("other", "a"): 1, ("m", "a"): 0}), applied)
    with pytest.raises(RolloutRefused, match="m runs in elsewhere, which the applied plan does not know"):
        plan_rollout(MODEL, "v1", "v2", Fleet({"a": 1}, {("m", "elsewhere"): 1}), applied)
