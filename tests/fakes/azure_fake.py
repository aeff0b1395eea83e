"""A fake of the Azure Resource Manager paths that node-pool scaling calls, served over TLS, for tests.

The Azure SDK sends its bearer token only over https, so the fake serves with a
self-signed certificate (`cloud_fake.self_signed_tls`) that the test makes the client
trust. Documented ARM behaviour it keeps: PUT (agent pool) and PATCH (scale set) answer
at once with the resource in a transitional `provisioningState` and an
`Azure-AsyncOperation` URL; that operation reads `InProgress` for `operations.duration_s`,
then `Succeeded` (the new size applied) or `Failed` with the queued error (the resource
`Failed` at its old size); `Retry-After: 0` keeps the client's polling quick.

    GET|PUT  .../providers/Microsoft.ContainerService/managedClusters/C/agentPools/A
    GET      .../providers/Microsoft.ContainerService/managedClusters/C    (nodeResourceGroup)
    GET      .../resourceGroups/G/providers/Microsoft.Compute/virtualMachineScaleSets
    GET|PATCH .../providers/Microsoft.Compute/virtualMachineScaleSets/S   (sku.capacity)
    GET      .../virtualMachineScaleSets/S/instanceView                   (statusesSummary)
    GET      /subscriptions/X/providers/Microsoft.Fake/locations/L/operations/O

Not emulated: autoscaler behaviour, create or delete, ETags, per-instance views, RBAC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from tests.fakes.cloud_fake import FakeCloudApi, FakeOperation, FakeOperations
from tests.fakes.http_fake import json_response

_RG = r"^/subscriptions/(?P<s>[^/]+)/resourceGroups/(?P<g>[^/]+)/providers/"
_AGENT_POOL = re.compile(_RG + r"Microsoft\.ContainerService/managedClusters/(?P<c>[^/]+)/agentPools/(?P<a>[^/]+)$")
_CLUSTER = re.compile(_RG + r"Microsoft\.ContainerService/managedClusters/(?P<c>[^/]+)$")
_SCALE_SETS = re.compile(_RG + r"Microsoft\.Compute/virtualMachineScaleSets$")
_SCALE_SET = re.compile(_RG + r"Microsoft\.Compute/virtualMachineScaleSets/(?P<v>[^/]+)(?P<view>/instanceView)?$")
_OPERATION = re.compile(r"^/subscriptions/[^/]+/providers/Microsoft\.Fake/locations/[^/]+/operations/(?P<o>[^/]+)$")
LOCATION = "westeurope"


def arm_error(code: str, message: str) -> dict:
    """ARM's error document, which azure-core reads into HttpResponseError.error."""
    return {"error": {"code": code, "message": message}}


@dataclass
class FakeScaleSet:
    """A VM scale set: `running` VMs provisioned, moving to `capacity`."""

    group: str
    name: str
    capacity: int = 0
    running: int = 0
    sku: str = "Standard_ND96isr_H100_v5"
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "Succeeded"

    def resource(self, subscription: str) -> dict:
        return {
            "id": f"/subscriptions/{subscription}/resourceGroups/{self.group}"
                  f"/providers/Microsoft.Compute/virtualMachineScaleSets/{self.name}",
            "name": self.name, "type": "Microsoft.Compute/virtualMachineScaleSets", "location": LOCATION,
            "tags": self.tags, "sku": {"name": self.sku, "tier": "Standard", "capacity": self.capacity},
            "properties": {"provisioningState": self.state, "upgradePolicy": {"mode": "Manual"}},
        }

    def instance_view(self) -> dict:
        summary = [{"code": "ProvisioningState/succeeded", "count": min(self.running, self.capacity)}]
        if self.capacity > self.running:
            summary.append({"code": "ProvisioningState/creating", "count": self.capacity - self.running})
        return {"virtualMachine": {"statusesSummary": summary}, "statuses": []}

    def set_size(self, size: int) -> None:
        self.capacity = self.running = size
        self.state = "Succeeded"


@dataclass
class FakeAgentPool:
    """An AKS agent pool and the scale set its nodes are (in the cluster's node resource group)."""

    name: str
    scale_set: FakeScaleSet
    autoscaling: bool = False
    min_count: int | None = None
    max_count: int | None = None
    state: str = "Succeeded"

    def resource(self, path: str) -> dict:
        properties = {"count": self.scale_set.capacity, "vmSize": self.scale_set.sku, "mode": "User",
                      "provisioningState": self.state, "enableAutoScaling": self.autoscaling,
                      "powerState": {"code": "Running"}, "orchestratorVersion": "1.33.2"}
        if self.autoscaling:
            properties |= {"minCount": self.min_count, "maxCount": self.max_count}
        return {"id": path, "name": self.name, "type": "Microsoft.ContainerService/managedClusters/agentPools",
                "properties": properties}


class FakeResourceManager(FakeCloudApi):
    """AKS agent pools and VM scale sets of one subscription (see module docstring)."""

    def __init__(self, subscription: str = "00000000-0000-0000-0000-000000000000", *, operation_s: float = 0.05) -> None:
        super().__init__()
        self.subscription = subscription
        self.operations = FakeOperations(operation_s)
        self.scale_sets: dict[tuple[str, str], FakeScaleSet] = {}
        self.agent_pools: dict[tuple[str, str, str], FakeAgentPool] = {}
        self.clusters: dict[tuple[str, str], str] = {}  # (group, cluster) -> node resource group

    def add_scale_set(self, group: str, name: str, size: int = 0, tags: dict[str, str] | None = None) -> FakeScaleSet:
        scale_set = FakeScaleSet(group, name, size, size, tags=tags or {})
        self.scale_sets[(group, name)] = scale_set
        return scale_set

    def add_agent_pool(self, group: str, cluster: str, name: str, size: int = 0, *,
                       autoscaling: bool = False, max_count: int | None = None) -> FakeAgentPool:
        node_group = self.clusters.setdefault((group, cluster), f"MC_{group}_{cluster}_{LOCATION}")
        scale_set = self.add_scale_set(node_group, f"aks-{name}-12345678-vmss", size, {"aks-managed-poolName": name})
        pool = FakeAgentPool(name, scale_set, autoscaling, 0 if autoscaling else None, max_count)
        self.agent_pools[(group, cluster, name)] = pool
        return pool

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.operations.advance()
            if match := _AGENT_POOL.match(request.path):
                return self._agent_pool(request, match)
            if match := _CLUSTER.match(request.path):
                return self._cluster(match)
            if match := _SCALE_SETS.match(request.path):
                return json_response({"value": [s.resource(self.subscription) for (group, _), s in
                                                self.scale_sets.items() if group == match["g"]]})
            if match := _SCALE_SET.match(request.path):
                return self._scale_set(request, match)
            if match := _OPERATION.match(request.path):
                return self._operation(match["o"])
        return _not_found("NotFound", f"no route {request.method} {request.path}")

    def _agent_pool(self, request: Request, match: re.Match) -> Response:
        pool = self.agent_pools.get((match["g"], match["c"], match["a"]))
        if pool is None:
            return _not_found("NotFound", f"Agent pool {match['a']} not found.")
        if request.method == "GET":
            return json_response(pool.resource(request.path))
        properties = request.get_json()["properties"]
        count = int(properties["count"])
        pool.state = "Scaling"

        def apply() -> None:
            pool.scale_set.set_size(count)
            pool.min_count = properties.get("minCount", pool.min_count)
            pool.state = "Succeeded"

        operation = self.operations.start(apply, on_failed=lambda: setattr(pool, "state", "Failed"))
        return self._accepted(request, pool.resource(request.path), operation)

    def _cluster(self, match: re.Match) -> Response:
        node_group = self.clusters.get((match["g"], match["c"]))
        if node_group is None:
            return _not_found("ResourceNotFound", f"Managed cluster {match['c']} not found.")
        return json_response({"name": match["c"], "location": LOCATION, "properties": {"nodeResourceGroup": node_group}})

    def _scale_set(self, request: Request, match: re.Match) -> Response:
        scale_set = self.scale_sets.get((match["g"], match["v"]))
        if scale_set is None:
            return _not_found("ResourceNotFound", f"The Resource '{match['v']}' was not found.")
        if match["view"]:
            return json_response(scale_set.instance_view())
        if request.method == "GET":
            return json_response(scale_set.resource(self.subscription))
        capacity = int(request.get_json()["sku"]["capacity"])
        scale_set.state = "Updating"
        operation = self.operations.start(lambda: scale_set.set_size(capacity),
                                          on_failed=lambda: setattr(scale_set, "state", "Failed"))
        return self._accepted(request, scale_set.resource(self.subscription), operation)

    def _operation(self, name: str) -> Response:
        operation = self.operations.started.get(name)
        if operation is None:
            return _not_found("NotFound", f"Operation {name} not found.")
        if not operation.done:
            body = {"status": "InProgress"}
        elif operation.error is None:
            body = {"status": "Succeeded"}
        else:
            body = {"status": "Failed", **arm_error(**operation.error)}
        return _with_headers(json_response({"name": name, **body}), {"Retry-After": "0"})

    def _accepted(self, request: Request, body: dict, operation: FakeOperation) -> Response:
        url = (f"{request.host_url}subscriptions/{self.subscription}/providers/Microsoft.Fake/locations/{LOCATION}"
               f"/operations/{operation.id}")
        return _with_headers(json_response(body), {"Azure-AsyncOperation": url, "Retry-After": "0"})


def _not_found(code: str, message: str) -> Response:
    return json_response(arm_error(code, message), 404)


def _with_headers(response: Response, headers: dict[str, str]) -> Response:
    response.headers.update(headers)
    return response
