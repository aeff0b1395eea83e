"""What gpufleet puts on a cluster for a model in a pool, as pure functions (tested without a cluster).

One namespace per pool (`gpufleet-<pool>`, as the on-prem stacks declare it), one
Deployment per model in it, named after the model. Its pods run the replica image
(`GPUFLEET_KUBERNETES_IMAGE`, whose entrypoint is `python -m orchestrator.replica`) on
the pool's nodes only (`gpufleet.io/pool`, the label the stacks give them), tolerate
the GPU taint and the pool's own, ask for `tensor_parallel_size` GPUs and their share of the
node's allocatable CPU and memory (`catalog/nodes.replica_requests`: what the planner packs, so
planned pods schedule), and count as ready when vLLM's `/health` answers. Memory is limited to
its request (a replica that outgrows it is killed rather than starving its neighbours); CPU has
no limit, so a replica may use idle cores without CFS throttling its latency. Rollouts surge
one pod before removing one. A stopping pod first pauses (preStop) so the Service's endpoints
and the site's router drop it, then gets the replica's drain time plus the entrypoint's grace
before it is killed.

Beside each Deployment: a ClusterIP Service of the same name over its pods (what a site's
vllm-router discovers). With the gateway's API key, the pool's namespace holds it in the
Secret `gpufleet-gateway` (key `api-key`) and the pods read it as `VLLM_API_KEY`, so vLLM
refuses requests without it. `kube/manifests.py` renders the same Deployment and Service.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re

from pydantic import SecretStr

from orchestrator.catalog.nodes import pool_replica_requests
from orchestrator.errors import InputError
from orchestrator.providers.base import ObservedReplica, ReplicaSpec
from orchestrator.replica.entrypoint import KILL_GRACE_S
from orchestrator.settings import Settings
from orchestrator.spec import Pool

MANAGED_BY = ("app.kubernetes.io/managed-by", "gpufleet")
MODEL_LABEL = "gpufleet.io/model"
POOL_LABEL = "gpufleet.io/pool"
CONTAINER = "vllm"
AKS_SPOT_TAINT = "kubernetes.azure.com/scalesetpriority"  # AKS taints spot nodes itself
PROBE_PERIOD_S = 10
PRESTOP_S = 5  # endpoints and routers notice a terminating pod within a few seconds: it leaves the gateway first
API_KEY_SECRET = "gpufleet-gateway"
API_KEY_SECRET_KEY = "api-key"
API_KEY_ENV = "VLLM_API_KEY"


def _name(text: str, limit: int = 63) -> str:
    """A DNS-1123 label from `text`; a short hash keeps it unique when characters were replaced or cut."""
    cleaned = re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")
    if cleaned == text and len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{cleaned[:limit - 7].rstrip('-')}-{digest}"


def namespace(pool: str) -> str:
    return _name(f"gpufleet-{pool}")


def deployment_name(model: str) -> str:
    return _name(model)


def selector(model: str | None = None) -> str:
    """The labelSelector of gpufleet's Deployments and pods (of one model when given)."""
    parts = ["=".join(MANAGED_BY)] + ([f"{MODEL_LABEL}={model}"] if model else [])
    return ",".join(parts)


def gpu_resource(pool: Pool) -> str:
    return "amd.com/gpu" if (pool.gpu or "").upper().startswith("MI") else "nvidia.com/gpu"


def tolerations(pool: Pool) -> list[dict]:
    """The GPU taint, AKS's spot taint on Azure spot pools, and the pool's own taints (`key=value:Effect`)."""
    result = [{"key": gpu_resource(pool), "operator": "Exists", "effect": "NoSchedule"}]
    if pool.provider == "azure" and pool.capacity == "spot":
        result.append({"key": AKS_SPOT_TAINT, "operator": "Equal", "value": "spot", "effect": "NoSchedule"})
    for taint in pool.taints:
        key_value, _, effect = taint.rpartition(":")
        key, _, value = key_value.partition("=")
        result.append({"key": key, "operator": "Equal", "value": value, "effect": effect})
    return result


def deployment(pool: Pool, model: str, replica: ReplicaSpec, replicas: int, settings: Settings, *,
               api_key: bool = False) -> dict:
    """The Deployment of `model` in `pool` with `replicas` pods; `api_key`: its pods read `VLLM_API_KEY`
    from the Secret `API_KEY_SECRET` (`api_key_env`)."""
    if not settings.kubernetes_image:
        raise InputError("GPUFLEET_KUBERNETES_IMAGE is not set. To fix: set it to the replica image "
                         "(images/vllm) in your registry, pinned by digest")
    labels = dict([MANAGED_BY], **{MODEL_LABEL: model, POOL_LABEL: pool.name})
    env = {
        "GPUFLEET_REPLICA_MODEL_SOURCE": replica.source,
        "GPUFLEET_REPLICA_SERVED_NAME": replica.served_name,
        "GPUFLEET_REPLICA_TENSOR_PARALLEL_SIZE": str(replica.tensor_parallel_size),
        "GPUFLEET_REPLICA_PORT": str(settings.replica_port),
        "GPUFLEET_REPLICA_DRAIN_TIMEOUT_S": str(settings.replica_drain_timeout_s),
        **({"GPUFLEET_REPLICA_MAX_MODEL_LEN": str(replica.max_model_len)} if replica.max_model_len else {}),
    }
    health = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": PROBE_PERIOD_S}
    gpus = {gpu_resource(pool): str(replica.tensor_parallel_size)}
    requests, limits = dict(gpus), dict(gpus)
    share = pool_replica_requests(pool, replica.tensor_parallel_size, settings.catalog_dir)
    if share is not None:  # None: a node of unknown shape (an instance type the catalog lacks): GPUs only
        requests |= share.quantities()
        limits["memory"] = requests["memory"]
    container = {
        "name": CONTAINER, "image": settings.kubernetes_image,
        "ports": [{"name": "http", "containerPort": settings.replica_port}],
        "env": [{"name": k, "value": v} for k, v in env.items()] + ([api_key_env()] if api_key else []),
        "resources": {"requests": requests, "limits": limits},
        "readinessProbe": health,
        # weights download and load: allowed as long as `up` waits for a replica
        "startupProbe": health | {"failureThreshold": math.ceil(settings.replica_ready_timeout_s / PROBE_PERIOD_S)},
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],  # NCCL between tensor-parallel workers
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_S}}},
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": deployment_name(model), "namespace": namespace(pool.name), "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [container],
                    "nodeSelector": {POOL_LABEL: pool.name},
                    "tolerations": tolerations(pool),
                    "terminationGracePeriodSeconds": PRESTOP_S + settings.replica_drain_timeout_s + int(KILL_GRACE_S) + 5,
                    "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
                },
            },
        },
    }


def api_key_env() -> dict:
    """The container's `VLLM_API_KEY`, read from the gateway key's Secret (vLLM refuses requests without it)."""
    return {"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": API_KEY_SECRET, "key": API_KEY_SECRET_KEY}}}


def api_key_secret(pool: Pool, key: SecretStr) -> dict:
    """The Secret holding the gateway's API key in the pool's namespace.

    The returned body holds the key in clear (base64): pass it to the API only, never to a
    log line, an error message or a file.
    """
    labels = dict([MANAGED_BY], **{POOL_LABEL: pool.name})
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": API_KEY_SECRET, "namespace": namespace(pool.name), "labels": labels},
        "data": {API_KEY_SECRET_KEY: base64.b64encode(key.get_secret_value().encode()).decode("ascii")},
    }


def object_meta(deployment_: dict) -> dict:
    """Metadata for an object that goes with a Deployment: its name, namespace and labels."""
    meta = deployment_["metadata"]
    return {"name": meta["name"], "namespace": meta["namespace"], "labels": dict(meta["labels"])}


def service(deployment_: dict, settings: Settings) -> dict:
    """The ClusterIP Service over a Deployment's pods, named after it (what a site's vllm-router discovers)."""
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": object_meta(deployment_),
        "spec": {"type": "ClusterIP", "selector": dict(deployment_["spec"]["selector"]["matchLabels"]),
                 "ports": [{"name": "http", "port": settings.replica_port, "targetPort": "http", "protocol": "TCP"}]},
    }


def observed_replica(pod: dict, pool: str, port: int) -> ObservedReplica:
    """A pod (the API's JSON) as an ObservedReplica: healthy when Ready and not stopping."""
    metadata, status = pod["metadata"], pod.get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    ip = status.get("podIP")
    return ObservedReplica(
        model=metadata["labels"][MODEL_LABEL], pool=pool, url=f"http://{ip}:{port}" if ip else "",
        healthy=ready and not metadata.get("deletionTimestamp"),
        restarts=sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or []),
    )
