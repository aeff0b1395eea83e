"""The local supervisor: one background process per environment that owns its replicas and gateway.

`orchestrator up` records how many replicas of what should run (the `desired_replicas`
table) and starts this process when none runs; it outlives the command, so `status` and
`down` from later processes find everything through the state database. Every
`POLL_S` it reconciles:

- the gateway (vllm-router) runs, on the same port across restarts; its worker list is
  compared with the ready replicas every `SYNC_S` and corrected;
- a replica whose process exited unasked is removed from the gateway, its process group
  killed, recorded `crashed`, and started again (same record, new port) after a backoff of
  1, 2, 4 ... 30 s;
- a starting replica that answers `/health` is added to the gateway and recorded `ready`;
- a (model, pool, version) with fewer live replicas than desired gets new ones; one with more
  drains the surplus: out of the gateway first, then, `GATEWAY_SETTLE_S` later (requests
  the router had already sent its way still arrive), SIGTERM (the entrypoint lets vLLM
  finish in-flight requests), killed if still running past the drain timeout;
- the desired versions of a (model, pool) are its stable one (`desired_replicas`) and a
  rollout's canary (`canary_replicas`); a replica of another version (superseded by a
  promotion) drains once the versions that replace it have all their replicas ready;
- each version's replicas join the gateway as `<model>@<version>` (gateway/lanes.py), and
  the split the rollout asks for (`traffic_weights`) is written to the gateway's traffic file;
- a model that scales to zero (`ReplicaSpec.idle_after_s`) and has not been asked for that
  long (the gateway's `/gateway/lanes` says when it last was) is put to sleep: its replicas
  drain and stop, and `asleep_replicas` records it. A request for it (the gateway holds it
  and counts it `waiting`) wakes it: the replicas start again and the held request goes on.

SIGTERM (from `down`) drains every replica the same way, stops the gateway and exits.
A lock file makes it one supervisor per environment. Everything it starts carries the
environment's tag (`processes.FLEET_TAG`), so processes left by a supervisor that was
killed (a replica, the vLLM server under it, the gateway) are found by the tag and killed
when the next one starts, or by `down`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import delete, select

from orchestrator.gateway import GatewayWorker, RouterClient, RouterError, gateway_api_key, gateway_command
from orchestrator.gateway.lanes import Traffic, lane_name, read_lanes
from orchestrator.providers.base import ReplicaSpec
from orchestrator.providers.local.processes import (
    FLEET_TAG, LOOPBACK, free_port, kill_group, kill_tagged, signal_group, spawn,
)
from orchestrator.replica.entrypoint import KILL_GRACE_S
from orchestrator.settings import Settings, load_settings
from orchestrator.profiles.files import write_atomically
from orchestrator.state import (
    AsleepReplicas, CanaryReplicas, DesiredReplicas, GatewayRecord, ReplicaRecord, ReplicaStatus, StateStore, SupervisorRecord,
    TrafficWeights, open_state,
)

logger = logging.getLogger(__name__)

POLL_S = 0.5
SYNC_S = 5.0
HEALTH_TIMEOUT_S = 2.0
ROUTER_START_TIMEOUT_S = 20.0
MAX_BACKOFF_S = 30.0
STOP_MARGIN_S = 5.0
GATEWAY_SETTLE_S = 1.0  # after a worker's removal, requests the router already routed to it still arrive
SITE = "local"
TRAFFIC_FILE = "traffic.json"
REPLICA_MARKER = "orchestrator.replica"
LIVE = (ReplicaStatus.starting, ReplicaStatus.ready, ReplicaStatus.crashed)


def lock_path(settings: Settings, environment: str) -> Path:
    return settings.state_dir(environment) / "supervisor.lock"


def fleet_tag(settings: Settings, environment: str) -> str:
    """The value of `FLEET_TAG` every process of this environment (on this GPUFLEET_HOME) carries."""
    return str(settings.state_dir(environment).resolve())


def supervisor_command(environment: str, state_url: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.providers.local.supervisor", "--env", environment, "--state-url", state_url]


@dataclass
class Replica:
    """A replica the supervisor owns: its record, process and where it is in its life."""

    record_id: int
    model: str
    pool: str
    spec: ReplicaSpec
    log_path: Path
    status: ReplicaStatus = ReplicaStatus.starting
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    restart_at: float = 0.0
    ready_at: float | None = None  # epoch seconds it last became ready
    term_at: float | None = None  # when a draining replica gets SIGTERM; None once sent
    stop_deadline: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def key(self) -> tuple[str, str, str | None]:
        return self.model, self.pool, self.spec.version

    @property
    def worker(self) -> GatewayWorker:
        return GatewayWorker(url=self.url, model_id=lane_name(self.spec.served_name, self.spec.version))


class Supervisor:
    """Reconciles one environment's local replicas and gateway with the desired counts (module docstring)."""

    def __init__(self, environment: str, store: StateStore, settings: Settings) -> None:
        self.environment = environment
        self.store = store
        self.settings = settings
        self.logs = settings.state_dir(environment) / "logs"
        self.api_key = gateway_api_key(settings, environment).value
        self.replicas: dict[int, Replica] = {}
        self.router: subprocess.Popen[bytes] | None = None
        self.gateway: RouterClient | None = None
        self.gateway_port, self.metrics_port = self._gateway_ports()
        self.stopping = False
        self.last_sync = 0.0
        self.traffic_file = settings.state_dir(environment) / TRAFFIC_FILE
        self.traffic: str | None = None  # what the traffic file holds
        self.waking: dict[tuple[str, str], float] = {}  # (model, pool) woken -> when (monotonic)
        self.http = httpx.Client(timeout=HEALTH_TIMEOUT_S)

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        reap_stale(self.store, self.environment, fleet_tag(self.settings, self.environment))
        failures = 0
        try:
            while not self.stopping:
                try:
                    self.reconcile()
                    failures = 0
                except Exception:  # the loop's edge: log, back off, go on
                    failures += 1
                    logger.exception("reconcile failed (%d in a row); retrying", failures)
                    time.sleep(min(MAX_BACKOFF_S, 2.0**failures))
                time.sleep(POLL_S)
        finally:
            self.shutdown()

    def _stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            logger.info("signal %d: draining every replica, then stopping", signum)
        self.stopping = True

    def reconcile(self) -> None:
        self._keep_router()
        for replica in list(self.replicas.values()):
            self._poll(replica)
        desired = self._desired()
        asleep = self._sleep_or_wake(desired)
        for (model, pool, _version), (count, spec) in desired.items():
            self._scale(model, pool, 0 if (model, pool) in asleep else count, spec)
        for replica in list(self.replicas.values()):
            if replica.key not in desired and replica.status in LIVE and not self._replacing(replica, desired):
                self._drain(replica)
        self._write_traffic(desired)
        if time.monotonic() - self.last_sync > SYNC_S:
            self._sync_gateway()

    def _replacing(self, replica: Replica, desired: dict[tuple[str, str, str | None], tuple[int, ReplicaSpec]]) -> bool:
        """Whether a replica of a version no longer desired must keep serving: the versions its (model, pool)
        moves to do not have all their replicas ready yet (make-before-break across a promotion)."""
        if replica.status is not ReplicaStatus.ready:
            return False
        for key, (count, _spec) in desired.items():
            if key[:2] == (replica.model, replica.pool):
                ready = sum(r.key == key and r.status is ReplicaStatus.ready for r in self.replicas.values())
                if ready < count:
                    return True
        return False

    # --- replicas ---------------------------------------------------------------------------

    def _desired(self) -> dict[tuple[str, str, str | None], tuple[int, ReplicaSpec]]:
        """(model, pool, version) -> (count, spec): the stable replicas and any rollout's canary (the larger
        count where a canary runs the stable version, as while a promotion takes it over)."""
        desired: dict[tuple[str, str, str | None], tuple[int, ReplicaSpec]] = {}
        with self.store.session() as session:
            for table in (DesiredReplicas, CanaryReplicas):
                for row in session.scalars(select(table).where(table.environment == self.environment)):
                    spec = ReplicaSpec.model_validate_json(row.replica_json)
                    key = (row.model, row.pool, spec.version)
                    count, first = desired.get(key, (0, spec))
                    desired[key] = (max(count, row.count), first)
        return desired

    def _write_traffic(self, desired: dict[tuple[str, str, str | None], tuple[int, ReplicaSpec]]) -> None:
        """The rollouts' splits and the wake hold times into the gateway's traffic file (atomically; when they change)."""
        with self.store.session() as session:
            rows = session.scalars(select(TrafficWeights).where(TrafficWeights.environment == self.environment))
            weights = {r.model: json.loads(r.weights_json) for r in rows}
        hold = {model: spec.wake_hold_s for (model, _, _), (_, spec) in desired.items() if spec.wake_hold_s is not None}
        text = Traffic(weights, hold).text()
        if text != self.traffic:
            write_atomically(self.traffic_file, text)
            self.traffic = text

    # --- scale to zero -----------------------------------------------------------------------

    def _sleep_or_wake(self, desired: dict[tuple[str, str, str | None], tuple[int, ReplicaSpec]]) -> set[tuple[str, str]]:
        """Put idle models that scale to zero to sleep, wake those asked for; the (model, pool)s asleep now."""
        idle = {key[:2]: spec.idle_after_s for key, (count, spec) in desired.items() if spec.idle_after_s and count}
        with self.store.session() as session:
            rows = {(r.model, r.pool): r for r in session.scalars(
                select(AsleepReplicas).where(AsleepReplicas.environment == self.environment))}
            for key in rows.keys() - idle.keys():  # no longer scales to zero: awake as desired
                session.delete(rows.pop(key))
        activity = self._activity() if idle else None
        if activity is None:  # never put a model to sleep without knowing when it was last asked for
            return set(rows)
        now = time.time()
        for key, idle_after_s in idle.items():
            seen = activity.get(key[0], {})
            last, waiting = float(seen.get("last_request_at") or 0.0), int(seen.get("waiting") or 0)
            if key in rows:
                if waiting or last > rows[key].since.timestamp():
                    self._wake(key, waiting)
                    del rows[key]
                continue
            ready = [r.ready_at for r in self.replicas.values() if r.key[:2] == key and r.ready_at is not None
                     and r.status is ReplicaStatus.ready]
            if ready and not waiting and now - max(last, *ready) > idle_after_s:
                self._sleep(key, now - max(last, *ready))
                rows[key] = AsleepReplicas(environment=self.environment, model=key[0], pool=key[1])
        return set(rows)

    def _activity(self) -> dict[str, dict] | None:
        """Per model, when the gateway last had a request for it and how many it holds; None if it does not say."""
        try:
            return read_lanes(self.http, f"http://{LOOPBACK}:{self.gateway_port}",
                              self.api_key.get_secret_value()).get("models", {})
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("the gateway does not say when models were last asked for: %s", exc)
            return None

    def _sleep(self, key: tuple[str, str], idle_s: float) -> None:
        logger.info("%s@%s: no request for %.0f s; stopping its replicas until the next one", *key, idle_s)
        with self.store.session() as session:
            session.merge(AsleepReplicas(environment=self.environment, model=key[0], pool=key[1], since=dt.datetime.now(dt.UTC)))

    def _wake(self, key: tuple[str, str], waiting: int) -> None:
        logger.info("%s@%s: asked for (%d requests waiting); starting its replicas", *key, waiting)
        self.waking[key] = time.monotonic()
        with self.store.session() as session:
            session.execute(delete(AsleepReplicas).where(AsleepReplicas.environment == self.environment,
                                                         AsleepReplicas.model == key[0], AsleepReplicas.pool == key[1]))

    def _scale(self, model: str, pool: str, count: int, spec: ReplicaSpec) -> None:
        live = [r for r in self.replicas.values() if r.key == (model, pool, spec.version) and r.status in LIVE]
        for _ in range(count - len(live)):
            self._start(self._new_replica(model, pool, spec))
        surplus = len(live) - count
        if surplus > 0:  # crashed first, then still starting, then the newest ready ones
            order = {ReplicaStatus.crashed: 0, ReplicaStatus.starting: 1, ReplicaStatus.ready: 2}
            for replica in sorted(live, key=lambda r: (order[r.status], -r.record_id))[:surplus]:
                self._drain(replica)

    def _new_replica(self, model: str, pool: str, spec: ReplicaSpec) -> Replica:
        with self.store.session() as session:
            record = ReplicaRecord(environment=self.environment, model=model, pool=pool, provider="local",
                                   url="", status=ReplicaStatus.starting, version=spec.version)
            session.add(record)
            session.flush()
            record_id = record.id
        replica = Replica(record_id, model, pool, spec, self.logs / f"replica-{model}-{pool}-{record_id}.log")
        self.replicas[record_id] = replica
        return replica

    def _start(self, replica: Replica) -> None:
        used = {r.port for r in self.replicas.values()} | {self.gateway_port, self.metrics_port}
        replica.port = free_port(avoid=used)
        command = shlex.split(self.settings.local_replica_command) or [sys.executable, "-m", REPLICA_MARKER]
        replica.process = spawn(command, replica.log_path, self._replica_env(replica))
        replica.status = ReplicaStatus.starting
        logger.info("replica %d (%s@%s): started pid %d on %s (restarts %d)", replica.record_id, replica.model,
                    replica.pool, replica.process.pid, replica.url, replica.restarts)
        self._record(replica)

    def _replica_env(self, replica: Replica) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("GPUFLEET_API_KEY", None)  # the replica needs vLLM's variable only
        env.update({
            "GPUFLEET_HOME": str(self.settings.home),
            "GPUFLEET_REPLICA_MODEL_SOURCE": replica.spec.source,
            "GPUFLEET_REPLICA_SERVED_NAME": replica.spec.served_name,
            "GPUFLEET_REPLICA_TENSOR_PARALLEL_SIZE": "1",  # CPU vLLM: one process per replica
            "GPUFLEET_REPLICA_HOST": LOOPBACK,
            "GPUFLEET_REPLICA_PORT": str(replica.port),
            "GPUFLEET_REPLICA_DRAIN_TIMEOUT_S": str(self.settings.replica_drain_timeout_s),
            "VLLM_API_KEY": self.api_key.get_secret_value(),
            "VLLM_HOST_IP": LOOPBACK,
            "VLLM_CPU_KVCACHE_SPACE": str(self.settings.local_kv_cache_gib),
            "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # replicas share the cores; let the OS schedule
        })
        if replica.spec.max_model_len:
            env["GPUFLEET_REPLICA_MAX_MODEL_LEN"] = str(replica.spec.max_model_len)
        if replica.spec.version:
            env["GPUFLEET_REPLICA_VERSION"] = replica.spec.version
        if replica.spec.vllm_args:
            env["GPUFLEET_REPLICA_VLLM_ARGS"] = shlex.join(replica.spec.vllm_args)
        env.setdefault("HF_HUB_OFFLINE", "1")
        return env

    def _poll(self, replica: Replica) -> None:
        now = time.monotonic()
        code = replica.process.poll() if replica.process else None
        if replica.status is ReplicaStatus.draining:
            if replica.term_at is not None and now >= replica.term_at:
                self._terminate(replica)
            if replica.process is None or code is not None or now > replica.stop_deadline:
                if replica.process is not None:
                    kill_group(replica.process.pid)
                    replica.process.wait()
                replica.status = ReplicaStatus.stopped
                logger.info("replica %d (%s@%s): stopped", replica.record_id, replica.model, replica.pool)
                self._record(replica)
                del self.replicas[replica.record_id]
            return
        if replica.status in (ReplicaStatus.starting, ReplicaStatus.ready) and code is not None:
            self._crashed(replica, code)
        elif replica.status is ReplicaStatus.crashed and now >= replica.restart_at:
            replica.restarts += 1
            self._start(replica)
        elif replica.status is ReplicaStatus.starting and self._healthy(replica):
            self._gateway().add(replica.worker)
            replica.status = ReplicaStatus.ready
            replica.ready_at = time.time()
            if (woken := self.waking.pop((replica.model, replica.pool), None)) is not None:
                logger.info("%s@%s: awake, first replica ready %.1f s after the request that woke it",
                            replica.model, replica.pool, time.monotonic() - woken)
            logger.info("replica %d (%s@%s): ready on %s", replica.record_id, replica.model, replica.pool, replica.url)
            self._record(replica)

    def _crashed(self, replica: Replica, code: int) -> None:
        logger.warning("replica %d (%s@%s): exited with %d unasked; restarting (log: %s)",
                       replica.record_id, replica.model, replica.pool, code, replica.log_path)
        if replica.status is ReplicaStatus.ready:
            self._remove_worker(replica.url)
        kill_group(replica.process.pid)  # vLLM's workers may outlive the entrypoint
        replica.status = ReplicaStatus.crashed
        replica.restart_at = time.monotonic() + min(MAX_BACKOFF_S, 2.0**replica.restarts)
        self._record(replica)

    def _drain(self, replica: Replica) -> None:
        """Out of the gateway first, then (once what the router already sent has arrived) SIGTERM."""
        settle = 0.0
        if replica.status is ReplicaStatus.ready:
            self._remove_worker(replica.url)
            settle = GATEWAY_SETTLE_S
        replica.status = ReplicaStatus.draining
        replica.term_at = time.monotonic() + settle
        replica.stop_deadline = replica.term_at + self.settings.replica_drain_timeout_s + KILL_GRACE_S + STOP_MARGIN_S
        logger.info("replica %d (%s@%s): draining", replica.record_id, replica.model, replica.pool)
        self._record(replica)
        if not settle:
            self._terminate(replica)

    def _terminate(self, replica: Replica) -> None:
        """SIGTERM: the entrypoint lets vLLM finish its in-flight requests, then stop."""
        replica.term_at = None
        if replica.process is not None and replica.process.poll() is None:
            replica.process.send_signal(signal.SIGTERM)

    def _healthy(self, replica: Replica) -> bool:
        try:
            return self.http.get(f"{replica.url}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def _record(self, replica: Replica) -> None:
        with self.store.session() as session:
            record = session.get(ReplicaRecord, replica.record_id)
            record.status = replica.status
            record.url = replica.url
            record.pid = replica.process.pid if replica.process else None
            record.restarts = replica.restarts
            record.log_path = str(replica.log_path)

    # --- gateway ----------------------------------------------------------------------------

    def _gateway_ports(self) -> tuple[int, int]:
        """The ports the gateway had before (clients keep one URL across `up`s), else new ones."""
        with self.store.session() as session:
            record = session.get(GatewayRecord, (self.environment, SITE))
            if record is not None:
                return int(record.url.rsplit(":", 1)[1]), int(record.metrics_url.rsplit(":", 1)[1].split("/")[0])
        port = free_port()
        return port, free_port(avoid={port})

    def _gateway(self) -> RouterClient:
        if self.gateway is None:
            raise RouterError("the gateway is not running")
        return self.gateway

    def _keep_router(self) -> None:
        if self.router is not None and self.router.poll() is None:
            return
        if self.router is not None:
            logger.warning("gateway exited with %s; restarting it", self.router.returncode)
            kill_group(self.router.pid)
        log_path = self.logs / "gateway.log"
        router_port = free_port(avoid={r.port for r in self.replicas.values()} | {self.gateway_port, self.metrics_port})
        command = gateway_command(LOOPBACK, self.gateway_port, router_port, self.metrics_port,
                                  self.settings.gateway_policy, self.traffic_file)
        self.router = spawn(command, log_path, os.environ | {"GPUFLEET_API_KEY": self.api_key.get_secret_value()})
        self.gateway = RouterClient(f"http://{LOOPBACK}:{router_port}")  # the worker API: the router's own port
        front = RouterClient(f"http://{LOOPBACK}:{self.gateway_port}")  # what clients use; healthy once both are
        deadline = time.monotonic() + ROUTER_START_TIMEOUT_S
        while not front.healthy():
            if self.router.poll() is not None or time.monotonic() > deadline:
                front.close()
                kill_group(self.router.pid)
                self.gateway_port = free_port()  # the old port may be taken now: the next try moves
                self.metrics_port = free_port(avoid={self.gateway_port})
                raise RouterError(f"the gateway did not start (exit {self.router.poll()}); see {log_path}")
            time.sleep(0.1)
        front.close()
        logger.info("gateway: pid %d on %s", self.router.pid, front.base_url)
        with self.store.session() as session:
            session.merge(GatewayRecord(
                environment=self.environment, site=SITE, url=front.base_url, pid=self.router.pid, running=True,
                metrics_url=f"http://{LOOPBACK}:{self.metrics_port}/metrics", log_path=str(log_path)))
        self.last_sync = 0.0  # a new router knows no workers: sync now

    def _sync_gateway(self) -> None:
        ready = {r.url: r.worker for r in self.replicas.values() if r.status is ReplicaStatus.ready}
        known = {w.url: w.model_id for w in self._gateway().workers()}
        for url, model_id in known.items():
            if url not in ready or ready[url].model_id != model_id:
                self._remove_worker(url)
        for url, worker in ready.items():
            if known.get(url) != worker.model_id:
                self._gateway().add(worker)
        self.last_sync = time.monotonic()

    def _remove_worker(self, url: str) -> None:
        try:
            self._gateway().remove(url)
        except RouterError:  # the router is down: a restarted one starts empty anyway
            logger.warning("could not remove %s from the gateway", url, exc_info=True)

    # --- start and stop ---------------------------------------------------------------------

    def shutdown(self) -> None:
        for replica in list(self.replicas.values()):
            if replica.status in LIVE:
                self._drain(replica)
        while self.replicas:
            for replica in list(self.replicas.values()):
                self._poll(replica)
            time.sleep(POLL_S / 5)
        if self.router is not None:
            signal_group(self.router.pid, signal.SIGTERM)
            try:
                self.router.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_group(self.router.pid)
                self.router.wait()
        with self.store.session() as session:
            if (gateway := session.get(GatewayRecord, (self.environment, SITE))) is not None:
                gateway.running = False
                gateway.pid = None
            session.execute(delete(SupervisorRecord).where(SupervisorRecord.environment == self.environment))
        self.http.close()
        logger.info("stopped")


def reap_stale(store: StateStore, environment: str, tag: str) -> None:
    """Kill every process of the environment (found by its tag) and record its replicas stopped and its
    gateway down. Only for when no supervisor runs: what a killed one left behind."""
    for pid in kill_tagged(tag):
        logger.warning("killed pid %d, left running by a supervisor that was itself killed", pid)
    with store.session() as session:
        records = session.scalars(select(ReplicaRecord).where(
            ReplicaRecord.environment == environment, ReplicaRecord.status != ReplicaStatus.stopped)).all()
        for record in records:
            record.status = ReplicaStatus.stopped
        gateway = session.get(GatewayRecord, (environment, SITE))
        if gateway is not None:
            gateway.running, gateway.pid = False, None


def hold_lock(settings: Settings, environment: str) -> IO[str] | None:
    """The environment's supervisor lock, held open, or None when another supervisor holds it."""
    path = lock_path(settings, environment)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="gpufleet's local supervisor (started by `orchestrator up`).")
    parser.add_argument("--env", required=True)
    parser.add_argument("--state-url", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health probe drowns the state changes
    settings = load_settings()
    lock = hold_lock(settings, args.env)
    if lock is None:
        logger.info("another supervisor runs for %s; exiting", args.env)
        return
    os.environ[FLEET_TAG] = fleet_tag(settings, args.env)  # inherited by every process started from here on
    store = open_state(args.state_url)
    with store.session() as session:
        session.merge(SupervisorRecord(environment=args.env, pid=os.getpid(),
                                       log_path=str(settings.state_dir(args.env) / "logs" / "supervisor.log")))
    Supervisor(args.env, store, settings).run()
    lock.close()


if __name__ == "__main__":
    main()
