"""How long `orchestrator rebalance` takes on the local environment, and how much of it is replica start-up.

    python -m bench.bench_rebalance_local [--rounds N]

Starts one CPU vLLM replica of the tiny model behind the gateway (`orchestrator up` in a
throwaway GPUFLEET_HOME, no traffic), then per round runs `orchestrator rebalance --yes` twice
as an operator does, each in a fresh process: demand raised above what one replica sustains
(the plan's own capacity figure x 1.5: 1 -> 2 replicas), then lowered back (2 -> 1).

For each move, from the rebalance journal and the replica records in the state database:

- wall: the command, process start to exit (imports, observe, plan, policy gate, steps);
- before steps: command start to its journal run (imports, observe, plan, policy gate);
- step: the ScaleUp (asked -> replica ready and in the gateway) or ScaleDown (asked ->
  replica out of the gateway and signalled) as the journal timed it;
- 1 -> 2, replica start-up: the new replica's process spawned -> `/health` answered (its
  record), and its share of the wall time;
- 2 -> 1, drain: the leaving replica signalled -> its process exited, which the command
  does not wait for (the supervisor finishes it; no request is in flight here).

Everything runs on 127.0.0.1 and is stopped at the end (`orchestrator down`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
MODEL = "tiny-llama"
LOW_RPS = 0.5
SETTLE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Move:
    wall_s: float
    before_steps_s: float
    step_s: float
    replica_s: float  # 1 -> 2: new replica spawned -> ready; 2 -> 1: leaving replica signalled -> exited


def _when(text: str) -> dt.datetime:
    """A timestamp as the state database keeps it (UTC; SQLite drops the zone)."""
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class LocalFleet:
    """The local environment in a throwaway home, driven through the CLI in fresh processes."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.spec = home / "local.yaml"
        self.env = {k: v for k, v in os.environ.items() if k != "GPUFLEET_API_KEY"} | {"GPUFLEET_HOME": str(home)}
        self.db = home / "state" / "local" / "state.db"

    def write_spec(self, rps: float) -> None:
        doc = yaml.safe_load((REPO / "environments" / "local.yaml").read_text())
        doc["models"][0] |= {"source": "${GPUFLEET_HOME}/models/tiny-llama", "min_replicas": 1}
        doc["demand"][0]["requests_per_second"] = rps
        self.spec.write_text(yaml.safe_dump(doc))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args, "--spec", str(self.spec)], env=self.env,
                              capture_output=True, text=True, timeout=900, check=True)

    def query(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db) as db:
            return db.execute(sql, params).fetchall()

    def rebalance(self, rps: float, kind: str) -> tuple[float, dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
        """Run one rebalance to `rps`; (wall seconds, command start, its journal run start, the `kind` step asked, done)."""
        self.write_spec(rps)
        started_at, start = dt.datetime.now(dt.UTC), time.perf_counter()
        moved = json.loads(self.cli("rebalance", "--yes", "--format", "json").stdout)
        wall = time.perf_counter() - start
        assert moved["applied"], moved
        (run_id, run_started), = self.query("SELECT id, started_at FROM rebalance_runs ORDER BY id DESC LIMIT 1")
        steps = self.query("SELECT step_json, started_at, finished_at FROM rebalance_steps WHERE run_id = ? ORDER BY seq", run_id)
        asked, done = next((_when(s), _when(f)) for j, s, f in steps if json.loads(j)["kind"] == kind)
        return wall, started_at, _when(run_started), asked, done

    def replicas(self) -> dict[int, tuple[str, dt.datetime, dt.datetime]]:
        """record id -> (status, record created, last change)."""
        return {i: (status, _when(created), _when(changed)) for i, status, created, changed in
                self.query("SELECT id, status, started_at, updated_at FROM replicas WHERE model = ?", MODEL)}


def grow(fleet: LocalFleet, rps: float) -> Move:
    known = set(fleet.replicas())
    wall, started_at, run_started, asked, done = fleet.rebalance(rps, "scale_up")
    new = {i: r for i, r in fleet.replicas().items() if i not in known}
    (status, spawned, ready), = new.values()
    assert status == "ready", new
    return Move(wall, (run_started - started_at).total_seconds(), (done - asked).total_seconds(),
                (ready - spawned).total_seconds())


def shrink(fleet: LocalFleet) -> Move:
    wall, started_at, run_started, asked, done = fleet.rebalance(LOW_RPS, "scale_down")
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not (stopped := [r for r in fleet.replicas().values() if r[0] == "stopped" and r[2] >= asked]):
        assert time.monotonic() < deadline, "the leaving replica did not stop"
        time.sleep(0.2)
    return Move(wall, (run_started - started_at).total_seconds(), (done - asked).total_seconds(),
                (stopped[0][2] - asked).total_seconds())


def report(ups: list[Move], downs: list[Move]) -> None:
    def median(moves: list[Move], field: str) -> float:
        return statistics.median(getattr(m, field) for m in moves)

    rounds = f"median of {len(ups)} rounds" if len(ups) > 1 else "one round"
    up_wall, up_replica = median(ups, "wall_s"), median(ups, "replica_s")
    print(f"rebalance on the local environment (CPU vLLM, tiny model, no traffic; {rounds}):")
    print(f"1 -> 2 replicas   wall {up_wall:7.1f} s   before steps {median(ups, 'before_steps_s'):5.1f} s   "
          f"ScaleUp step {median(ups, 'step_s'):6.1f} s   replica start-up {up_replica:6.1f} s")
    print(f"    -> replica start-up / wall {up_replica / up_wall:6.3f}   "
          f"(rest of the wall: {up_wall - up_replica:5.1f} s)")
    down_wall = median(downs, "wall_s")
    print(f"2 -> 1 replicas   wall {down_wall:7.1f} s   before steps {median(downs, 'before_steps_s'):5.1f} s   "
          f"ScaleDown step {median(downs, 'step_s'):6.1f} s   drain to exit {median(downs, 'replica_s'):5.1f} s (after the command)")
    print(f"    -> 1 -> 2 wall / 2 -> 1 wall {up_wall / down_wall:6.1f}")


def main(rounds: int = 1) -> None:
    ups, downs = [], []
    with tempfile.TemporaryDirectory(prefix="gpufleet-bench-") as home:
        fleet = LocalFleet(Path(home))
        fleet.write_spec(LOW_RPS)
        plan = json.loads(fleet.cli("plan", "--format", "json").stdout)
        per_replica = next(c["rps_per_replica"] for c in plan["capacity"] if c["model"] == MODEL)
        try:
            fleet.cli("up", "--no-demo", "--format", "json")
            for _ in range(rounds):
                ups.append(grow(fleet, 1.5 * per_replica))
                downs.append(shrink(fleet))
        finally:
            fleet.cli("down")
    report(ups, downs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="1 -> 2 -> 1 moves to time (default 1)")
    main(parser.parse_args().rounds)
