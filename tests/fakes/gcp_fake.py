"""A fake of the GKE and Compute Engine REST paths that node-pool scaling calls, for tests.

One server answers both APIs (point `GPUFLEET_GCP_CONTAINER_ENDPOINT` and
`GPUFLEET_GCP_COMPUTE_ENDPOINT` at it), because a GKE node pool is its zones' managed
instance groups. It serves, as documented (v1, JSON, camelCase):

    GET  /v1/projects/P/locations/L/clusters/C/nodePools/N            node pool
    POST /v1/projects/P/locations/L/clusters/C/nodePools/N:setSize    {nodeCount} per zone -> operation
    GET  /v1/projects/P/locations/L/operations/O                      GKE operation
    GET  /compute/v1/projects/P/zones/Z/instanceGroupManagers/M       targetSize, currentActions, status
    POST /compute/v1/projects/P/zones/Z/instanceGroupManagers/M/resize?size=S -> zone operation
    GET  /compute/v1/projects/P/zones/Z/operations/O  (and POST .../O/wait)

Operations run for `operations.duration_s`, then apply their size (or end with a queued
error); while a `setSize` runs the node pool is RECONCILING. Not emulated: autoscaling,
node pool creation or deletion, per-instance errors (`listErrors`), regional instance
groups, field masks, paging, IAM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

from tests.fakes.cloud_fake import FakeCloudApi, FakeOperation, FakeOperations
from tests.fakes.gcp_billing import error_body
from tests.fakes.http_fake import json_response

_NODE_POOL = re.compile(r"^/v1/projects/(?P<p>[^/]+)/locations/(?P<l>[^/]+)/clusters/(?P<c>[^/]+)"
                        r"/nodePools/(?P<n>[^/:]+)(?P<verb>:setSize)?$")
_GKE_OPERATION = re.compile(r"^/v1/projects/(?P<p>[^/]+)/locations/(?P<l>[^/]+)/operations/(?P<o>[^/]+)$")
_MIG = re.compile(r"^/compute/v1/projects/(?P<p>[^/]+)/zones/(?P<z>[^/]+)/instanceGroupManagers/(?P<m>[^/]+)"
                  r"(?P<verb>/resize)?$")
_ZONE_OPERATION = re.compile(r"^/compute/v1/projects/(?P<p>[^/]+)/zones/(?P<z>[^/]+)/operations/(?P<o>[^/]+?)"
                             r"(?P<verb>/wait)?$")
GCE_PREFIX = "https://www.googleapis.com/compute/v1"


@dataclass
class FakeMig:
    """A zonal managed instance group: `running` instances, moving to `target_size`."""

    project: str
    zone: str
    name: str
    target_size: int = 0
    running: int = 0

    def resource(self) -> dict:
        moving = self.target_size - self.running
        return {
            "kind": "compute#instanceGroupManager", "name": self.name,
            "zone": f"{GCE_PREFIX}/projects/{self.project}/zones/{self.zone}",
            "targetSize": self.target_size,
            "currentActions": {"none": min(self.running, self.target_size), "creating": max(moving, 0),
                               "deleting": max(-moving, 0), "recreating": 0, "restarting": 0, "abandoning": 0},
            "status": {"isStable": moving == 0},
            "selfLink": self.url,
        }

    @property
    def url(self) -> str:
        return f"{GCE_PREFIX}/projects/{self.project}/zones/{self.zone}/instanceGroupManagers/{self.name}"

    def set_size(self, size: int) -> None:
        self.target_size = self.running = size


@dataclass
class FakeNodePool:
    """A GKE node pool: one instance group per zone; `status` and `max_total` (autoscaling bound) settable."""

    name: str
    migs: list[FakeMig]
    status: str = "RUNNING"
    max_total: int | None = None

    def resource(self) -> dict:
        autoscaling = {"enabled": True, "totalMaxNodeCount": self.max_total} if self.max_total is not None else {}
        return {"name": self.name, "status": self.status, "locations": [m.zone for m in self.migs],
                "instanceGroupUrls": [m.url for m in self.migs], "autoscaling": autoscaling,
                "initialNodeCount": 0, "config": {"machineType": "a3-highgpu-8g"}}


class FakeGoogleCloud(FakeCloudApi):
    """GKE node pools and their zonal instance groups (see module docstring)."""

    def __init__(self, project: str = "fake-project", *, operation_s: float = 0.05) -> None:
        super().__init__()
        self.project = project
        self.operations = FakeOperations(operation_s)
        self.node_pools: dict[tuple[str, str, str], FakeNodePool] = {}
        self.migs: dict[tuple[str, str], FakeMig] = {}

    def add_mig(self, zone: str, name: str, size: int = 0) -> FakeMig:
        mig = FakeMig(self.project, zone, name, size, size)
        self.migs[(zone, name)] = mig
        return mig

    def add_node_pool(self, location: str, cluster: str, name: str, zones: list[str], per_zone: int = 0,
                      max_total: int | None = None) -> FakeNodePool:
        migs = [self.add_mig(zone, f"gke-{cluster}-{name}-{i:08x}-grp", per_zone) for i, zone in enumerate(zones)]
        pool = FakeNodePool(name, migs, max_total=max_total)
        self.node_pools[(location, cluster, name)] = pool
        return pool

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.operations.advance()
            for pattern, method in ((_NODE_POOL, self._node_pool), (_GKE_OPERATION, self._gke_operation),
                                    (_MIG, self._mig), (_ZONE_OPERATION, self._zone_operation)):
                if match := pattern.match(request.path):
                    return method(request, match)
        return _not_found(f"no route {request.method} {request.path}")

    def _node_pool(self, request: Request, match: re.Match) -> Response:
        pool = self.node_pools.get((match["l"], match["c"], match["n"]))
        if pool is None:
            return _not_found(f"Not found: {request.path}.")
        if match["verb"] is None:
            return json_response(pool.resource())
        per_zone = int(request.get_json().get("nodeCount", 0))  # proto3 JSON leaves out a count of 0
        pool.status = "RECONCILING"

        def apply() -> None:
            for mig in pool.migs:
                mig.set_size(per_zone)
            pool.status = "RUNNING"

        operation = self.operations.start(apply, on_failed=lambda: setattr(pool, "status", "RUNNING"))
        return json_response(self._gke_operation_body(match["p"], match["l"], operation))

    def _gke_operation(self, request: Request, match: re.Match) -> Response:
        operation = self.operations.started.get(match["o"])
        if operation is None:
            return _not_found(f"Operation {match['o']} not found.")
        return json_response(self._gke_operation_body(match["p"], match["l"], operation))

    def _mig(self, request: Request, match: re.Match) -> Response:
        mig = self.migs.get((match["z"], match["m"]))
        if mig is None:
            return _not_found(f"The resource '{request.path}' was not found")
        if match["verb"] is None:
            return json_response(mig.resource())
        size = int(request.args["size"])
        operation = self.operations.start(lambda: mig.set_size(size))
        return json_response(_zone_operation_body(match["p"], match["z"], operation))

    def _zone_operation(self, request: Request, match: re.Match) -> Response:
        operation = self.operations.started.get(match["o"])
        if operation is None:
            return _not_found(f"The resource 'operations/{match['o']}' was not found")
        return json_response(_zone_operation_body(match["p"], match["z"], operation))

    @staticmethod
    def _gke_operation_body(project: str, location: str, operation: FakeOperation) -> dict:
        body = {"name": operation.id, "operationType": "SET_NODE_POOL_SIZE",
                "status": "DONE" if operation.done else "RUNNING",
                "selfLink": f"https://container.googleapis.com/v1/projects/{project}/locations/{location}"
                            f"/operations/{operation.id}"}
        if operation.done and operation.error is not None:
            body["error"] = operation.error  # google.rpc.Status: {"code": 8, "message": ...}
        return body


def _zone_operation_body(project: str, zone: str, operation: FakeOperation) -> dict:
    body = {"kind": "compute#operation", "id": str(abs(hash(operation.id))), "name": operation.id,
            "zone": f"{GCE_PREFIX}/projects/{project}/zones/{zone}",
            "operationType": "compute.instanceGroupManagers.resize",
            "status": "DONE" if operation.done else "RUNNING", "progress": 100 if operation.done else 0}
    if operation.done and operation.error is not None:
        body["error"] = {"errors": [operation.error]}  # {"code": "QUOTA_EXCEEDED", "message": ...}
        body["httpErrorStatusCode"] = 403
    return body


def _not_found(message: str) -> Response:
    return json_response(error_body(404, "NOT_FOUND", message), 404)
