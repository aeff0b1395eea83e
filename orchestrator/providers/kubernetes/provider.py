"""Replicas as Deployments on the pools' clusters: apply ScaleUp/ScaleDown and a rollout's steps, observe pods, release.

Steps are idempotent and prompt, like every provider's (base.py):

    ScaleUp(model, pool, n)    create the Deployment with n pods, after the pool's namespace,
                               the gateway key's Secret (when a key is given), the replicas'
                               ServiceAccount, the shared cache claim (when the spec asks for
                               one) and the model's Service (`models.replica_objects`); or scale
                               it up to n if it has fewer; StepPending until n are ready
    ScaleDown(model, pool, n)  scale down to n (at 0, delete the model's Service, unless a
                               canary still runs, then its Deployment); StepPending until at
                               most n pods are left, terminating ones included (they drain)
    SetCanary(model, pool, n, replica)
                               the Deployment `<name>-canary` with n pods of the replica's
                               version beside the stable ones, under the model's Service
                               (made as a ScaleUp makes the stable one; scaled, or rolled to
                               another version, when it differs); StepPending until n are
                               ready and rolled out. At 0: deleted (with the Service when no
                               stable Deployment is left), StepPending until its pods are gone
    Promote(model, pool, replica)
                               the stable Deployment's pod template becomes the replica's (one
                               JSON patch, with a RollingUpdate of maxUnavailable 0 and a surge
                               of the canary's count, at least 1); the canary is deleted once
                               the stable one has its count ready on the new template (its GPUs
                               then make room for the surge); StepPending until the rollout is
                               complete (observedGeneration, updated = ready = replicas) and no
                               canary pod is left. No stable Deployment: one is made with the
                               canary's count first
    SetTraffic(model, pool, weights)
                               changes nothing (no weighted gateway here: the Service balances
                               over the ready pods); holds when each version's share of the
                               ready pods matches its weight within one pod (`traffic.py`),
                               else ProviderError

ScaleUp and ScaleDown act on the stable Deployment only: the canary's pods, which also carry the
model's label, are not counted. A stable Deployment is told from its canary by name and by the
label `gpufleet.io/track: canary`; a replica's version is its pods' `gpufleet.io/version`.

A Deployment scaled by a HorizontalPodAutoscaler (one of its name, as `orchestrator manifests`
renders it for GitOps) has one owner of its count, the HPA: rebalance then writes the plan's
floor on the HPA (`minReplicas`, and `maxReplicas` when below it), never the Deployment's
`replicas`. A ScaleUp still waits until the floor's pods are ready (the HPA controller raises
the count to its floor); a ScaleDown returns once the floor is written (the HPA removes pods
above it in its own time, never below); at 0 the HPA goes with the Deployment.

Every create takes 409 (already there) as done and every delete 404 (gone), so a step cut
short is finished by calling it again. Taking replicas out of the gateway before a ScaleDown
is rebalance's job. A ScaleUp never scales down, nor a ScaleDown up. A Deployment whose pod
template changed (another image, model source, the key added) is not rolled by a ScaleUp:
scale it to 0 and up again.

The API key (`api_key`: the environment's gateway key, or a function that gives it, called
at the first Deployment created) goes to the cluster in the Secret `gpufleet-gateway` only:
never into a log line, an error or the Deployment (whose pods read it from the Secret). An
existing Secret of that name is left as it is (rotating the key: replace it and restart the
pods). Without a key, no Secret is made and pods get no `VLLM_API_KEY`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import SecretStr

from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.base import (
    ObservedPool, ObservedReplica, Promote, ReplicaSpec, ResizePool, ScaleDown, ScaleUp, SetCanary, SetTraffic, Step,
    StepPending,
)
from orchestrator.providers.kubernetes.api import api_client, translate_errors
from orchestrator.providers.kubernetes.models import (
    API_KEY_SECRET, MODEL_LABEL, POOL_LABEL, VERSION_LABEL, api_key_secret, canary_name, deployment, deployment_name,
    is_canary, namespace, namespace_object, observed_replica, pod_release, replica_objects, rolling_update, selector,
)
from orchestrator.providers.kubernetes.traffic import weights_problem
from orchestrator.providers.retry import Backoff, call_with_retries
from orchestrator.settings import Settings
from orchestrator.spec import Pool

logger = logging.getLogger(__name__)

T = TypeVar("T")


class KubernetesDeployments:
    """The replicas of `pools` (each with a `cluster`, its kube context) as Deployments (see module docstring)."""

    def __init__(self, pools: list[Pool], settings: Settings, backoff: Backoff | None = None,
                 api_key: SecretStr | Callable[[], SecretStr] | None = None) -> None:
        missing = [p.name for p in pools if not p.cluster]
        if missing:
            raise InputError(f"pools {', '.join(missing)} name no cluster. To fix: set each pool's cluster "
                             "(its kube context)")
        self.pools = {p.name: p for p in pools}
        self.settings = settings
        self.backoff = backoff or Backoff.from_settings(settings)
        self._clients: dict[str, tuple[Any, Any]] = {}
        self._api_key = api_key

    def apply(self, step: Step) -> None:
        """Move toward `step`; return once it holds, raise StepPending while pods start, roll or drain."""
        if isinstance(step, ResizePool):
            raise ProviderError(f"resize_pool {step.pool} is the node pools' step, not the Deployments'. "
                                "To fix: apply it through ClusterProvider")
        pool = self._pool(step.pool)
        if isinstance(step, ScaleUp):
            self._scale_up(pool, step)
        elif isinstance(step, ScaleDown):
            self._scale_down(pool, step)
        elif isinstance(step, SetCanary):
            self._set_canary(pool, step)
        elif isinstance(step, Promote):
            self._promote(pool, step)
        else:
            self._check_traffic(pool, step)

    def _scale_up(self, pool: Pool, step: ScaleUp) -> None:
        current = self._read(pool, deployment_name(step.model))
        replicas = current["spec"].get("replicas", 1) if current else 0  # the API's default, where an HPA's manifest left it out
        autoscaler = self._read_autoscaler(pool, step.model) if current is not None else None
        if current is None:
            self._create(pool, step.model, step.replica, step.count)
        elif autoscaler is not None:
            if autoscaler["spec"].get("minReplicas", 1) < step.count:
                self._set_floor(pool, step.model, autoscaler, step.count)
        elif replicas < step.count:
            self._scale(pool, step.model, deployment_name(step.model), replicas, step.count)
        ready = (current or {}).get("status", {}).get("readyReplicas") or 0
        if current is None or replicas < step.count or ready < step.count:
            raise StepPending(f"{self._where(pool)}: {ready} of {step.count} {step.model} replicas ready",
                              self.settings.provider_poll_s)

    def _scale_down(self, pool: Pool, step: ScaleDown) -> None:
        current = self._read(pool, deployment_name(step.model))
        replicas = current["spec"].get("replicas", 1) if current else 0
        autoscaler = self._read_autoscaler(pool, step.model) if current is not None else None
        if current is not None and step.count == 0:
            self._remove(pool, step.model, canary=False, autoscaler=autoscaler is not None)
        elif autoscaler is not None:
            if autoscaler["spec"].get("minReplicas", 1) != step.count:
                self._set_floor(pool, step.model, autoscaler, step.count)
            return  # the HPA owns the pods above the floor
        elif current is not None and replicas > step.count:
            self._scale(pool, step.model, deployment_name(step.model), replicas, step.count)
        left = sum(not is_canary(pod) for pod in self._pods(pool, step.model))
        if left > step.count:
            raise StepPending(f"{self._where(pool)}: {left} {step.model} pods left, stopping down to {step.count}",
                              self.settings.provider_poll_s)

    def _set_canary(self, pool: Pool, step: SetCanary) -> None:
        """The canary Deployment with `count` ready pods of the step's version (none at 0: deleted, its pods gone)."""
        current = self._read(pool, canary_name(step.model))
        if step.count == 0:
            if current is not None:
                self._remove(pool, step.model, canary=True)
            left = sum(is_canary(pod) for pod in self._pods(pool, step.model))
            if left:
                raise StepPending(f"{self._where(pool)}: {left} {step.model} canary pods left, stopping",
                                  self.settings.provider_poll_s)
            return
        if current is None:
            self._create(pool, step.model, step.replica, step.count, canary=True)
            changed = True
        else:
            changed = self._roll(pool, step.model, current, step.replica)
            replicas = current["spec"].get("replicas", 1)
            if replicas != step.count:
                self._scale(pool, step.model, canary_name(step.model), replicas, step.count)
                changed = True
        if changed or current is None or not _rolled_out(current):
            ready = (current or {}).get("status", {}).get("readyReplicas") or 0
            raise StepPending(f"{self._where(pool)}: {ready} of {step.count} {step.model} canary replicas "
                              f"({step.replica.version}) ready", self.settings.provider_poll_s)

    def _promote(self, pool: Pool, step: Promote) -> None:
        """The stable Deployment rolled to the step's version (make-before-break), then no canary.

        The canary is deleted as soon as the stable one runs the new template with at least its
        count ready: from then on its rolling update (maxUnavailable 0) keeps that many ready by
        itself, and the canary's GPUs are free for its surge pods (a full pool would otherwise
        wait forever for room). With no stable Deployment, one takes over the canary's count.
        """
        stable = self._read(pool, deployment_name(step.model))
        canary = self._read(pool, canary_name(step.model))
        if stable is None:
            if canary is not None:
                self._create(pool, step.model, step.replica, canary["spec"].get("replicas", 1))
                raise StepPending(f"{self._where(pool)}: {step.model} takes over its canary's replicas",
                                  self.settings.provider_poll_s)
            return  # nothing runs here, and no canary
        replicas = stable["spec"].get("replicas", 1)
        surge = max(1, min(canary["spec"].get("replicas", 1) if canary else 0, replicas))
        if self._roll(pool, step.model, stable, step.replica, surge=surge):
            raise StepPending(f"{self._where(pool)}: {step.model} rolling to {step.replica.version}",
                              self.settings.provider_poll_s)
        status = stable.get("status") or {}
        if canary is not None and (status.get("readyReplicas") or 0) >= replicas:
            self._remove(pool, step.model, canary=True)
        left = sum(is_canary(pod) for pod in self._pods(pool, step.model))
        if not _rolled_out(stable) or left:
            raise StepPending(f"{self._where(pool)}: {step.model} at {step.replica.version}: "
                              f"{status.get('updatedReplicas') or 0} of {replicas} replicas updated, "
                              f"{status.get('readyReplicas') or 0} ready, {left} canary pods left",
                              self.settings.provider_poll_s)

    def _check_traffic(self, pool: Pool, step: SetTraffic) -> None:
        """Nothing to set: hold when the model's ready pods per version carry the weights (`traffic.py`)."""
        replicas = [observed_replica(pod, pool.name, self.settings.replica_port) for pod in self._pods(pool, step.model)]
        problem = weights_problem(step.weights, Counter(r.version for r in replicas if r.healthy))
        if problem:
            raise ProviderError(f"{self._where(pool)}: {step.model}'s pods do not carry the traffic weights "
                                f"{step.weights}: {problem}. On Kubernetes a version's share of the requests is its "
                                "share of the model's ready pods (its Service balances over them); weights follow "
                                "pod counts within one pod. To fix: set the canary's count (SetCanary) to match, "
                                "then SetTraffic")

    def observe(self) -> list[ObservedReplica]:
        """Every gpufleet pod of the pools, as replicas (terminating ones unhealthy; their version and canary from labels)."""
        return [observed_replica(pod, pool.name, self.settings.replica_port)
                for pool in self.pools.values() for pod in self._pods(pool)]

    def nodes(self, pool: Pool) -> ObservedPool:
        """The cluster's nodes labelled with the pool (how on-prem pools, which no cloud sizes, are counted)."""
        _, core = self._client(pool)
        listed = self._call(pool, "list nodes", lambda: _json(core.list_node(
            label_selector=f"{POOL_LABEL}={pool.name}", _preload_content=False, **self._timeout())))
        ready = [n for n in listed["items"] if any(
            c["type"] == "Ready" and c["status"] == "True" for c in (n.get("status") or {}).get("conditions") or [])]
        return ObservedPool(pool=pool.name, nodes=len(listed["items"]), healthy_nodes=len(ready))

    def release(self) -> None:
        """Delete every gpufleet Deployment (canaries too) and Service of the pools; StepPending until their pods are gone.

        The namespaces, the key's Secret, the ServiceAccount and the cache claim stay (the next ScaleUp
        reuses them; the claim keeps the weights).
        """
        left = 0
        for pool in self.pools.values():
            apps, core = self._client(pool)
            listed = self._call(pool, "list deployments", lambda: _json(apps.list_namespaced_deployment(
                namespace(pool.name), label_selector=selector(), _preload_content=False, **self._timeout())))
            for item in listed["items"]:  # stable and canary alike
                self._delete_deployment(pool, item["metadata"]["labels"][MODEL_LABEL], item["metadata"]["name"])
            services = self._call(pool, "list services", lambda: _json(core.list_namespaced_service(
                namespace(pool.name), label_selector=selector(), _preload_content=False, **self._timeout())))
            for item in services["items"]:  # left by a Deployment deleted by hand
                self._delete_service(pool, item["metadata"]["name"])
            left += len(self._pods(pool))
        if left:
            raise StepPending(f"kubernetes: {left} pods still stopping", self.settings.provider_poll_s)

    def _pool(self, name: str) -> Pool:
        if name not in self.pools:
            raise InputError(f"pool '{name}' is not a Kubernetes pool here. To fix: use one of {', '.join(self.pools)}")
        return self.pools[name]

    def _client(self, pool: Pool) -> tuple[Any, Any]:
        """(AppsV1Api, CoreV1Api) of the pool's cluster."""
        if pool.cluster not in self._clients:
            from kubernetes import client

            api = api_client(self.settings, pool.cluster)
            self._clients[pool.cluster] = (client.AppsV1Api(api), client.CoreV1Api(api))
        return self._clients[pool.cluster]

    def _timeout(self) -> dict[str, float]:
        return {"_request_timeout": self.settings.provider_call_timeout_s}

    def _where(self, pool: Pool) -> str:
        return f"kubernetes {pool.provider} {pool.region} cluster {pool.cluster} pool {pool.name}"

    def _call(self, pool: Pool, what: str, call: Callable[[], T]) -> T:
        return call_with_retries(call, backoff=self.backoff, translate=lambda: translate_errors(self._where(pool)),
                                 what=f"{self._where(pool)} {what}")

    def _read(self, pool: Pool, name: str) -> dict | None:
        """The Deployment `name` in the pool, or None."""
        apps, _ = self._client(pool)
        return self._call(pool, "read deployment", lambda: _unless(404, lambda: _json(apps.read_namespaced_deployment(
            name, namespace(pool.name), _preload_content=False, **self._timeout()))))

    def _key(self) -> SecretStr | None:
        """The gateway's API key (asked of the function given, once), or None."""
        if callable(self._api_key):
            self._api_key = self._api_key()
        key = self._api_key
        return key if key is not None and key.get_secret_value() else None

    def _create(self, pool: Pool, model: str, replica: ReplicaSpec, count: int, *, canary: bool = False) -> None:
        """Namespace, the key's Secret, then `replica_objects` (the Deployment last): each made unless already there."""
        apps, core = self._client(pool)
        objects = replica_objects(pool, model, replica, count, self.settings, api_key=self._prepare(pool), canary=canary)
        creators = {"ServiceAccount": core.create_namespaced_service_account,
                    "PersistentVolumeClaim": core.create_namespaced_persistent_volume_claim,
                    "Service": core.create_namespaced_service, "Deployment": apps.create_namespaced_deployment}
        for body in objects:
            kind, name = body["kind"], body["metadata"]["name"]
            if self._made(pool, f"create {kind.lower()}", creators[kind], namespace(pool.name), body):
                logger.info("%s created: provider=%s region=%s pool=%s model=%s name=%s version=%s replicas=%d",
                            kind.lower(), pool.provider, pool.region, pool.name, model, name, replica.version, count)

    def _prepare(self, pool: Pool) -> bool:
        """The pool's namespace and the key's Secret, unless already there; whether pods read a key."""
        _, core = self._client(pool)
        key = self._key()
        self._made(pool, "create namespace", core.create_namespace, namespace_object(pool))
        if key is not None and self._made(pool, "create secret", core.create_namespaced_secret,  # the body holds the key: never log it
                                          namespace(pool.name), api_key_secret(pool, key)):
            logger.info("secret created: provider=%s region=%s pool=%s name=%s",
                        pool.provider, pool.region, pool.name, API_KEY_SECRET)
        return key is not None

    def _made(self, pool: Pool, what: str, create: Callable[..., Any], *args: Any) -> bool:
        """Create an object; False when it is there already (409: an earlier try that timed out, or another model, made it)."""
        return self._call(pool, what, lambda: _unless(409, lambda: create(*args, _preload_content=False, **self._timeout()))
                          is not None)

    def _roll(self, pool: Pool, model: str, current: dict, replica: ReplicaSpec, surge: int = 1) -> bool:
        """Put `replica` in a Deployment's pod template, rolling its pods make-before-break (`surge` new ones at
        a time, none old stopped before a new one is ready); False when its template runs `replica` already."""
        name = current["metadata"]["name"]
        wanted = deployment(pool, model, replica, current["spec"].get("replicas", 1), self.settings,
                            api_key=self._prepare(pool), canary=is_canary(current))["spec"]["template"]
        if pod_release(wanted) == pod_release(current["spec"]["template"]):
            return False
        apps, _ = self._client(pool)
        patch = [{"op": "replace", "path": "/spec/strategy", "value": rolling_update(surge)},
                 {"op": "replace", "path": "/spec/template", "value": wanted}]  # JSON patch: the whole template, no merge
        self._call(pool, "patch deployment", lambda: apps.patch_namespaced_deployment(
            name, namespace(pool.name), patch, _preload_content=False, **self._timeout()))
        logger.info("deployment rolling: provider=%s region=%s pool=%s model=%s name=%s version=%s->%s surge=%d",
                    pool.provider, pool.region, pool.name, model, name,
                    current["spec"]["template"]["metadata"].get("labels", {}).get(VERSION_LABEL), replica.version, surge)
        return True

    def _scale(self, pool: Pool, model: str, name: str, current: int, replicas: int) -> None:
        apps, _ = self._client(pool)
        self._call(pool, "scale deployment", lambda: apps.patch_namespaced_deployment_scale(
            name, namespace(pool.name), {"spec": {"replicas": replicas}}, _preload_content=False, **self._timeout()))
        logger.info("deployment scaled: provider=%s region=%s pool=%s model=%s name=%s replicas=%d->%d",
                    pool.provider, pool.region, pool.name, model, name, current, replicas)

    def _read_autoscaler(self, pool: Pool, model: str) -> dict | None:
        """The HorizontalPodAutoscaler of the model's Deployment (same name), or None."""
        autoscaling = self._autoscaling(pool)
        return self._call(pool, "read autoscaler", lambda: _unless(404, lambda: _json(
            autoscaling.read_namespaced_horizontal_pod_autoscaler(deployment_name(model), namespace(pool.name),
                                                                  _preload_content=False, **self._timeout()))))

    def _autoscaling(self, pool: Pool) -> Any:
        from kubernetes import client

        return client.AutoscalingV2Api(self._client(pool)[0].api_client)

    def _set_floor(self, pool: Pool, model: str, autoscaler: dict, floor: int) -> None:
        """The plan's count as the HPA's minReplicas (its maxReplicas raised to it if below)."""
        autoscaling = self._autoscaling(pool)
        bounds = {"minReplicas": floor, "maxReplicas": max(floor, autoscaler["spec"]["maxReplicas"])}
        self._call(pool, "patch autoscaler", lambda: autoscaling.patch_namespaced_horizontal_pod_autoscaler(
            deployment_name(model), namespace(pool.name), {"spec": bounds}, _preload_content=False, **self._timeout()))
        logger.info("autoscaler floor set: provider=%s region=%s pool=%s model=%s replicas=%d->%d", pool.provider,
                    pool.region, pool.name, model, autoscaler["spec"].get("minReplicas", 1), floor)

    def _remove(self, pool: Pool, model: str, *, canary: bool, autoscaler: bool = False) -> None:
        """One of the model's Deployments (stable or canary) and its autoscaler; first the model's Service, when
        the other Deployment is not there (a failure leaves the Deployment, so the step is tried again)."""
        if self._read(pool, deployment_name(model) if canary else canary_name(model)) is None:
            self._delete_service(pool, deployment_name(model))
        if autoscaler:
            autoscaling = self._autoscaling(pool)
            self._call(pool, "delete autoscaler", lambda: _unless(404, lambda: autoscaling.delete_namespaced_horizontal_pod_autoscaler(
                deployment_name(model), namespace(pool.name), _preload_content=False, **self._timeout())))
        self._delete_deployment(pool, model, canary_name(model) if canary else deployment_name(model))

    def _delete_deployment(self, pool: Pool, model: str, name: str) -> None:
        apps, _ = self._client(pool)
        if self._call(pool, "delete deployment", lambda: _unless(404, lambda: apps.delete_namespaced_deployment(
                name, namespace(pool.name), _preload_content=False, **self._timeout()))) is not None:
            logger.info("deployment deleted: provider=%s region=%s pool=%s model=%s name=%s",
                        pool.provider, pool.region, pool.name, model, name)

    def _delete_service(self, pool: Pool, name: str) -> None:
        _, core = self._client(pool)
        if self._call(pool, "delete service", lambda: _unless(404, lambda: core.delete_namespaced_service(
                name, namespace(pool.name), _preload_content=False, **self._timeout()))) is not None:
            logger.info("service deleted: provider=%s region=%s pool=%s name=%s", pool.provider, pool.region, pool.name, name)

    def _pods(self, pool: Pool, model: str | None = None) -> list[dict]:
        """gpufleet's pods in the pool (of one model when given), terminating ones included."""
        _, core = self._client(pool)
        listed = self._call(pool, "list pods", lambda: _json(core.list_namespaced_pod(
            namespace(pool.name), label_selector=selector(model), _preload_content=False, **self._timeout())))
        return listed["items"]


def _json(response: Any) -> dict:
    """The body of a `_preload_content=False` answer (skips the client's slow model deserialization)."""
    return json.loads(response.data)


def _unless(status: int, call: Callable[[], T]) -> T | None:
    """`call()`, or None when the API answers `status` (404 on a read or delete: not there; 409 on a create: there already)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return call()
    except ApiException as exc:
        if exc.status != status:
            raise
        return None


def _rolled_out(deployment_: dict) -> bool:
    """Whether a Deployment's rollout is complete: its latest spec observed, and every pod on its template and ready."""
    status = deployment_.get("status") or {}
    return (status.get("observedGeneration", 0) >= deployment_["metadata"].get("generation", 0)
            and (status.get("updatedReplicas") or 0) == (status.get("readyReplicas") or 0)
            == (status.get("replicas") or 0) == deployment_["spec"].get("replicas", 1))
