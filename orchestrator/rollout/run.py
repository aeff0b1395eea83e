"""One rollout of a model to a new version, as `orchestrator rollout` runs it.

    lock → resume the unfinished rollout (or plan a new one: plan.py) → for each traffic step:
    start the new version's replicas for it, shift that share at the gateway, watch and
    judge (gate.py) → promote (the stable replicas become the new version, make-before-break)
    or roll back (all traffic to the old version, the new one's replicas stopped) → pools back
    to their size

Every change is a provider step (`SetCanary`, `SetTraffic`, `Promote`, `ResizePool`): an
absolute target, applied until it holds, so a rollout that dies anywhere is resumed by the
next `orchestrator rollout` of the same model and version from the step it was at (that
step is watched again from its start). It holds the environment's lock, like rebalance,
and rebalance refuses to run while a rollout is unfinished.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from orchestrator.contracts import Document
from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.base import Capability, Promote, Provider, ResizePool, SetCanary, SetTraffic, Step
from orchestrator.rebalance.execute import apply_step
from orchestrator.rebalance.journal import heartbeat
from orchestrator.rollout import journal
from orchestrator.rollout.gate import Verdict, VersionFigures, judge
from orchestrator.rollout.plan import RolloutPlan, plan_rollout
from orchestrator.settings import Settings
from orchestrator.spec.models import Model
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)

WATCH_POLL_S = 5.0
FIGURES_ATTEMPTS = 4  # a metrics source down for ~15 s is waited out, not judged


class RolloutReport(Document):
    """What a rollout did (or, with --dry-run, would do): `--format json` prints it."""

    schema_version: Literal[1] = Field(1, description="Changes only with an incompatible change (docs/contracts.md).")
    environment: str
    model: str
    from_version: str
    to_version: str
    outcome: Literal["planned", "promoted", "rolled_back", "unchanged"] = Field(
        description="planned: a dry run; unchanged: the model already runs that version.")
    reason: str | None = Field(None, description="Why it was rolled back, or why nothing changed.")
    plan: RolloutPlan | None = Field(None, description="Replicas of the new version per pool at each step; null when unchanged.")
    verdicts: list[Verdict] = Field(default_factory=list, description="Each judged step, in order.")


@dataclass
class RolloutUI:
    """What the rollout shows, as callbacks: `note(text, kind)` (info, warning, success) and `progress(title, total)`,
    a context yielding `update(completed, description)`."""

    note: Callable[[str, str], None] = lambda text, kind: None
    progress: Callable[[str, int], AbstractContextManager[Callable[[int, str], None]]] = (
        lambda title, total: nullcontext(lambda completed, description: None))


@dataclass
class Rollout:
    """A rollout under way: its plan, where it is recorded, and how it reaches the fleet."""

    environment: str
    model: Model
    plan: RolloutPlan
    rollout_id: int
    store: StateStore
    providers: dict[str, Provider]
    figures: Callable[[], dict[str, VersionFigures]]
    step_timeout_s: float
    ui: RolloutUI
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    verdicts: list[Verdict] = field(default_factory=list)

    def run(self, first_step: int) -> RolloutReport:
        """Steps from `first_step` on, then promote; rolls back at the first failed step."""
        plan = self.plan
        with self.ui.progress(f"rolling {plan.model} out to {plan.to_version}", len(plan.steps) + 1) as update:
            self._grow()
            last_old = VersionFigures()
            for index in range(first_step, len(plan.steps)):
                percent = plan.steps[index]
                journal.record_step(self.store, self.rollout_id, index, percent)
                update(index, f"step {index + 1}: starting {plan.to_version} replicas for {percent:g} %")
                for pool in plan.pools:
                    self._apply(SetCanary(model=plan.model, pool=pool.pool, count=pool.canary[index],
                                          replica=plan.replica[pool.pool]))
                update(index, f"step {index + 1}: shifting {percent:g} % of {plan.model} to {plan.to_version}")
                self._shift({plan.from_version: 100 - percent, plan.to_version: percent})
                verdict, last_old = self._watch(index, percent, last_old, lambda text, i=index: update(i, text))
                if verdict.decision == "fail":
                    return self._roll_back("; ".join(verdict.reasons), update)
                self.ui.note(f"step {index + 1} ({percent:g} %) passed: {verdict.reasons[0]}", "success")
            update(len(plan.steps), f"promoting {plan.to_version}")
            for pool in plan.pools:
                self._apply(Promote(model=plan.model, pool=pool.pool, replica=plan.replica[pool.pool]))
            self._shift({plan.to_version: 100})
            self._shrink()
            journal.finish(self.store, self.rollout_id, "promoted")
            update(len(plan.steps) + 1, f"{plan.model} runs {plan.to_version}")
        return self._report("promoted")

    def roll_back(self, reason: str) -> RolloutReport:
        with self.ui.progress(f"rolling {self.plan.model} back to {self.plan.from_version}", 1) as update:
            return self._roll_back(reason, update)

    def _roll_back(self, reason: str, update: Callable[[int, str], None]) -> RolloutReport:
        """The new version's replicas stop (each leaves its gateway or Service first, so its share falls to the
        old version at once), then all traffic is weighted to the old version, then pools shrink back."""
        plan = self.plan
        self.ui.note(f"rolling back: {reason}", "warning")
        update(0, f"stopping {plan.model} {plan.to_version}")
        for pool in plan.pools:
            self._apply(SetCanary(model=plan.model, pool=pool.pool, count=0, replica=plan.replica[pool.pool]))
        update(0, f"sending all of {plan.model} to {plan.from_version}")
        self._shift({plan.from_version: 100})
        self._shrink()
        journal.finish(self.store, self.rollout_id, "rolled_back", reason)
        return self._report("rolled_back", reason)

    def _watch(self, index: int, percent: float, last_old: VersionFigures,
               update: Callable[[str], None]) -> tuple[Verdict, VersionFigures]:
        """Judge the step until it passes or fails; the old version's window figures (the baseline of a step
        that sends it nothing: the last one it had traffic in)."""
        plan, policy = self.plan, self.model.rollout
        start, started = self._read_figures(), self.clock()
        while True:
            now = self._read_figures()
            new = now.get(plan.to_version, VersionFigures()).since(start.get(plan.to_version, VersionFigures()))
            old = now.get(plan.from_version, VersionFigures()).since(start.get(plan.from_version, VersionFigures()))
            baseline = old if old.requests or percent < 100 else last_old
            verdict = judge(index, percent, policy, self.model.slo, new, baseline, self.clock() - started)
            if verdict.decision != "wait":
                self.verdicts.append(verdict)
                journal.record_verdicts(self.store, self.rollout_id,
                                        json.dumps([v.model_dump(mode="json") for v in self.verdicts]))
                return verdict, baseline
            update(f"step {index + 1} ({percent:g} %): {'; '.join(verdict.reasons)}")
            heartbeat(self.store, self.environment)
            self.sleep(WATCH_POLL_S)

    def _read_figures(self) -> dict[str, VersionFigures]:
        """The figures now; a source that fails (Prometheus down) is asked again, up to FIGURES_ATTEMPTS in a row,
        before the rollout stops (unfinished: resume it, or --abort)."""
        attempt = 1
        while True:
            try:
                return self.figures()
            except ProviderError as exc:
                if attempt >= FIGURES_ATTEMPTS:
                    raise ProviderError(f"{exc}. The rollout is unfinished: fix the metrics source and run the same "
                                        "`orchestrator rollout` again to resume it, or `--abort` to roll back") from exc
                logger.warning("rollout %s: figures not read (attempt %d of %d): %s", self.plan.model, attempt,
                               FIGURES_ATTEMPTS, exc)
                heartbeat(self.store, self.environment)
                self.sleep(WATCH_POLL_S)
                attempt += 1

    def _shift(self, weights: dict[str, float]) -> None:
        """Every pool's gateway (local) or Service (Kubernetes: a check that its pod counts give these weights)."""
        for pool in self.plan.pools:
            self._apply(SetTraffic(model=self.plan.model, pool=pool.pool, weights=weights))

    def _grow(self) -> None:
        for pool in self.plan.pools:
            if pool.grow_to is not None:
                self._apply(ResizePool(pool=pool.pool, nodes=pool.grow_to))

    def _shrink(self) -> None:
        for pool in self.plan.pools:
            if pool.grow_to is not None:
                self._apply(ResizePool(pool=pool.pool, nodes=pool.nodes))

    def _apply(self, step: Step) -> None:
        apply_step(self.store, self.environment, step, self.providers[step.pool],
                   step_timeout_s=self.step_timeout_s, sleep=self.sleep, where=f"rollout step {step.kind}",
                   resume_with="rollout")

    def _report(self, outcome: str, reason: str | None = None) -> RolloutReport:
        return RolloutReport(environment=self.environment, model=self.plan.model, from_version=self.plan.from_version,
                             to_version=self.plan.to_version, outcome=outcome, reason=reason, plan=self.plan,
                             verdicts=self.verdicts)


def _figures_source(settings: Settings, environment: str, providers: dict[str, Provider],
                    plan: RolloutPlan) -> Callable[[], dict[str, VersionFigures]]:
    """Where each version's figures come from: the Prometheus of `rollout_prometheus_url`, else (local pools only)
    the local gateway's counts and the replicas' own /metrics."""
    if settings.rollout_prometheus_url:
        from orchestrator.rollout.prometheus import prometheus_figures

        return prometheus_figures(settings.rollout_prometheus_url, environment, plan.model, plan.from_version)
    remote = sorted(p.pool for p in plan.pools if Capability.traffic_weights not in providers[p.pool].capabilities)
    if remote:
        raise InputError(f"pools {', '.join(remote)} run {plan.model} on Kubernetes, where gpufleet cannot read the "
                         "replicas' metrics itself. To fix: set GPUFLEET_ROLLOUT_PROMETHEUS_URL to a Prometheus that "
                         "scrapes them (docs/rollouts-kubernetes.md)")
    from orchestrator.gateway import gateway_api_key
    from orchestrator.rebalance.run import observe
    from orchestrator.rollout.metrics import scrape

    key = gateway_api_key(settings, environment).value.get_secret_value()
    return lambda: scrape(observe(providers), key, plan.model, plan.from_version)


def rollout(path: Path, settings: Settings, model_name: str, to_version: str | None, *, abort: bool = False,
            dry_run: bool = False, step_timeout_s: float = 1800.0, ui: RolloutUI | None = None,
            sleep: Callable[[float], None] = time.sleep) -> RolloutReport:
    """Roll `model_name` out to `to_version` (or, with `abort`, roll its unfinished rollout back); the report."""
    from orchestrator.rebalance.journal import environment_lock, last_applied
    from orchestrator.rebalance.run import fleet_of, observe, providers_for
    from orchestrator.spec import load_spec
    from orchestrator.state import open_state, state_url

    ui = ui or RolloutUI()
    spec = load_spec(path)
    environment = spec.environment
    model = next((m for m in spec.models if m.name == model_name), None)
    if model is None:
        raise InputError(f"{path}: no model named {model_name!r}. To fix: use one of {', '.join(m.name for m in spec.models)}")
    declared = [model.version, *(v.name for v in model.versions)]
    if not abort and to_version not in declared:
        raise InputError(f"{path}: models[{model.name}] has no version {to_version!r}. To fix: use one of "
                         f"{', '.join(declared)}, or add it under the model's `versions`")
    url = state_url(settings, environment, spec.state.url)
    store = open_state(url)
    try:
        providers = providers_for(spec, environment, store, url, settings)
        with nullcontext() if dry_run else environment_lock(store, environment):
            unfinished = journal.in_flight(store, environment)
            if unfinished is not None and (unfinished.model != model.name or not (
                    abort or dry_run or unfinished.to_version == to_version)):
                raise journal.RolloutInFlight(journal.rollout_in_flight_message(unfinished, path))
            if unfinished is not None:
                plan, first, rollout_id = RolloutPlan.model_validate_json(unfinished.plan_json), unfinished.step, unfinished.id
                judged = journal.judged_before(unfinished)
                figures = (lambda: {}) if abort else _figures_source(settings, environment, providers, plan)  # abort judges nothing
                if dry_run:
                    return RolloutReport(environment=environment, model=model.name, from_version=plan.from_version,
                                         to_version=plan.to_version, outcome="planned", plan=plan,
                                         reason=f"resumes at step {first + 1}")
                ui.note(f"resuming the rollout of {plan.model} to {plan.to_version} at step {first + 1}", "info")
            elif abort:
                raise InputError(f"no rollout of {model.name} is unfinished in {environment}: nothing to abort")
            else:
                running = journal.checked_versions(spec, journal.running_versions(store, environment)).get(model.name,
                                                                                                             model.version)
                if running == to_version:
                    return RolloutReport(environment=environment, model=model.name, from_version=running,
                                         to_version=to_version, outcome="unchanged",
                                         reason=f"{model.name} already runs {to_version}")
                applied = last_applied(store, environment)
                if applied is None:
                    raise InputError(f"{environment} has no applied plan. To fix: run `orchestrator up` or "
                                     "`orchestrator rebalance` first")
                by_pods = frozenset(p for p, provider in providers.items()
                                    if Capability.traffic_weights not in provider.capabilities)
                state = observe(providers)
                asleep = sorted(key for key in state.asleep if key.rpartition("@")[0] == model.name)
                if asleep:
                    raise InputError(f"{model.name} is asleep ({', '.join(asleep)}: scale to zero), so its running version "
                                     "has no figures to be compared with. To fix: wake it with a request, then roll out")
                plan = plan_rollout(model, running, to_version, fleet_of(state), applied, by_pods)
                figures = _figures_source(settings, environment, providers, plan)  # before anything is recorded
                if dry_run:
                    return RolloutReport(environment=environment, model=model.name, from_version=running,
                                         to_version=to_version, outcome="planned", plan=plan)
                rollout_id, first, judged = journal.start(store, environment, model.name, running, to_version,
                                                          plan.model_dump_json()), 0, []
            run = Rollout(environment, model, plan, rollout_id, store, providers, figures=figures,
                          step_timeout_s=step_timeout_s, ui=ui, sleep=sleep, verdicts=judged)  # a resumed one keeps its verdicts
            if abort:
                return run.roll_back("aborted by `orchestrator rollout --abort`")
            return run.run(first)
    finally:
        store.close()
