"""The local provider: replicas as supervised processes on this machine, behind one vllm-router.

The provider itself is stateless: it writes desired counts to the state database, makes
sure the environment's supervisor process runs (`supervisor.py` does the work and outlives
any command), and reads back what is recorded, probing each replica and the gateway so that
`observe` reports what answers now.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import httpx
from sqlalchemy import delete, select

from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.base import (
    Capability, FleetState, ObservedGateway, ObservedPool, ObservedReplica, Offer, Provider, ResizePool, ScaleDown,
    ScaleUp, Step, StepPending,
)
from orchestrator.providers.local.processes import alive, command_line, spawn
from orchestrator.providers.local.supervisor import SITE, hold_lock, reap_stale, supervisor_command
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec
from orchestrator.state import DesiredReplicas, GatewayRecord, ReplicaRecord, ReplicaStatus, StateStore, SupervisorRecord

PROBE_TIMEOUT_S = 2.0
CRASH_LOOP_RESTARTS = 3
POLL_AFTER_S = 1.0
SUPERVISOR_MARKER = "orchestrator.providers.local.supervisor"


class LocalProvider(Provider):
    """Runs the spec's `provider: local` pools on this machine (see module docstring)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.process_pids})

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
        if isinstance(step, ResizePool):  # this machine is the pool's one node; nothing to add or remove
            return
        self._set_desired(step)
        self._ensure_supervisor()
        replicas = [r for r in self.observe().replicas if (r.model, r.pool) == (step.model, step.pool)]
        if isinstance(step, ScaleUp):
            ready = sum(r.healthy for r in replicas)
            if ready < step.count and any(r.restarts >= CRASH_LOOP_RESTARTS and not r.healthy for r in replicas):
                raise ProviderError(
                    f"{step.model}@{step.pool}: a replica keeps exiting before it is ready ({CRASH_LOOP_RESTARTS} "
                    f"restarts). To fix: read its log under {self.settings.state_dir(self.environment) / 'logs'}")
            if ready < step.count:
                raise StepPending(f"{step.model}@{step.pool}: {ready} of {step.count} replicas ready", POLL_AFTER_S)
        elif len(replicas) > step.count:
            raise StepPending(f"{step.model}@{step.pool}: {len(replicas)} replicas, stopping down to {step.count}", POLL_AFTER_S)

    def _set_desired(self, step: Step) -> None:
        with self.store.session() as session:
            row = session.get(DesiredReplicas, (self.environment, step.model, step.pool))
            if isinstance(step, ScaleUp):
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
        env = dict(os.environ, GPUFLEET_HOME=str(self.settings.home))
        process = spawn(supervisor_command(self.environment, self.state_url), log_path, env)
        with self.store.session() as session:
            session.merge(SupervisorRecord(environment=self.environment, pid=process.pid, log_path=str(log_path)))

    def observe(self) -> FleetState:
        with self.store.session() as session:
            records = session.scalars(select(ReplicaRecord).where(
                ReplicaRecord.environment == self.environment,
                ReplicaRecord.status.in_([ReplicaStatus.starting, ReplicaStatus.ready, ReplicaStatus.crashed]),
            ).order_by(ReplicaRecord.id)).all()
            gateway = session.get(GatewayRecord, (self.environment, SITE))
            planned = {f"{d.model}@{d.pool}": d.count for d in session.scalars(
                select(DesiredReplicas).where(DesiredReplicas.environment == self.environment))}
        supervising = self._supervisor_pid() is not None
        urls = [r.url for r in records] + ([gateway.url] if gateway and gateway.running else [])
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as http, ThreadPoolExecutor(max_workers=8) as pool:
            healthy = dict(zip(urls, pool.map(lambda url: _answers(http, url), urls), strict=True))
        replicas = [ObservedReplica(model=r.model, pool=r.pool, url=r.url, pid=r.pid, restarts=r.restarts,
                                    healthy=r.status is ReplicaStatus.ready and healthy.get(r.url, False))
                    for r in records if r.url]
        nodes = 1 if supervising else 0  # this machine is the pool's one node while the supervisor runs
        return FleetState(
            gateway=ObservedGateway(url=gateway.url, metrics_url=gateway.metrics_url,
                                    healthy=gateway.running and healthy.get(gateway.url, False)) if gateway else None,
            pools=[ObservedPool(pool=name, nodes=nodes, healthy_nodes=nodes) for name in self.pools],
            replicas=replicas, planned=planned)

    def release(self) -> None:
        """Stop the supervisor (it drains every replica and stops the gateway); StepPending until it has."""
        with self.store.session() as session:
            session.execute(delete(DesiredReplicas).where(DesiredReplicas.environment == self.environment))
        pid = self._supervisor_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            raise StepPending(f"stopping the local replicas and gateway of {self.environment}", POLL_AFTER_S)
        reap_stale(self.store, self.environment)  # a supervisor that was killed leaves processes behind
        with self.store.session() as session:
            session.execute(delete(SupervisorRecord).where(SupervisorRecord.environment == self.environment))


def _answers(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(f"{url}/health").status_code == 200
    except httpx.HTTPError:
        return False
