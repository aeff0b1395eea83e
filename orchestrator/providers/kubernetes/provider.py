"""Replicas as Deployments on the pools' clusters: apply ScaleUp/ScaleDown, observe pods, release.

Steps are idempotent and prompt, like every provider's (base.py):

    ScaleUp(model, pool, n)    create the Deployment with n pods, after the pool's namespace,
                               the gateway key's Secret (when a key is given), the replicas'
                               ServiceAccount, the shared cache claim (when the spec asks for
                               one) and the model's Service (`models.replica_objects`); or scale
                               it up to n if it has fewer; StepPending until n are ready
    ScaleDown(model, pool, n)  scale down to n (at 0, delete the model's Service, then its
                               Deployment); StepPending until at most n pods are left,
                               terminating ones included (they drain)

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
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import SecretStr

from orchestrator.errors import InputError
from orchestrator.providers.base import ObservedPool, ObservedReplica, ScaleUp, Step, StepPending
from orchestrator.providers.kubernetes.api import api_client, translate_errors
from orchestrator.providers.kubernetes.models import (
    API_KEY_SECRET, MODEL_LABEL, POOL_LABEL, api_key_secret, deployment_name, namespace, namespace_object,
    observed_replica, replica_objects, selector,
)
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
        """Move toward `step`; return once it holds, raise StepPending while pods start or drain."""
        pool = self._pool(step.pool)
        current = self._read(pool, step.model)
        replicas = current["spec"].get("replicas", 1) if current else 0  # the API's default, where an HPA's manifest left it out
        autoscaler = self._read_autoscaler(pool, step.model) if current is not None else None
        if isinstance(step, ScaleUp):
            if current is None:
                self._create(pool, step)
            elif autoscaler is not None:
                if autoscaler["spec"].get("minReplicas", 1) < step.count:
                    self._set_floor(pool, step.model, autoscaler, step.count)
            elif replicas < step.count:
                self._scale(pool, step.model, replicas, step.count)
            ready = (current or {}).get("status", {}).get("readyReplicas") or 0
            if current is None or replicas < step.count or ready < step.count:
                raise StepPending(f"{self._where(pool)}: {ready} of {step.count} {step.model} replicas ready",
                                  self.settings.provider_poll_s)
            return
        if current is not None and step.count == 0:
            self._delete(pool, step.model, autoscaler=autoscaler is not None)
        elif autoscaler is not None:
            if autoscaler["spec"].get("minReplicas", 1) != step.count:
                self._set_floor(pool, step.model, autoscaler, step.count)
            return  # the HPA owns the pods above the floor
        elif current is not None and replicas > step.count:
            self._scale(pool, step.model, replicas, step.count)
        left = len(self._pods(pool, step.model))
        if left > step.count:
            raise StepPending(f"{self._where(pool)}: {left} {step.model} pods left, stopping down to {step.count}",
                              self.settings.provider_poll_s)

    def observe(self) -> list[ObservedReplica]:
        """Every gpufleet pod of the pools, as replicas (terminating ones unhealthy)."""
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
        """Delete every gpufleet Deployment and Service of the pools; StepPending until their pods are gone.

        The namespaces, the key's Secret, the ServiceAccount and the cache claim stay (the next ScaleUp
        reuses them; the claim keeps the weights).
        """
        left = 0
        for pool in self.pools.values():
            apps, core = self._client(pool)
            listed = self._call(pool, "list deployments", lambda: _json(apps.list_namespaced_deployment(
                namespace(pool.name), label_selector=selector(), _preload_content=False, **self._timeout())))
            for item in listed["items"]:
                self._delete(pool, item["metadata"]["labels"][MODEL_LABEL])
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

    def _read(self, pool: Pool, model: str) -> dict | None:
        """The model's Deployment in the pool, or None."""
        from kubernetes.client.exceptions import ApiException

        apps, _ = self._client(pool)

        def read() -> dict | None:
            try:
                return _json(apps.read_namespaced_deployment(deployment_name(model), namespace(pool.name),
                                                             _preload_content=False, **self._timeout()))
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        return self._call(pool, "read deployment", read)

    def _key(self) -> SecretStr | None:
        """The gateway's API key (asked of the function given, once), or None."""
        if callable(self._api_key):
            self._api_key = self._api_key()
        key = self._api_key
        return key if key is not None and key.get_secret_value() else None

    def _create(self, pool: Pool, step: ScaleUp) -> None:
        """Namespace, the key's Secret, then `replica_objects` (the Deployment last): each made unless already there."""
        from kubernetes.client.exceptions import ApiException

        apps, core = self._client(pool)
        key = self._key()
        objects = replica_objects(pool, step.model, step.replica, step.count, self.settings, api_key=key is not None)
        ns = namespace(pool.name)
        creators = {"ServiceAccount": core.create_namespaced_service_account,
                    "PersistentVolumeClaim": core.create_namespaced_persistent_volume_claim,
                    "Service": core.create_namespaced_service, "Deployment": apps.create_namespaced_deployment}

        def create(call: Callable[..., Any], *args: Any) -> Callable[[], bool]:
            def run() -> bool:
                try:
                    call(*args, _preload_content=False, **self._timeout())
                except ApiException as exc:
                    if exc.status != 409:  # already there: an earlier try that timed out, or another model, made it
                        raise
                    return False
                return True
            return run

        self._call(pool, "create namespace", create(core.create_namespace, namespace_object(pool)))
        if key is not None and self._call(pool, "create secret",  # the body holds the key: never log it
                                          create(core.create_namespaced_secret, ns, api_key_secret(pool, key))):
            logger.info("secret created: provider=%s region=%s pool=%s name=%s",
                        pool.provider, pool.region, pool.name, API_KEY_SECRET)
        for body in objects:
            kind, name = body["kind"], body["metadata"]["name"]
            if self._call(pool, f"create {kind.lower()}", create(creators[kind], ns, body)):
                logger.info("%s created: provider=%s region=%s pool=%s model=%s name=%s replicas=%d", kind.lower(),
                            pool.provider, pool.region, pool.name, step.model, name, step.count)

    def _scale(self, pool: Pool, model: str, current: int, replicas: int) -> None:
        apps, _ = self._client(pool)
        self._call(pool, "scale deployment", lambda: apps.patch_namespaced_deployment_scale(
            deployment_name(model), namespace(pool.name), {"spec": {"replicas": replicas}},
            _preload_content=False, **self._timeout()))
        logger.info("deployment scaled: provider=%s region=%s pool=%s model=%s replicas=%d->%d",
                    pool.provider, pool.region, pool.name, model, current, replicas)

    def _read_autoscaler(self, pool: Pool, model: str) -> dict | None:
        """The HorizontalPodAutoscaler of the model's Deployment (same name), or None."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        apps, _ = self._client(pool)
        autoscaling = client.AutoscalingV2Api(apps.api_client)

        def read() -> dict | None:
            try:
                return _json(autoscaling.read_namespaced_horizontal_pod_autoscaler(
                    deployment_name(model), namespace(pool.name), _preload_content=False, **self._timeout()))
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        return self._call(pool, "read autoscaler", read)

    def _set_floor(self, pool: Pool, model: str, autoscaler: dict, floor: int) -> None:
        """The plan's count as the HPA's minReplicas (its maxReplicas raised to it if below)."""
        from kubernetes import client

        apps, _ = self._client(pool)
        autoscaling = client.AutoscalingV2Api(apps.api_client)
        bounds = {"minReplicas": floor, "maxReplicas": max(floor, autoscaler["spec"]["maxReplicas"])}
        self._call(pool, "patch autoscaler", lambda: autoscaling.patch_namespaced_horizontal_pod_autoscaler(
            deployment_name(model), namespace(pool.name), {"spec": bounds}, _preload_content=False, **self._timeout()))
        logger.info("autoscaler floor set: provider=%s region=%s pool=%s model=%s replicas=%d->%d", pool.provider,
                    pool.region, pool.name, model, autoscaler["spec"].get("minReplicas", 1), floor)

    def _delete(self, pool: Pool, model: str, *, autoscaler: bool = False) -> None:
        """The model's Service (first: a failure leaves the Deployment, so the step is tried again), its autoscaler, then its Deployment."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        self._delete_service(pool, deployment_name(model))
        apps, _ = self._client(pool)
        if autoscaler:
            def delete_autoscaler() -> None:
                try:
                    client.AutoscalingV2Api(apps.api_client).delete_namespaced_horizontal_pod_autoscaler(
                        deployment_name(model), namespace(pool.name), **self._timeout())
                except ApiException as exc:
                    if exc.status != 404:  # already gone
                        raise

            self._call(pool, "delete autoscaler", delete_autoscaler)

        def delete() -> None:
            try:
                apps.delete_namespaced_deployment(deployment_name(model), namespace(pool.name), **self._timeout())
            except ApiException as exc:
                if exc.status != 404:  # already gone
                    raise

        self._call(pool, "delete deployment", delete)
        logger.info("deployment deleted: provider=%s region=%s pool=%s model=%s",
                    pool.provider, pool.region, pool.name, model)

    def _delete_service(self, pool: Pool, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        _, core = self._client(pool)

        def delete() -> bool:
            try:
                core.delete_namespaced_service(name, namespace(pool.name), _preload_content=False, **self._timeout())
            except ApiException as exc:
                if exc.status != 404:  # already gone
                    raise
                return False
            return True

        if self._call(pool, "delete service", delete):
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
