"""`rebalance`: observe what runs, plan churn-aware within the guardrails, and move make-before-break.

    resume()   finish a run that died part-way (under the environment's lock)
    prepare()  observe through the providers → plan (current placement as input) → policy gate
               → ordered steps; changes nothing
    apply()    journal the steps and run them (under the lock)

Providers are chosen per pool by its `provider`; the planner never calls them and they
never call the planner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.catalog.price_catalog import PriceCatalog
from orchestrator.errors import InputError
from orchestrator.inputs import FleetInputs
from orchestrator.planner import Placement, PlanOptions, build_problem, plan_problem
from orchestrator.providers.base import Capability, FleetState, Provider, ReplicaSpec
from orchestrator.rebalance.execute import execute
from orchestrator.rebalance.journal import open_run, start_run
from orchestrator.rebalance.steps import Fleet, ResizePool, Step, plan_steps
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Move:
    """A prepared rebalance: where the fleet is, where it goes, how, and what it costs before and after."""

    environment: str
    current: Fleet
    target: Placement
    steps: list[Step]
    cost_before: float
    cost_after: float
    warnings: list[str]

    @property
    def saving_per_hour(self) -> float:
        return self.cost_before - self.cost_after


def providers_for(spec: FleetSpec, environment: str, store: StateStore, state_url: str, settings: Settings) -> dict[str, Provider]:
    """pool name -> the provider that runs it (one instance per provider kind)."""
    kinds = {p.provider for p in spec.pools}
    unsupported = sorted(kinds - {"local"})
    if unsupported:
        raise InputError(f"rebalance drives local pools only so far; this environment has {', '.join(unsupported)} pools. "
                         "To fix: use `orchestrator plan` and the stacks for those until their providers land")
    from orchestrator.providers.local import LocalProvider

    local = LocalProvider(spec, environment, store, state_url, settings)
    return {p.name: local for p in spec.pools}


def observe(providers: dict[str, Provider]) -> tuple[Fleet, FleetState | None]:
    """Nodes per pool and healthy replicas per (model, pool), as the providers see them now."""
    nodes: dict[str, int] = {}
    replicas: dict[tuple[str, str], int] = {}
    last = None
    for provider in {id(p): p for p in providers.values()}.values():
        last = provider.observe()
        for pool in last.pools:
            nodes[pool.pool] = pool.nodes
        for replica in last.replicas:
            if replica.healthy:
                replicas[(replica.model, replica.pool)] = replicas.get((replica.model, replica.pool), 0) + 1
    for pool in providers:
        nodes.setdefault(pool, 0)
    return Fleet(nodes, replicas), last


def replica_specs(spec: FleetSpec, target: Placement) -> Callable[[str, str], ReplicaSpec]:
    """What a replica of each model runs in each pool (tensor parallel = the plan's GPUs per replica)."""
    models = {m.name: m for m in spec.models}
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in target.capacity}

    def replica(model: str, pool: str) -> ReplicaSpec:
        m = models[model]
        return ReplicaSpec(source=m.source, served_name=m.name, tensor_parallel_size=gpus[(model, pool)], max_model_len=m.max_model_len)

    return replica


def _cost(fleet: Fleet, target: Placement) -> float:
    prices = {p.pool: p.cost_per_node_hour for p in target.pools}
    return sum(prices.get(pool, 0.0) * n for pool, n in fleet.nodes.items())


def prepare(
    spec: FleetSpec,
    inputs: FleetInputs,
    catalog: PriceCatalog,
    providers: dict[str, Provider],
    options: PlanOptions,
    policy_root: Path,
) -> Move:
    """Observe, plan churn-aware within the placement policies, pass the policy gate, order the steps."""
    from orchestrator.policy import enforce_placement, planning_rules

    current, _ = observe(providers)
    problem = build_problem(spec, inputs, current.replicas, planning_rules(spec, policy_root))
    target = plan_problem(problem, options)
    report = enforce_placement(spec, target, policy_root)  # raises PolicyDenied naming the rules
    steps = plan_steps(current, target, replica_specs(spec, target))
    return Move(inputs.environment, current, target, steps, _cost(current, target), target.cost_per_hour,
                [v.message for v in report.warnings])


class _FixedNodes:
    """A pool whose provider cannot add or remove nodes (this machine, an on-prem site) has the nodes it has."""

    def apply(self, step: Step) -> None:
        logger.info("pool %s: nodes are fixed by its provider; %d requested, nothing to do", step.pool, step.nodes)


def _runner(providers: dict[str, Provider]) -> Callable[[Step], object]:
    def provider_for(step: Step):
        provider = providers[step.pool]
        if isinstance(step, ResizePool) and Capability.node_scaling not in provider.capabilities:
            return _FixedNodes()
        return provider

    return provider_for


def resume(store: StateStore, environment: str, providers: dict[str, Provider], *, step_timeout_s: float,
           on_step: Callable[[int, Step], None] | None = None) -> int | None:
    """Finish the run that died part-way, if any (call under the environment's lock); its id."""
    unfinished = open_run(store, environment)
    if unfinished is None:
        return None
    logger.info("rebalance %s: resuming run %d with %d steps left", environment, unfinished.id, len(unfinished.remaining))
    execute(store, environment, unfinished, _runner(providers), step_timeout_s=step_timeout_s, on_step=on_step)
    return unfinished.id


def apply(store: StateStore, move: Move, providers: dict[str, Provider], *, step_timeout_s: float,
          on_step: Callable[[int, Step], None] | None = None) -> int:
    """Journal the move's steps and run them (call under the environment's lock); the run id."""
    run = start_run(store, move.environment, move.target.model_dump_json(), move.steps)
    execute(store, move.environment, run, _runner(providers), step_timeout_s=step_timeout_s, on_step=on_step)
    return run.id
