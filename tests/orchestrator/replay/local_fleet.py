"""A local fleet of one CPU vLLM replica of the tiny model, for the slow replay and profile tests: started by
`orchestrator up` in a fresh process, stopped by `orchestrator down`, every process checked gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from orchestrator.providers.local.processes import alive
from tests.conftest import ENVIRONMENTS
from tests.orchestrator.providers.local.test_local_fleet import UP_TIMEOUT_S, Fleet, _recorded_pids


@contextmanager
def one_replica_fleet(home: Path, edit: Callable[[dict], None] | None = None) -> Iterator[Fleet]:
    """The local environment (its spec changed by `edit`) up in `home`, for the block."""
    doc = yaml.safe_load((ENVIRONMENTS / "local.yaml").read_text())
    doc["models"][0]["source"] = "${GPUFLEET_HOME}/models/tiny-llama"
    if edit:
        edit(doc)
    spec = home / "local.yaml"
    spec.write_text(yaml.safe_dump(doc))
    env = {k: v for k, v in os.environ.items() if k != "GPUFLEET_API_KEY"}
    env |= {"GPUFLEET_HOME": str(home), "GPUFLEET_ENVIRONMENTS_DIR": str(ENVIRONMENTS),
            "GPUFLEET_REPLICA_DRAIN_TIMEOUT_S": "30", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "orchestrator", "up", "--spec", str(spec), "--no-demo", "--format",
                          "json"], env=env, capture_output=True, text=True, timeout=UP_TIMEOUT_S, check=False)
    fleet = Fleet(home, spec, env, json.loads(run.stdout) if run.returncode == 0 else {}, run.stderr)
    try:
        assert run.returncode == 0, run.stderr[-3000:]
        yield fleet
    finally:
        pids = _recorded_pids(home)
        fleet.cli("down", timeout=120)
        deadline = time.monotonic() + 30
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [p for p in pids if alive(p)], "processes left running"
