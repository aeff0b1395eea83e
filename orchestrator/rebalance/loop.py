"""One rebalance of an environment, as `rebalance`, `rebalance --watch` and `up` run it.

    lock → resume an interrupted run → plan (`prepare`) → decide → apply → re-plan around a
    pool whose cloud refused to grow → store the plan → ledger → routes

What a person sees (progress, spinners, notes) goes through the `RebalanceUI` the caller
passes in; the default shows nothing, so the loop runs the same under a CLI, a test or a
controller.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.planner import PlanOptions
    from orchestrator.planner.placement import Placement
    from orchestrator.planning import DemandOverride
    from orchestrator.providers.base import Step
    from orchestrator.rebalance.run import Move
    from orchestrator.rebalance.steps import Fleet
    from orchestrator.spec import FleetSpec

logger = logging.getLogger(__name__)


class StepCallbacks(Protocol):
    """Told of each step of a run: while it waits (`waiting`) and when it is done (`done`)."""

    def waiting(self, seq: int, step: Step, note: str) -> None: ...

    def done(self, seq: int, step: Step) -> None: ...


class _Quiet:
    def waiting(self, seq: int, step: Step, note: str) -> None:
        pass

    def done(self, seq: int, step: Step) -> None:
        pass


@dataclass
class RebalanceUI:
    """What the loop shows, as callbacks. `note(text, kind)`: kind is info, warning, success or secret
    (a gateway API key, shown once); `status(text)`: a context for a slow phase; `progress(title, steps,
    current)`: a context yielding `StepCallbacks` for a run's steps (steps None: a resumed run, count unknown)."""

    note: Callable[[str, str], None] = lambda text, kind: None
    status: Callable[[str], AbstractContextManager[object]] = lambda text: contextlib.nullcontext()
    progress: Callable[[str, list | None, Fleet | None], AbstractContextManager[StepCallbacks]] = (
        lambda title, steps, current: contextlib.nullcontext(_Quiet()))


def rebalance_once(path: Path, settings: Settings, options: PlanOptions, *, decide: Callable[[Move], bool],
                   step_timeout_s: float, ui: RebalanceUI | None = None, demand: DemandOverride | None = None,
                   routes: bool = True, dry_run: bool = False) -> tuple[Move, int | None]:
    """One rebalance under the environment's lock: finish an interrupted run, plan, let `decide`
    (shown the move) say whether to apply, apply with progress; the move and the applied run's id.

    A pool whose cloud refuses to grow (quota, stockout) is held at the nodes it has and the
    move planned again, and shown to `decide` again. `demand` says where demand comes from
    (a trace, a measured window) when the spec's own demand is not the one to plan for.
    Routes (weighted DNS, docs/routes.md) follow every applied move, and a move with
    nothing to do when `routes`. A resumed run is stored and recorded in the ledger like any
    applied move. A `dry_run` writes nothing: no lock, an interrupted run is shown and left for
    the next real run, nothing is applied, stored or routed (whatever `decide` answers).
    """
    from orchestrator.catalog.price_catalog import load_price_catalog
    from orchestrator.inputs import load_inputs
    from orchestrator.ledger import open_ledger
    from orchestrator.plan_store import save_placement
    from orchestrator.planning import with_demand
    from orchestrator.rebalance.execute import StepFailed
    from orchestrator.rebalance.journal import environment_lock, last_applied, open_run
    from orchestrator.rebalance.run import apply, prepare, providers_for, refused_pool, resume
    from orchestrator.rollout.journal import (
        RolloutInFlight, checked_versions, in_flight, rollout_in_flight_message, running_versions,
    )
    from orchestrator.state import open_state, state_url

    ui = ui or RebalanceUI()
    catalog = load_price_catalog(settings.catalog_dir)
    fleet, inputs = load_inputs(path, catalog, settings.profiles_dir)
    if dry_run and fleet.state.url is None and not (settings.state_dir(inputs.environment) / "state.db").exists():
        url = "sqlite://"  # never rebalanced: a preview reads an empty database in memory instead of making the file
        store = open_state(url)
    else:
        url = state_url(settings, inputs.environment, fleet.state.url)
        store = open_ledger(settings, inputs.environment, fleet.state.url)  # the state database, ledger tables included
    try:
        providers = providers_for(fleet, inputs.environment, store, url, settings)
        if demand is not None and demand.active:
            with ui.status("measuring demand…"):
                fleet, inputs, notes = with_demand(fleet, inputs, path, catalog, demand, store=store, profiles_dir=settings.profiles_dir)
            for note in notes:
                ui.note(f"demand: {note}", "info")
        with contextlib.nullcontext() if dry_run else environment_lock(store, inputs.environment):
            if dry_run:
                unfinished = open_run(store, inputs.environment)
                if unfinished is not None:
                    ui.note(f"run {unfinished.id} was interrupted with {len(unfinished.remaining)} steps left; a rebalance "
                            "without --dry-run finishes it first (this preview plans from what runs now)", "warning")
            else:
                with ui.progress("finishing an interrupted rebalance", None, None) as progress:
                    resumed = resume(store, inputs.environment, providers, step_timeout_s=step_timeout_s,
                                     on_step=progress.done, on_wait=progress.waiting)
                if resumed is not None:
                    target = last_applied(store, inputs.environment)
                    if target is not None:
                        save_placement(settings, target)
                        _record(store, inputs.environment, target, fleet, inputs, catalog, options, settings, ui)
                    ui.note(f"resumed and finished run {resumed}", "info")
            rollout = in_flight(store, inputs.environment)
            if rollout is not None and not dry_run:
                raise RolloutInFlight(rollout_in_flight_message(rollout, path))
            versions = checked_versions(fleet, running_versions(store, inputs.environment))
            held: frozenset[str] = frozenset()
            while True:
                with ui.status("observing and planning…"):
                    move = prepare(fleet, inputs, catalog, providers, options, Path.cwd(), held, path.parent, versions)
                if not decide(move) or dry_run:
                    if not move.steps and routes and not dry_run:
                        _realize_routes(fleet, move, settings, ui)  # shares can change while replica counts do not
                    return move, None
                _announce_new_gateway_key(settings, inputs.environment, ui)
                try:
                    with ui.progress(f"rebalancing {inputs.environment}", move.steps, move.current) as progress:
                        run_id = apply(store, move, providers, step_timeout_s=step_timeout_s,
                                       on_step=progress.done, on_wait=progress.waiting)
                except StepFailed as exc:
                    pool = refused_pool(exc)
                    if pool is None or pool in held:
                        raise
                    ui.note(f"{exc}\nre-planning with {pool} held at the nodes it has…", "warning")
                    logger.warning("rebalance %s: %s refused to grow; re-planning without its growth: %s",
                                   inputs.environment, pool, exc)
                    held |= {pool}
                    continue
                save_placement(settings, move.target)
                _record(store, inputs.environment, move.target, fleet, inputs, catalog, options, settings, ui)
                _realize_routes(fleet, move, settings, ui)
                ui.note(f"applied run {run_id}: ${move.cost_before:,.2f}/h → ${move.cost_after:,.2f}/h", "success")
                return move, run_id
    finally:
        store.close()


def _record(store, environment: str, target: Placement, fleet: FleetSpec, inputs, catalog, options: PlanOptions,
            settings: Settings, ui: RebalanceUI) -> None:
    """The applied plan into the ledger, with baseline (a) computed as `plan` computes it (once per new plan)."""
    from orchestrator.ledger import record_placement
    from orchestrator.ledger.record import latest_apply, placement_digest
    from orchestrator.planning import planning, single_cloud_baseline

    last = latest_apply(store, environment)
    if last is not None and last.placement_sha256 == placement_digest(target):
        return
    with ui.status("computing the single-cloud baseline…"):
        cost, detail = single_cloud_baseline(planning(fleet, inputs, options, root=Path.cwd()), catalog, target,
                                             settings.profiles_dir)
    record_placement(store, environment, target, dt.datetime.now(dt.UTC), baseline_cost_per_hour=cost, baseline_detail=detail)


def _realize_routes(fleet: FleetSpec, move: Move, settings: Settings, ui: RebalanceUI) -> None:
    from orchestrator.routes import realize_routes

    with ui.status("updating routes…"):
        changes = realize_routes(fleet, move.target, settings)
    for change in changes:
        ui.note(f"route: {change}", "success")


def _announce_new_gateway_key(settings: Settings, environment: str, ui: RebalanceUI) -> None:
    """The gateway's API key is shown once, when it is made (the first apply starts the gateway)."""
    from orchestrator.gateway import gateway_api_key

    key = gateway_api_key(settings, environment)
    if key.created:
        ui.note(f"Gateway API key (shown once; kept in {key.source}, mode 0600): {key.value.get_secret_value()}", "secret")
