"""`rebalance`: observe what runs, plan churn-aware within the guardrails, and move make-before-break.

    resume()   finish a run that died part-way (under the environment's lock)
    prepare()  observe through the providers → plan (current placement as input) → policy gate
               → ordered steps; changes nothing
    apply()    journal the steps and run them (under the lock)

Providers are chosen per pool (`providers_for`): local pools run on this machine, every
other pool on its cluster (`providers/clusters.py`). The planner never calls them and they
never call the planner. A pool whose cloud refuses to grow (quota, stockout) fails its
step; the caller re-plans with that pool held at the nodes it has (`refused_pool`, `held`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.catalog.price_catalog import PriceCatalog
from orchestrator.inputs import FleetInputs
from orchestrator.planner import Placement, PlanOptions
from orchestrator.providers.base import FleetState, Provider, ReplicaSpec, ResizePool
from orchestrator.providers.errors import CapacityUnavailable, QuotaExceeded
from orchestrator.rebalance.execute import StepFailed, execute
from orchestrator.rebalance.journal import open_run, start_run
from orchestrator.rebalance.steps import Fleet, Step, plan_steps
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
    """pool name -> the provider that runs it: local pools on this machine, every other pool on its cluster."""
    providers: dict[str, Provider] = {}
    local = [p for p in spec.pools if p.provider == "local"]
    clusters = [p for p in spec.pools if p.provider != "local"]
    if local:
        from orchestrator.providers.local import LocalProvider

        providers |= dict.fromkeys((p.name for p in local), LocalProvider(spec, environment, store, state_url, settings))
    if clusters:
        from orchestrator.gateway import gateway_api_key
        from orchestrator.providers.clusters import ClusterProvider

        def key():  # asked once, when the first Deployment is made: a new key is announced by then
            return gateway_api_key(settings, environment).value

        providers |= dict.fromkeys((p.name for p in clusters), ClusterProvider(clusters, settings, api_key=key))
    return providers


def observe(providers: dict[str, Provider]) -> FleetState:
    """Every provider's observation as one: pools, replicas, the gateway (local) and what was asked for."""
    pools, replicas, planned, asleep, gateway = [], [], {}, {}, None
    for provider in {id(p): p for p in providers.values()}.values():
        state = provider.observe()
        pools += state.pools
        replicas += state.replicas
        planned |= state.planned
        asleep |= state.asleep
        gateway = gateway or state.gateway
    return FleetState(gateway=gateway, pools=pools, replicas=replicas, planned=planned, asleep=asleep)


def fleet_of(state: FleetState) -> Fleet:
    """Nodes per pool (as requested of the cloud: booting nodes are paid for) and healthy replicas per (model, pool),
    a rollout's canaries left out (the rollout owns them), a model asleep while idle counted as running."""
    replicas: dict[tuple[str, str], int] = {}
    for replica in state.replicas:
        if replica.healthy and not replica.canary:
            replicas[(replica.model, replica.pool)] = replicas.get((replica.model, replica.pool), 0) + 1
    for key, count in state.asleep.items():  # scaled to zero while idle: there, as far as planning goes
        model, _, pool = key.rpartition("@")
        replicas[(model, pool)] = replicas.get((model, pool), 0) + count
    return Fleet({p.pool: p.nodes if p.requested is None else p.requested for p in state.pools}, replicas)


def replica_specs(spec: FleetSpec, target: Placement, versions: dict[str, str] | None = None) -> Callable[[str, str], ReplicaSpec]:
    """What a replica of each model runs in each pool: the version it was rolled out to (`versions`, else the spec's
    own), tensor parallel = the plan's GPUs per replica."""
    from orchestrator.rollout.plan import replica_of

    models = {m.name: m for m in spec.models}
    gpus = {(c.model, c.pool): c.gpus_per_replica for c in target.capacity}

    def replica(model: str, pool: str) -> ReplicaSpec:
        return replica_of(models[model], (versions or {}).get(model), gpus[(model, pool)])

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
    held: frozenset[str] = frozenset(),
    base_dir: Path | None = None,
    versions: dict[str, str] | None = None,
) -> Move:
    """Observe, plan churn-aware within the placement policies, pass the policy gate, order the steps.

    `held` pools cannot grow past the nodes they have now (their cloud refused more: a quota
    or a stockout), so the plan moves their share elsewhere. `base_dir`: the spec file's folder.
    `versions`: model -> the version a rollout moved it to (the others run the spec's own).
    """
    from orchestrator.planning import planning
    from orchestrator.policy import enforce_placement

    current = fleet_of(observe(providers))
    inputs = hold_pools(inputs, {pool: current.nodes.get(pool, 0) for pool in held})
    target = planning(spec, inputs, options, root=policy_root, base_dir=base_dir).plan(current.replicas)  # as `orchestrator plan` plans
    report = enforce_placement(spec, target, policy_root)  # raises PolicyDenied naming the rules
    steps = plan_steps(current, target, replica_specs(spec, target, versions))
    return Move(inputs.environment, current, target, steps, _cost(current, target), target.cost_per_hour,
                [v.message for v in report.warnings])


def hold_pools(inputs: FleetInputs, nodes: dict[str, int]) -> FleetInputs:
    """The inputs with each pool in `nodes` capped at that many nodes."""
    if not nodes:
        return inputs
    pools = tuple(replace(p, max_nodes=min(p.max_nodes, nodes[p.pool]), min_nodes=min(p.min_nodes, nodes[p.pool]))
                  if p.pool in nodes else p for p in inputs.pools)
    return replace(inputs, pools=pools)


def refused_pool(exc: Exception) -> str | None:
    """The pool whose cloud refused to grow (quota, stockout) in a failed step, else None."""
    if isinstance(exc, StepFailed) and isinstance(exc.step, ResizePool) and isinstance(exc.__cause__, (QuotaExceeded, CapacityUnavailable)):
        return exc.step.pool
    return None


def _runner(providers: dict[str, Provider]) -> Callable[[Step], Provider]:
    return lambda step: providers[step.pool]


def resume(store: StateStore, environment: str, providers: dict[str, Provider], *, step_timeout_s: float,
           on_step: Callable[[int, Step], None] | None = None,
           on_wait: Callable[[int, Step, str], None] | None = None) -> int | None:
    """Finish the run that died part-way, if any (call under the environment's lock); its id."""
    unfinished = open_run(store, environment)
    if unfinished is None:
        return None
    logger.info("rebalance %s: resuming run %d with %d steps left", environment, unfinished.id, len(unfinished.remaining))
    execute(store, environment, unfinished, _runner(providers), step_timeout_s=step_timeout_s, on_step=on_step,
            on_wait=on_wait)
    return unfinished.id


def apply(store: StateStore, move: Move, providers: dict[str, Provider], *, step_timeout_s: float,
          on_step: Callable[[int, Step], None] | None = None,
          on_wait: Callable[[int, Step, str], None] | None = None) -> int:
    """Journal the move's steps and run them (call under the environment's lock); the run id."""
    run = start_run(store, move.environment, move.target.model_dump_json(), move.steps)
    execute(store, move.environment, run, _runner(providers), step_timeout_s=step_timeout_s, on_step=on_step,
            on_wait=on_wait)
    return run.id
