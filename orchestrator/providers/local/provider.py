"""The local provider: replicas as supervised processes on this machine, behind one vllm-router.

The provider itself is stateless: it writes desired counts to the state database, makes
sure the environment's supervisor process runs (`supervisor.py` does the work and outlives
any command), and reads back what is recorded, probing each replica and the gateway so that
`observe` reports what answers now.

A replica (or the gateway) counts as healthy only while it is a child of the running
supervisor and answers: one left by a supervisor that was killed may still answer, but
nothing would restart it, and it is a stray (`stray_processes`) until `down` or the next
supervisor kills it. So a rebalance (or `up`) after the supervisor was killed plans to start
the replicas again, and applying that starts a supervisor, which kills the strays first.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

import httpx
import psutil
from sqlalchemy import delete, select

from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.base import (
    Capability, FleetState, ObservedGateway, ObservedPool, ObservedReplica, Offer, Promote, Provider, ReplicaSpec,
    ResizePool, ScaleDown, ScaleUp, SetCanary, SetTraffic, Step, StepPending,
)
from orchestrator.gateway.lanes import read_lanes
from orchestrator.providers.local.processes import FLEET_TAG, alive, command_line, spawn, tagged
from orchestrator.providers.local.supervisor import SITE, fleet_tag, hold_lock, reap_stale, supervisor_command
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec
from orchestrator.state import (
    AsleepReplicas, CanaryReplicas, DesiredReplicas, GatewayRecord, ReplicaRecord, ReplicaStatus, StateStore, SupervisorRecord, TrafficWeights,
)

PROBE_TIMEOUT_S = 2.0
CRASH_LOOP_RESTARTS = 3
POLL_AFTER_S = 1.0
SUPERVISOR_MARKER = "orchestrator.providers.local.supervisor"


@dataclass(frozen=True)
class StrayProcess:
    """A process of the environment that no running supervisor owns."""

    pid: int
    command: str


class LocalProvider(Provider):
    """Runs the spec's `provider: local` pools on this machine (see module docstring)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.process_pids, Capability.traffic_weights})

    def __init__(self, spec: FleetSpec, environment: str, store: StateStore, state_url: str, settings: Settings) -> None:
        self.spec = spec
        self.environment = environment
        self.store = store
        self.state_url = state_url
        self.settings = settings
        self.pools = {p.name: p for p in spec.pools if p.provider == "local"}

    def offers(self) -> list[Offer]:
        return [Offer(pool=p.name, gpu=p.gpu or "CPU", gpus_per_node=p.gpus_per_node or 1, max_nodes=p.max_nodes,
                      cost_per_node_hour=p.cost_per_hour or 0.0) for p in self.pools.values()]

    def apply(self, step: Step) -> None:
        if step.pool not in self.pools:
            raise InputError(f"pool '{step.pool}' is not a local pool of {self.environment}. "
                             f"To fix: use one of {', '.join(self.pools) or 'none'}")
        if isinstance(step, ResizePool):  # this machine is the pool's one node while a supervisor runs
            self._ensure_supervisor()
            return
        if isinstance(step, SetTraffic):
            self._set_traffic(step)
            self._ensure_supervisor()
            self._wait_for_split(step)
            return
        self._set_desired(step)
        self._ensure_supervisor()
        state = self.observe()  # probes every replica: once per apply
        replicas = [r for r in state.replicas if (r.model, r.pool) == (step.model, step.pool)]
        if isinstance(step, ScaleUp) and f"{step.model}@{step.pool}" in state.asleep:
            return  # asleep while idle: the count is recorded, and its replicas start on the next request
        if isinstance(step, (ScaleUp, SetCanary, Promote)):
            stable = self._stable(step)
            wanted = stable.count if isinstance(step, Promote) and stable else step.count
            stable_version = ReplicaSpec.model_validate_json(stable.replica_json).version if stable else None
            # a canary's replicas are its version's that the stable replicas do not run (its row may be gone: count 0)
            version = [r for r in replicas if r.version == step.replica.version
                       and (r.version != stable_version) == isinstance(step, SetCanary)]
            self._wait_ready(step, version, wanted)
            others = [r for r in replicas if r.version != step.replica.version]
            if isinstance(step, Promote) and others:
                raise StepPending(f"{step.model}@{step.pool}: {len(others)} replicas of the old version draining", POLL_AFTER_S)
            if isinstance(step, SetCanary) and len(version) > step.count:
                raise StepPending(f"{step.model}@{step.pool}: {len(version)} canary replicas, stopping down to {step.count}",
                                  POLL_AFTER_S)
            return
        stable = [r for r in replicas if not r.canary]
        if len(stable) > step.count:
            raise StepPending(f"{step.model}@{step.pool}: {len(stable)} replicas, stopping down to {step.count}", POLL_AFTER_S)

    def _wait_ready(self, step: ScaleUp | SetCanary | Promote, replicas: list[ObservedReplica], count: int) -> None:
        """StepPending until `count` of `replicas` answer; ProviderError when one keeps crashing instead."""
        ready = sum(r.healthy for r in replicas)
        if ready < count and any(r.restarts >= CRASH_LOOP_RESTARTS and not r.healthy for r in replicas):
            raise ProviderError(
                f"{step.model}@{step.pool}: a replica keeps exiting before it is ready ({CRASH_LOOP_RESTARTS} "
                f"restarts). To fix: read its log under {self.settings.state_dir(self.environment) / 'logs'}")
        if ready < count:
            raise StepPending(f"{step.model}@{step.pool}: {ready} of {count} {step.replica.version or ''} replicas ready",
                              POLL_AFTER_S)

    def _stable(self, step: ScaleUp | SetCanary | Promote) -> DesiredReplicas | None:
        with self.store.session() as session:
            return session.get(DesiredReplicas, (self.environment, step.model, step.pool))

    def _set_traffic(self, step: SetTraffic) -> None:
        with self.store.session() as session:
            session.merge(TrafficWeights(environment=self.environment, model=step.model,
                                         weights_json=json.dumps(step.weights, sort_keys=True)))

    def _wait_for_split(self, step: SetTraffic) -> None:
        """StepPending until the gateway reports the weights (it re-reads its traffic file every second)."""
        gateway = self.observe().gateway
        if gateway is None or not gateway.healthy:
            raise StepPending(f"the gateway of {self.environment} is not up yet", POLL_AFTER_S)
        try:
            with httpx.Client(timeout=PROBE_TIMEOUT_S) as http:
                lanes = read_lanes(http, gateway.url, self._api_key())
        except (httpx.HTTPError, ValueError) as exc:
            raise StepPending(f"the gateway of {self.environment} does not report its split yet: {exc}", POLL_AFTER_S) from exc
        if lanes.get("weights", {}).get(step.model) != step.weights:
            raise StepPending(f"the gateway has not taken the split {step.weights} of {step.model} yet", POLL_AFTER_S)

    def _api_key(self) -> str:
        from orchestrator.gateway import gateway_api_key

        return gateway_api_key(self.settings, self.environment).value.get_secret_value()

    def _set_desired(self, step: Step) -> None:
        with self.store.session() as session:
            row = session.get(DesiredReplicas, (self.environment, step.model, step.pool))
            canary = session.get(CanaryReplicas, (self.environment, step.model, step.pool))
            if isinstance(step, SetCanary):
                if step.count == 0 and canary is not None:
                    session.delete(canary)
                elif step.count:
                    session.merge(CanaryReplicas(environment=self.environment, model=step.model, pool=step.pool,
                                                 count=step.count, replica_json=step.replica.model_dump_json()))
            elif isinstance(step, Promote):
                if row is not None:
                    row.replica_json = step.replica.model_dump_json()
                if canary is not None:
                    session.delete(canary)
            elif isinstance(step, ScaleUp):
                if row is None:
                    session.add(DesiredReplicas(environment=self.environment, model=step.model, pool=step.pool,
                                                count=step.count, replica_json=step.replica.model_dump_json()))
                else:
                    row.count = max(row.count, step.count)
                    row.replica_json = step.replica.model_dump_json()
            elif isinstance(step, ScaleDown) and row is not None:
                row.count = min(row.count, step.count)

    def _supervisor_pid(self) -> int | None:
        with self.store.session() as session:
            record = session.get(SupervisorRecord, self.environment)
            pid = record.pid if record else None
        return pid if pid and alive(pid) and SUPERVISOR_MARKER in command_line(pid) else None

    def _ensure_supervisor(self) -> None:
        if self._supervisor_pid() is not None:
            return
        lock = hold_lock(self.settings, self.environment)
        if lock is None:  # one is starting right now
            return
        lock.close()
        log_path = self.settings.state_dir(self.environment) / "logs" / "supervisor.log"
        env = dict(os.environ, GPUFLEET_HOME=str(self.settings.home), **{FLEET_TAG: self._tag})
        process = spawn(supervisor_command(self.environment, self.state_url), log_path, env, new_session=True)
        with self.store.session() as session:
            session.merge(SupervisorRecord(environment=self.environment, pid=process.pid, log_path=str(log_path)))

    def observe(self) -> FleetState:
        with self.store.session() as session:
            records = session.scalars(select(ReplicaRecord).where(
                ReplicaRecord.environment == self.environment,
                ReplicaRecord.status.in_([ReplicaStatus.starting, ReplicaStatus.ready, ReplicaStatus.crashed]),
            ).order_by(ReplicaRecord.id)).all()
            gateway = session.get(GatewayRecord, (self.environment, SITE))
            stable = session.scalars(select(DesiredReplicas).where(DesiredReplicas.environment == self.environment)).all()
            planned = {f"{d.model}@{d.pool}": d.count for d in stable}
            versions = {(d.model, d.pool): ReplicaSpec.model_validate_json(d.replica_json).version for d in stable}
            asleep = {f"{a.model}@{a.pool}": planned.get(f"{a.model}@{a.pool}", 0) for a in session.scalars(
                select(AsleepReplicas).where(AsleepReplicas.environment == self.environment))}
            canaries = {(c.model, c.pool): v for c in session.scalars(
                select(CanaryReplicas).where(CanaryReplicas.environment == self.environment))
                if (v := ReplicaSpec.model_validate_json(c.replica_json).version) != versions.get((c.model, c.pool))}
        supervisor, owned = self._supervised()
        supervising = supervisor is not None
        urls = [r.url for r in records] + ([gateway.url] if gateway and gateway.running else [])
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as http, ThreadPoolExecutor(max_workers=8) as pool:
            healthy = dict(zip(urls, pool.map(lambda url: _answers(http, url), urls), strict=True))
        replicas = [ObservedReplica(model=r.model, pool=r.pool, url=r.url, pid=r.pid, restarts=r.restarts,
                                    version=r.version, canary=canaries.get((r.model, r.pool), "") == r.version,
                                    healthy=r.pid in owned and r.status is ReplicaStatus.ready and healthy.get(r.url, False))
                    for r in records if r.url]
        nodes = 1 if supervising else 0  # this machine is the pool's one node while the supervisor runs
        return FleetState(
            gateway=ObservedGateway(url=gateway.url, metrics_url=gateway.metrics_url,
                                    healthy=gateway.pid in owned and gateway.running and healthy.get(gateway.url, False))
            if gateway else None,
            pools=[ObservedPool(pool=name, nodes=nodes, healthy_nodes=nodes) for name in self.pools],
            replicas=replicas, planned=planned, asleep=asleep)

    def release(self) -> None:
        """Stop the supervisor (it drains every replica and stops the gateway); StepPending until it has."""
        with self.store.session() as session:
            for table in (DesiredReplicas, CanaryReplicas, TrafficWeights, AsleepReplicas):
                session.execute(delete(table).where(table.environment == self.environment))
        pid = self._supervisor_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            raise StepPending(f"stopping the local replicas and gateway of {self.environment}", POLL_AFTER_S)
        lock = hold_lock(self.settings, self.environment)
        if lock is None:
            raise StepPending(f"a supervisor of {self.environment} is starting or stopping", POLL_AFTER_S)
        try:  # no supervisor runs, and none can start meanwhile: whatever still runs is left behind
            reap_stale(self.store, self.environment, self._tag)
            with self.store.session() as session:
                session.execute(delete(SupervisorRecord).where(SupervisorRecord.environment == self.environment))
        finally:
            lock.close()

    def stray_processes(self) -> list[StrayProcess]:
        """Processes of the environment (found by its tag) that are neither the running supervisor nor
        one of its descendants: all of them when no supervisor runs."""
        supervisor, owned = self._supervised()
        strays = []
        for process in tagged(self._tag):
            if process.pid != supervisor and process.pid not in owned:
                with contextlib.suppress(psutil.Error):  # gone meanwhile
                    strays.append(StrayProcess(process.pid, " ".join(process.cmdline()).strip()[:200]))
        return strays

    def _supervised(self) -> tuple[int | None, set[int]]:
        """The running supervisor's pid (None if none runs) and the pids of its descendants."""
        pid = self._supervisor_pid()
        if pid is None:
            return None, set()
        try:
            return pid, {child.pid for child in psutil.Process(pid).children(recursive=True)}
        except psutil.Error:  # it died just now
            return None, set()

    @property
    def _tag(self) -> str:
        return fleet_tag(self.settings, self.environment)


def _answers(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(f"{url}/health").status_code == 200
    except httpx.HTTPError:
        return False
