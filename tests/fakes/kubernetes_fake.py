"""A fake of the Kubernetes API paths a Deployment rollout uses, for the official client in tests.

No kube-apiserver can run here, so this stands in for one (JSON only, no watch):

    GET    /api/v1/nodes?labelSelector=a=b                      nodes (`add_node`), all Ready
    POST   /api/v1/namespaces                                   create (409 if there)
    GET    /api/v1/namespaces/NS/pods?labelSelector=a=b,c=d     the Deployments' pods
    POST   /api/v1/namespaces/NS/services                       create (404 without the namespace, 409 if there)
    GET    /api/v1/namespaces/NS/services?labelSelector=...
    GET    /api/v1/namespaces/NS/services/NAME
    DELETE /api/v1/namespaces/NS/services/NAME
    POST   /api/v1/namespaces/NS/secrets                        create (404 without the namespace, 409 if there)
    POST   /api/v1/namespaces/NS/serviceaccounts                as secrets
    POST   /api/v1/namespaces/NS/persistentvolumeclaims         as secrets (never bound: nothing reads it)
    POST   /apis/apps/v1/namespaces/NS/deployments              create (404 without the namespace, 409 if there)
    GET    /apis/apps/v1/namespaces/NS/deployments?labelSelector=...
    GET    /apis/apps/v1/namespaces/NS/deployments/NAME
    PATCH  /apis/apps/v1/namespaces/NS/deployments/NAME         a JSON patch (`replace`/`add` ops), or a merge patch
                                                                (strategic ones merged the same way)
    DELETE /apis/apps/v1/namespaces/NS/deployments/NAME         its pods start terminating
    PATCH  /apis/apps/v1/namespaces/NS/deployments/NAME/scale   {"spec": {"replicas": N}}
    POST   /apis/autoscaling/v2/namespaces/NS/horizontalpodautoscalers            create (409 if there)
    GET    /apis/autoscaling/v2/namespaces/NS/horizontalpodautoscalers/NAME
    PATCH  /apis/autoscaling/v2/namespaces/NS/horizontalpodautoscalers/NAME       {"spec": {...}}, merged
    DELETE /apis/autoscaling/v2/namespaces/NS/horizontalpodautoscalers/NAME

A Deployment's pods are made at once; each turns Ready `ready_delay_s` after it is made
(status.readyReplicas follows) and, once deleted, stays Terminating for
`terminate_delay_s`. Services, Secrets, ServiceAccounts and claims are kept as posted
(`services`, `objects["secrets"]`, ...) and answered whole, as a real server answers them (a
Secret's `data` included); a namespace keeps its labels (`namespaces`). An HPA
(`autoscalers`) acts as its controller would at once, and only on its bounds: the Deployment
it targets is scaled into [minReplicas, maxReplicas] when it is made or patched (no metrics,
no later scaling of its own).

A Deployment whose pod template changes rolls as its controller rolls it (RollingUpdate, the
only strategy faked), one step at every request: new pods start while all pods number at most
`replicas + maxSurge`, and old ones stop (not-ready first) while at least `replicas -
maxUnavailable` pods stay ready; status counts `updatedReplicas` (pods of the current
template) apart. `fewest_ready` keeps, per Deployment, the fewest ready pods left after a step
of a rollout stopped old ones. A scale removes old-template pods first, then the newest.
Not emulated: scheduling (every pod gets a node and an IP), probes, the Recreate strategy,
proportional scaling during a rollout, a Service's cluster IP and endpoints, reading or
updating Secrets, quotas, RBAC, watch, server-side apply.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import itertools
import json
import math
import re
import time
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

from tests.fakes.cloud_fake import FakeCloudApi
from tests.fakes.http_fake import json_response

_NODES = re.compile(r"^/api/v1/nodes$")
_NAMESPACES = re.compile(r"^/api/v1/namespaces$")
_PODS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods$")
_SERVICES = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services(?:/(?P<name>[^/]+))?$")
_OBJECTS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>secrets|serviceaccounts|persistentvolumeclaims)$")
_DEPLOYMENTS = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments$")
_DEPLOYMENT = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)(?P<scale>/scale)?$")
_AUTOSCALERS = re.compile(r"^/apis/autoscaling/v2/namespaces/(?P<ns>[^/]+)/horizontalpodautoscalers(?:/(?P<name>[^/]+))?$")


def status_body(code: int, reason: str, message: str) -> dict:
    """A `Status` failure, as the API server answers errors."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


@dataclass
class FakePod:
    name: str
    ip: str
    labels: dict[str, str]
    made_at: float
    template: str  # `_template_hash` of the template it was made from
    deleted_at: float | None = None


class FakeKubernetesApi(FakeCloudApi):
    """Namespaces, Deployments and their pods, Services, Secrets, ServiceAccounts, claims (see module docstring)."""

    def __init__(self, *, ready_delay_s: float = 0.05, terminate_delay_s: float = 0.05) -> None:
        super().__init__()
        self.ready_delay_s = ready_delay_s
        self.terminate_delay_s = terminate_delay_s
        self.namespaces: dict[str, dict[str, str]] = {}  # name -> labels
        self.deployments: dict[tuple[str, str], dict] = {}
        self.pods: dict[tuple[str, str], list[FakePod]] = {}  # by Deployment, live and terminating
        self.services: dict[tuple[str, str], dict] = {}  # (namespace, name) -> body
        self.objects: dict[str, dict[tuple[str, str], dict]] = {  # plural -> (namespace, name) -> body
            "secrets": {}, "serviceaccounts": {}, "persistentvolumeclaims": {}}
        self.secrets = self.objects["secrets"]
        self.autoscalers: dict[tuple[str, str], dict] = {}  # (namespace, name) -> HorizontalPodAutoscaler
        self.fewest_ready: dict[tuple[str, str], int] = {}  # by Deployment: fewest ready pods during its rollouts
        self.nodes: dict[str, dict[str, str]] = {}  # name -> labels
        self._ids = itertools.count(1)

    def add_node(self, name: str, labels: dict[str, str]) -> None:
        self.nodes[name] = dict(labels)

    def handle(self, request: Request) -> Response:
        with self._lock:
            self._reap(time.monotonic())
            for key in self.deployments:
                self._roll(key)
            if _NODES.match(request.path):
                return self._list_nodes(_selector(request))
            if _NAMESPACES.match(request.path) and request.method == "POST":
                return self._create_namespace(request.get_json())
            if match := _PODS.match(request.path):
                return self._list_pods(match["ns"], _selector(request))
            if match := _SERVICES.match(request.path):
                return self._services(request, match["ns"], match["name"])
            if (match := _OBJECTS.match(request.path)) and request.method == "POST":
                return self._create_object(self.objects[match["plural"]], match["plural"], match["ns"], request.get_json())
            if match := _DEPLOYMENTS.match(request.path):
                if request.method == "POST":
                    return self._create(match["ns"], request.get_json())
                items = [self._deployment(key) for key in self.deployments
                         if key[0] == match["ns"] and _selects(_selector(request), self.deployments[key])]
                return json_response({"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}, "items": items})
            if match := _DEPLOYMENT.match(request.path):
                return self._one(request, (match["ns"], match["name"]), bool(match["scale"]))
            if match := _AUTOSCALERS.match(request.path):
                return self._autoscaler(request, match["ns"], match["name"])
        return json_response(status_body(404, "NotFound", f"the server could not find {request.path}"), 404)

    def _create_namespace(self, body: dict) -> Response:
        name = body["metadata"]["name"]
        if name in self.namespaces:
            return json_response(status_body(409, "AlreadyExists", f'namespaces "{name}" already exists'), 409)
        self.namespaces[name] = dict(body["metadata"].get("labels") or {})
        return json_response({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}}, 201)

    def _services(self, request: Request, namespace: str, name: str | None) -> Response:
        if name is None and request.method == "POST":
            return self._create_object(self.services, "services", namespace, request.get_json())
        if name is None:
            items = [copy.deepcopy(body) for key, body in self.services.items()
                     if key[0] == namespace and _selects(_selector(request), body)]
            return json_response({"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": items})
        if (namespace, name) not in self.services:
            return json_response(status_body(404, "NotFound", f'services "{name}" not found'), 404)
        if request.method == "DELETE":
            return json_response(self.services.pop((namespace, name)))
        return json_response(copy.deepcopy(self.services[(namespace, name)]))

    def _create_object(self, store: dict[tuple[str, str], dict], plural: str, namespace: str, body: dict) -> Response:
        """A namespaced object kept as posted."""
        name = body["metadata"]["name"]
        if namespace not in self.namespaces:
            return json_response(status_body(404, "NotFound", f'namespaces "{namespace}" not found'), 404)
        if (namespace, name) in store:
            return json_response(status_body(409, "AlreadyExists", f'{plural} "{name}" already exists'), 409)
        body = copy.deepcopy(body)
        body["metadata"] |= {"namespace": namespace, "uid": f"uid-{next(self._ids)}"}
        store[(namespace, name)] = body
        return json_response(copy.deepcopy(body), 201)

    def _autoscaler(self, request: Request, namespace: str, name: str | None) -> Response:
        if name is None and request.method == "POST":
            response = self._create_object(self.autoscalers, "horizontalpodautoscalers", namespace, request.get_json())
            if response.status_code == 201:
                self._hold_bounds(self.autoscalers[(namespace, request.get_json()["metadata"]["name"])])
            return response
        if (namespace, name) not in self.autoscalers:
            return json_response(status_body(404, "NotFound", f'horizontalpodautoscalers.autoscaling "{name}" not found'), 404)
        if request.method == "DELETE":
            return json_response(self.autoscalers.pop((namespace, name)))
        if request.method == "PATCH":
            self.autoscalers[(namespace, name)]["spec"] |= request.get_json()["spec"]
            self._hold_bounds(self.autoscalers[(namespace, name)])
        return json_response(copy.deepcopy(self.autoscalers[(namespace, name)]))

    def _hold_bounds(self, autoscaler: dict) -> None:
        """What the HPA controller does first: bring its Deployment's count within its bounds."""
        key = (autoscaler["metadata"]["namespace"], autoscaler["spec"]["scaleTargetRef"]["name"])
        if key in self.deployments:
            spec = autoscaler["spec"]
            replicas = self.deployments[key]["spec"].get("replicas", 1)
            bounded = min(max(replicas, spec.get("minReplicas", 1)), spec["maxReplicas"])
            if bounded != replicas:
                self.deployments[key]["spec"]["replicas"] = bounded
                self._scale(key, bounded)

    def _create(self, namespace: str, body: dict) -> Response:
        name = body["metadata"]["name"]
        if namespace not in self.namespaces:
            return json_response(status_body(404, "NotFound", f'namespaces "{namespace}" not found'), 404)
        if (namespace, name) in self.deployments:
            return json_response(status_body(409, "AlreadyExists", f'deployments.apps "{name}" already exists'), 409)
        body = copy.deepcopy(body)
        body["metadata"] |= {"namespace": namespace, "generation": 1, "uid": f"uid-{next(self._ids)}"}
        self.deployments[(namespace, name)] = body
        self.pods[(namespace, name)] = []
        self._scale((namespace, name), body["spec"].get("replicas", 1))
        return json_response(self._deployment((namespace, name)), 201)

    def _one(self, request: Request, key: tuple[str, str], scale: bool) -> Response:
        if key not in self.deployments:
            return json_response(status_body(404, "NotFound", f'deployments.apps "{key[1]}" not found'), 404)
        if request.method == "DELETE":
            self._scale(key, 0)
            del self.deployments[key]
            return json_response(status_body(200, "", "") | {"status": "Success"})
        if request.method == "PATCH" and scale:
            replicas = int(request.get_json()["spec"]["replicas"])
            self.deployments[key]["spec"]["replicas"] = replicas
            self.deployments[key]["metadata"]["generation"] += 1
            self._scale(key, replicas)
        elif request.method == "PATCH":
            self._patch(key, request.get_json(), request.content_type or "")
        if scale:
            return json_response({"kind": "Scale", "apiVersion": "autoscaling/v1",
                                  "metadata": {"name": key[1], "namespace": key[0]},
                                  "spec": {"replicas": self.deployments[key]["spec"]["replicas"]},
                                  "status": {"replicas": len(self._live(key))}})
        return json_response(self._deployment(key))

    def _patch(self, key: tuple[str, str], patch: list | dict, content_type: str) -> None:
        """A JSON patch (a list of ops) or a merge patch; a changed spec is a new generation, a changed count a scale."""
        body = self.deployments[key]
        before = copy.deepcopy(body["spec"])
        if content_type.startswith("application/json-patch+json"):
            for op in patch:
                if op["op"] not in ("replace", "add"):
                    raise ValueError(f"JSON patch op {op['op']} is not faked")
                *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]]
                target = body
                for part in parents:
                    target = target[part]
                target[last] = copy.deepcopy(op["value"])
        else:
            _merge(body, patch)
        if body["spec"] != before:
            body["metadata"]["generation"] += 1
        if body["spec"].get("replicas", 1) != before.get("replicas", 1):
            self._scale(key, body["spec"].get("replicas", 1))

    def _scale(self, key: tuple[str, str], replicas: int) -> None:
        now = time.monotonic()
        current = _template_hash(self.deployments[key])
        live = sorted(self._live(key), key=lambda pod: pod.template != current)  # old-template pods last: stopped first
        for pod in live[replicas:]:
            pod.deleted_at = now
        for _ in range(replicas - len(live)):
            self._add_pod(key, now)

    def _add_pod(self, key: tuple[str, str], now: float) -> None:
        template = self.deployments[key]["spec"]["template"]
        n = next(self._ids)
        self.pods[key].append(FakePod(f"{key[1]}-{n:05d}", f"10.0.{n // 250}.{n % 250 + 1}",
                                      dict(template["metadata"].get("labels", {})), now, _template_hash(self.deployments[key])))

    def _roll(self, key: tuple[str, str]) -> None:
        """One step of a RollingUpdate toward the current template (see module docstring)."""
        body = self.deployments[key]
        current = _template_hash(body)
        live = self._live(key)
        old = [pod for pod in live if pod.template != current]
        replicas = body["spec"].get("replicas", 1)
        if not old and len(live) >= replicas:
            return
        rolling = (body["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        surge = _pods_of(rolling.get("maxSurge", "25%"), replicas, math.ceil)
        unavailable = _pods_of(rolling.get("maxUnavailable", "25%"), replicas, math.floor)
        now = time.monotonic()
        for _ in range(min(replicas - (len(live) - len(old)), replicas + surge - len(live))):
            self._add_pod(key, now)
        ready = sum(self._ready(pod) for pod in self._live(key))
        for pod in sorted(old, key=self._ready):  # not-ready ones first: stopping them costs nothing
            was_ready = self._ready(pod)
            if was_ready and ready - 1 < replicas - unavailable:
                break
            pod.deleted_at = now
            ready -= was_ready
        self.fewest_ready[key] = min(self.fewest_ready.get(key, ready), ready)

    def _live(self, key: tuple[str, str]) -> list[FakePod]:
        return [pod for pod in self.pods.get(key, []) if pod.deleted_at is None]

    def _ready(self, pod: FakePod) -> bool:
        return pod.deleted_at is None and time.monotonic() - pod.made_at >= self.ready_delay_s

    def _reap(self, now: float) -> None:
        for key, pods in list(self.pods.items()):
            pods[:] = [p for p in pods if p.deleted_at is None or now - p.deleted_at < self.terminate_delay_s]
            if not pods and key not in self.deployments:
                del self.pods[key]

    def _deployment(self, key: tuple[str, str]) -> dict:
        body = copy.deepcopy(self.deployments[key])
        live = self._live(key)
        ready = sum(self._ready(pod) for pod in live)
        updated = sum(pod.template == _template_hash(body) for pod in live)
        body["status"] = {"observedGeneration": body["metadata"]["generation"], "replicas": len(live),
                          "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready}
        return body

    def _list_nodes(self, selector: dict[str, str]) -> Response:
        items = [{"metadata": {"name": name, "labels": labels},
                  "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
                 for name, labels in self.nodes.items() if all(labels.get(k) == v for k, v in selector.items())]
        return json_response({"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items})

    def _list_pods(self, namespace: str, selector: dict[str, str]) -> Response:
        items = [self._pod(key, pod) for key, pods in self.pods.items() if key[0] == namespace
                 for pod in pods if all(pod.labels.get(k) == v for k, v in selector.items())]
        return json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    def _pod(self, key: tuple[str, str], pod: FakePod) -> dict:
        ready = self._ready(pod)
        metadata = {"name": pod.name, "namespace": key[0], "labels": pod.labels}
        if pod.deleted_at is not None:
            metadata["deletionTimestamp"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "metadata": metadata,
            "spec": {"containers": [{"name": "vllm", "image": "fake"}], "nodeName": f"node-{key[0]}"},
            "status": {"phase": "Running", "podIP": pod.ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": "vllm", "ready": ready, "restartCount": 0, "image": "fake",
                                              "imageID": "fake", "started": True}]},
        }


def _template_hash(deployment: dict) -> str:
    """A Deployment's pod template, as its controller tells one ReplicaSet from another."""
    return hashlib.sha256(json.dumps(deployment["spec"]["template"], sort_keys=True).encode()).hexdigest()[:10]


def _pods_of(value: int | str, replicas: int, rounding) -> int:
    """maxSurge / maxUnavailable as pods: a number, or a percentage of `replicas` (surge rounds up, unavailable down)."""
    if isinstance(value, str) and value.endswith("%"):
        return int(rounding(replicas * float(value[:-1]) / 100))
    return int(value)


def _merge(target: dict, patch: dict) -> None:
    """A JSON merge patch (RFC 7386): objects merge, null removes, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _selector(request: Request) -> dict[str, str]:
    """An equality-based labelSelector (`a=b,c=d`) as a dict; other forms are not faked."""
    text = request.args.get("labelSelector", "")
    return dict(part.split("=", 1) for part in text.split(",") if part)


def _selects(selector: dict[str, str], body: dict) -> bool:
    labels = body["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in selector.items())
