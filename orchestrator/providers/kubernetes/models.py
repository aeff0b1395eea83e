"""What gpufleet puts on a cluster for a model in a pool, as pure functions (tested without a cluster).

One namespace per pool (`gpufleet-<pool>`, as the on-prem stacks declare it; Pod Security
`restricted` enforced), one Deployment per model in it, named after the model, and during a
rollout a second one, `<name>-canary`, running the new version beside it. In apply order
(`replica_objects`), each ScaleUp makes what is not there yet:

- the ServiceAccount `gpufleet-replica` with the pool's cloud identity for its weights' store
  (`identity.py`), no API token mounted;
- with `model_cache.storage_class`, the ReadWriteMany PersistentVolumeClaim `gpufleet-model-cache`
  the pool's replicas share; else each pod's cache is a node-local emptyDir of `size_gb`;
- a ClusterIP Service of the model's name over its pods, stable and canary alike (what a site's
  vllm-router discovers; without a mesh, a version's share of the traffic is its share of the pods);
- the Deployment. Its pods run the replica image (`GPUFLEET_KUBERNETES_IMAGE`, by digest unless
  `GPUFLEET_KUBERNETES_ALLOW_IMAGE_TAG`; entrypoint `python -m orchestrator.replica`) on the
  pool's nodes only (`gpufleet.io/pool`, the label the stacks give them), tolerate the GPU taint and
  the pool's own, ask for `tensor_parallel_size` GPUs and their share of the node's allocatable CPU
  and memory (`catalog/nodes.replica_requests`: what the planner packs, so planned pods schedule).
  Memory is limited to its request (a replica that outgrows it is killed rather than starving its
  neighbours); CPU has no limit, so a replica may use idle cores without CFS throttling its latency.
  Probes on vLLM's `/health`: startup (as long as `up` waits: weights download and load), then
  readiness (out of the Service while it fails) and liveness (restarted after a minute without an
  answer). Non-root (images/vllm's user), no privilege escalation, no capabilities, RuntimeDefault
  seccomp, read-only root filesystem: vLLM writes only to /tmp (its HOME), /dev/shm and the cache
  volume at GPUFLEET_HOME (weights, vLLM's compile cache). Rollouts surge one pod before removing
  one. A stopping pod first pauses (preStop, `versions.pre_stop_pause`) so the Service's endpoints
  and the site's router drop it, then gets the replica's drain time plus the entrypoint's grace
  before it is killed.

A replica's version (`ReplicaSpec.version`) is its pods' label `gpufleet.io/version` and the entrypoint's
`GPUFLEET_REPLICA_VERSION`; the version's image (else the environment's), `vllm_args` (shell-quoted in
`GPUFLEET_REPLICA_VLLM_ARGS`) and `max_model_len` go to the pods. Selectors never name the version (a
Deployment's selector cannot change; a promotion changes the version under it): the stable Deployment
selects the model's pods, the canary's adds `gpufleet.io/track: canary`, which only its pods carry.
The stable selector matching the canary's pods too is harmless to the controllers (each ReplicaSet
keeps the pods it owns), and is what lets the model's Service, budget and autoscaler span both.

With the gateway's API key, the pool's namespace holds it in the Secret `gpufleet-gateway` (key
`api-key`) and the pods read it as `VLLM_API_KEY`, so vLLM refuses requests without it.
`kube/manifests.py` renders the same objects for review and GitOps.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import shlex

from pydantic import SecretStr

from orchestrator.catalog.nodes import pool_replica_requests
from orchestrator.errors import InputError
from orchestrator.providers.base import ObservedReplica, ReplicaSpec
from orchestrator.providers.kubernetes.identity import SERVICE_ACCOUNT, service_account, weights_access
from orchestrator.providers.kubernetes.versions import pre_stop_pause
from orchestrator.replica.entrypoint import KILL_GRACE_S
from orchestrator.settings import Settings
from orchestrator.spec import Pool

MANAGED_BY = ("app.kubernetes.io/managed-by", "gpufleet")
MODEL_LABEL = "gpufleet.io/model"
POOL_LABEL = "gpufleet.io/pool"
VERSION_LABEL = "gpufleet.io/version"
TRACK_LABEL = "gpufleet.io/track"
CANARY = "canary"  # TRACK_LABEL's value on a canary's Deployment and pods
CONTAINER = "vllm"
AKS_SPOT_TAINT = "kubernetes.azure.com/scalesetpriority"  # AKS taints spot nodes itself
PROBE_PERIOD_S = 10
PROBE_TIMEOUT_S = 5  # /health waits on the engine: a busy replica may take more than the default second
LIVENESS_FAILURES = 6  # a minute without an answer: the engine is hung, restart it
REPLICA_UID = 1000  # images/vllm's USER
CACHE_MOUNT = "/var/lib/gpufleet"  # the replica's GPUFLEET_HOME: weights under weights/, vLLM's compile cache
TMP_SIZE = "16Gi"  # /tmp, the replica's HOME: Triton, FlashInfer and torch.compile scratch
CACHE_CLAIM = "gpufleet-model-cache"
PRESTOP_S = 5  # endpoints and routers notice a terminating pod within a few seconds: it leaves the gateway first
API_KEY_SECRET = "gpufleet-gateway"
API_KEY_SECRET_KEY = "api-key"
API_KEY_ENV = "VLLM_API_KEY"
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


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


def canary_name(model: str) -> str:
    """The canary Deployment's name: `<deployment_name>-canary` (hashed like any name past 63 characters)."""
    return _name(f"{deployment_name(model)}-{CANARY}")


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


def image(settings: Settings, replica: ReplicaSpec) -> str:
    """The replica image (its version's, else the environment's): required, and by digest unless tags are explicitly allowed."""
    reference, where = ((replica.image, f"version {replica.version}'s image") if replica.image
                        else (settings.kubernetes_image, "GPUFLEET_KUBERNETES_IMAGE"))
    if not reference:
        raise InputError("GPUFLEET_KUBERNETES_IMAGE is not set. To fix: set it to the replica image "
                         "(images/vllm) in your registry, pinned by digest")
    if not _DIGEST.search(reference) and not settings.kubernetes_allow_image_tag:
        raise InputError(f"{where}={reference} is not pinned by digest, so what runs may change under its name. "
                         "To fix: pin it as REGISTRY/NAME@sha256:<64 hex digits> (`docker buildx imagetools inspect` "
                         "prints it), or set GPUFLEET_KUBERNETES_ALLOW_IMAGE_TAG=1 to accept a tag")
    return reference


def labels_of(pool: Pool, model: str | None = None) -> dict[str, str]:
    """gpufleet's labels on a pool's objects (and a model's)."""
    return dict([MANAGED_BY], **({MODEL_LABEL: model} if model else {}), **{POOL_LABEL: pool.name})


def version_labels(replica: ReplicaSpec) -> dict[str, str]:
    """The pod label naming the replica's version (none without one); InputError if it is no label value."""
    if replica.version is None:
        return {}
    if len(replica.version) > 63 or not _LABEL_VALUE.match(replica.version):
        raise InputError(f"version '{replica.version}' of {replica.served_name} cannot be a Kubernetes label value. "
                         "To fix: name versions with lower-case letters, digits, '.' and '-' (at most 40)")
    return {VERSION_LABEL: replica.version}


def namespace_object(pool: Pool) -> dict:
    """The pool's namespace, enforcing Pod Security `restricted` (which the replica pods meet)."""
    labels = labels_of(pool) | {"pod-security.kubernetes.io/enforce": "restricted"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace(pool.name), "labels": labels}}


def model_cache_claim(pool: Pool) -> dict | None:
    """The pool's shared cache claim when the spec names a storage class for it, else None (emptyDir per pod)."""
    cache = pool.model_cache
    if cache.storage_class is None:
        return None
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": CACHE_CLAIM, "namespace": namespace(pool.name), "labels": labels_of(pool)},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": cache.storage_class,
                 "resources": {"requests": {"storage": f"{cache.size_gb}G"}}},
    }


def _cache_volume(pool: Pool) -> dict:
    if pool.model_cache.storage_class is not None:
        return {"name": "model-cache", "persistentVolumeClaim": {"claimName": CACHE_CLAIM}}
    return {"name": "model-cache", "emptyDir": {"sizeLimit": f"{pool.model_cache.size_gb}G"}}


def _resources(pool: Pool, replica: ReplicaSpec, settings: Settings) -> dict:
    """The replica's GPUs, and its share of the node's CPU and memory (memory limited to it)."""
    gpus = {gpu_resource(pool): str(replica.tensor_parallel_size)}
    requests, limits = dict(gpus), dict(gpus)
    share = pool_replica_requests(pool, replica.tensor_parallel_size, settings.catalog_dir)
    if share is not None:  # None: a node of unknown shape (an instance type the catalog lacks): GPUs only
        requests |= share.quantities()
        limits["memory"] = requests["memory"]
    return {"requests": requests, "limits": limits}


def deployment(pool: Pool, model: str, replica: ReplicaSpec, replicas: int, settings: Settings, *,
               api_key: bool = False, canary: bool = False) -> dict:
    """The Deployment of `model` in `pool` with `replicas` pods (`canary`: the rollout's second one, `canary_name`);
    `api_key`: its pods read `VLLM_API_KEY` from the Secret `API_KEY_SECRET` (`api_key_env`)."""
    reference = image(settings, replica)
    access = weights_access(pool, model, replica.source)
    labels = labels_of(pool, model) | ({TRACK_LABEL: CANARY} if canary else {})
    env = {
        "GPUFLEET_REPLICA_MODEL_SOURCE": replica.source,
        "GPUFLEET_REPLICA_SERVED_NAME": replica.served_name,
        "GPUFLEET_REPLICA_TENSOR_PARALLEL_SIZE": str(replica.tensor_parallel_size),
        "GPUFLEET_REPLICA_PORT": str(settings.replica_port),
        "GPUFLEET_REPLICA_DRAIN_TIMEOUT_S": str(settings.replica_drain_timeout_s),
        **({"GPUFLEET_REPLICA_MAX_MODEL_LEN": str(replica.max_model_len)} if replica.max_model_len else {}),
        **({"GPUFLEET_REPLICA_VLLM_ARGS": shlex.join(replica.vllm_args)} if replica.vllm_args else {}),
        **({"GPUFLEET_REPLICA_VERSION": replica.version} if replica.version else {}),
        "GPUFLEET_HOME": CACHE_MOUNT,
        "VLLM_CACHE_ROOT": f"{CACHE_MOUNT}/vllm",  # compiled graphs survive restarts beside the weights
        "HOME": "/tmp",  # the root filesystem is read-only; caches that follow HOME land in /tmp
        "NUMBA_CACHE_DIR": "/tmp/numba",  # not beside its (read-only) sources
        "VLLM_NO_USAGE_STATS": "1",
    }
    health = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": PROBE_PERIOD_S,
              "timeoutSeconds": PROBE_TIMEOUT_S}
    container = {
        "name": CONTAINER, "image": reference,
        "ports": [{"name": "http", "containerPort": settings.replica_port}],
        "env": [{"name": k, "value": v} for k, v in env.items()] + access.env + ([api_key_env()] if api_key else []),
        "resources": _resources(pool, replica, settings),
        # weights download and load: allowed as long as `up` waits for a replica
        "startupProbe": health | {"failureThreshold": math.ceil(settings.replica_ready_timeout_s / PROBE_PERIOD_S)},
        "readinessProbe": health,
        "livenessProbe": health | {"failureThreshold": LIVENESS_FAILURES},
        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "model-cache", "mountPath": CACHE_MOUNT}, {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "shm", "mountPath": "/dev/shm"}] + access.mounts,  # shm: NCCL between TP workers
        "lifecycle": {"preStop": pre_stop_pause(pool, PRESTOP_S)},
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": canary_name(model) if canary else deployment_name(model), "namespace": namespace(pool.name),
                     "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": rolling_update(),
            "template": {
                "metadata": {"labels": labels | version_labels(replica) | access.labels},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": REPLICA_UID, "runAsGroup": REPLICA_UID,
                                        "fsGroup": REPLICA_UID, "fsGroupChangePolicy": "OnRootMismatch",
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "nodeSelector": {POOL_LABEL: pool.name},
                    "tolerations": tolerations(pool),
                    "terminationGracePeriodSeconds": PRESTOP_S + settings.replica_drain_timeout_s + int(KILL_GRACE_S) + 5,
                    "volumes": [_cache_volume(pool), {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}},
                                {"name": "shm", "emptyDir": {"medium": "Memory"}}] + access.volumes,
                },
            },
        },
    }


def rolling_update(surge: int = 1) -> dict:
    """Make-before-break: `surge` new pods start before an old one stops, and none stops before a new one is ready."""
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": 0}}


def replica_objects(pool: Pool, model: str, replica: ReplicaSpec, replicas: int, settings: Settings, *,
                    api_key: bool = False, canary: bool = False) -> list[dict]:
    """What a model's replicas in a pool need in its namespace, in apply order: ServiceAccount, the
    cache claim (when shared), the model's Service, the Deployment (the canary's with `canary`). The
    namespace and the key's Secret come before."""
    body = deployment(pool, model, replica, replicas, settings, api_key=api_key, canary=canary)
    claim = model_cache_claim(pool)
    return [service_account(pool, namespace(pool.name), labels_of(pool)), *([claim] if claim else []),
            service(pool, model, settings), body]


def pod_release(template: dict) -> tuple:
    """What a pod template runs, as a step sets it: version label, image, plain environment values. The
    API server adds defaults to the rest, so whole templates read back never equal the rendered one."""
    container = next(c for c in template["spec"]["containers"] if c["name"] == CONTAINER)
    env = sorted((e["name"], e["value"]) for e in container.get("env") or [] if "value" in e)
    return (template["metadata"].get("labels", {}).get(VERSION_LABEL), container["image"], tuple(env))


def api_key_env() -> dict:
    """The container's `VLLM_API_KEY`, read from the gateway key's Secret (vLLM refuses requests without it)."""
    return {"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": API_KEY_SECRET, "key": API_KEY_SECRET_KEY}}}


def api_key_secret(pool: Pool, key: SecretStr) -> dict:
    """The Secret holding the gateway's API key in the pool's namespace.

    The returned body holds the key in clear (base64): pass it to the API only, never to a
    log line, an error message or a file.
    """
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": API_KEY_SECRET, "namespace": namespace(pool.name), "labels": labels_of(pool)},
        "data": {API_KEY_SECRET_KEY: base64.b64encode(key.get_secret_value().encode()).decode("ascii")},
    }


def object_meta(deployment_: dict) -> dict:
    """Metadata for an object that goes with a Deployment: its name, namespace and labels."""
    meta = deployment_["metadata"]
    return {"name": meta["name"], "namespace": meta["namespace"], "labels": dict(meta["labels"])}


def service(pool: Pool, model: str, settings: Settings) -> dict:
    """The model's ClusterIP Service over its pods, stable and canary (what a site's vllm-router discovers)."""
    labels = labels_of(pool, model)
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": deployment_name(model), "namespace": namespace(pool.name), "labels": labels},
        "spec": {"type": "ClusterIP", "selector": dict(labels),
                 "ports": [{"name": "http", "port": settings.replica_port, "targetPort": "http", "protocol": "TCP"}]},
    }


def observed_replica(pod: dict, pool: str, port: int) -> ObservedReplica:
    """A pod (the API's JSON) as an ObservedReplica: healthy when Ready and not stopping; its version and track from its labels."""
    metadata, status = pod["metadata"], pod.get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    ip = status.get("podIP")
    return ObservedReplica(
        model=metadata["labels"][MODEL_LABEL], pool=pool, url=f"http://{ip}:{port}" if ip else "",
        healthy=ready and not metadata.get("deletionTimestamp"),
        restarts=sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or []),
        version=metadata["labels"].get(VERSION_LABEL), canary=is_canary(pod),
    )


def is_canary(object_: dict) -> bool:
    """Whether a Deployment or pod (the API's JSON) is a rollout's canary."""
    return (object_["metadata"].get("labels") or {}).get(TRACK_LABEL) == CANARY
