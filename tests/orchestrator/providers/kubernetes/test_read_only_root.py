"""A real CPU vLLM replica of the tiny model serves with the filesystem the rendered pod gives it: the root
read-only, writable only where the Deployment mounts volumes (/tmp, the cache at GPUFLEET_HOME, /dev/shm), and the
Deployment's own environment. No container runtime runs here, so a mount namespace (`unshare`) stands in for the
container's root; the image's user and capabilities are not reproduced."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import httpx
import pytest

from orchestrator.providers.base import ReplicaSpec
from orchestrator.providers.kubernetes.models import CACHE_MOUNT, deployment
from orchestrator.providers.local.processes import free_port
from orchestrator.replica.tiny_model import ensure_tiny_model
from orchestrator.settings import Settings
from orchestrator.spec import Pool

pytestmark = pytest.mark.slow

READY_TIMEOUT_S = 300
POOL = Pool(name="onprem-cpu", provider="onprem", region="here", gpu="A100-80GB", gpus_per_node=1, max_nodes=1,
            cluster="c", kubernetes_version="1.33")


def namespaces_allowed() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rm", "true"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not namespaces_allowed(), reason="unshare -rm (user and mount namespaces) is not permitted here")
def test_the_replica_serves_with_a_read_only_root_and_the_pods_writable_mounts(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ensure_tiny_model(cache / "models" / "tiny-llama")
    port = free_port()
    settings = Settings(kubernetes_image="registry.example/gpufleet/vllm@sha256:" + "ab" * 32, replica_port=port)
    replica = ReplicaSpec(source="${GPUFLEET_HOME}/models/tiny-llama", served_name="tiny-llama", max_model_len=512)
    container = deployment(POOL, "tiny-llama", replica, 1, settings)["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/dev/shm", CACHE_MOUNT}
    env = {"PATH": os.environ["PATH"]} | {e["name"]: e["value"] for e in container["env"] if "value" in e} | {
        # CPU vLLM on this machine instead of a GPU node: loopback, a small KV cache, no thread pinning
        "GPUFLEET_REPLICA_HOST": "127.0.0.1", "GPUFLEET_REPLICA_TENSOR_PARALLEL_SIZE": "1", "VLLM_HOST_IP": "127.0.0.1",
        "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind", "HF_HUB_OFFLINE": "1"}
    parent = str(PurePosixPath(CACHE_MOUNT).parent)
    repo = Path(__file__).resolve().parents[4]
    # what the image would hold (this checkout, the interpreter) but lives under /tmp here, e.g. a CI clone:
    # seen again, read-only, through the emptyDir mounted over /tmp
    image_parts = sorted({str(p.relative_to("/tmp")) for p in (repo, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve())
                          if p.is_relative_to("/tmp")})
    script = "; ".join([
        "set -e", "mount --make-rprivate /",
        f"mount -t tmpfs -o size=1m tmpfs {parent}", f"mkdir {CACHE_MOUNT} {parent}/host-tmp",  # mount points
        f"mount --bind {shlex.quote(str(cache))} {CACHE_MOUNT}", f"mount --rbind /tmp {parent}/host-tmp",
        f"mount -o remount,ro {parent}",
        "mount -o remount,bind,ro /",  # the container's root, read-only
        "mount -t tmpfs -o size=4g tmpfs /tmp",  # the emptyDir at /tmp
        *[f"mkdir -p /tmp/{shlex.quote(part)}; mount --rbind {parent}/host-tmp/{shlex.quote(part)} /tmp/{shlex.quote(part)}; "
          f"mount -o remount,bind,ro /tmp/{shlex.quote(part)}" for part in image_parts],
        f"exec {shlex.quote(sys.executable)} -m orchestrator.replica",
    ])
    log = (tmp_path / "replica.log").open("w")
    process = subprocess.Popen(["unshare", "-rm", "sh", "-c", script], env=env, cwd=repo,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert process.poll() is None, (tmp_path / "replica.log").read_text()[-4000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "replica.log").read_text()[-4000:]
            time.sleep(1)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/completions", timeout=60,
                            json={"model": "tiny-llama", "prompt": "Hello", "max_tokens": 4})
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 4
    finally:
        process.send_signal(signal.SIGTERM)  # as the kubelet stops a pod: the entrypoint drains vLLM
        try:
            code = process.wait(timeout=settings.replica_drain_timeout_s + 30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code = process.wait()
        log.close()
    text = (tmp_path / "replica.log").read_text()
    assert code == 0, text[-4000:]
    assert "Read-only file system" not in text and "Permission denied" not in text
    assert (cache / "vllm").is_dir()  # vLLM's own cache (compiled graphs, model info) lands on the cache volume
