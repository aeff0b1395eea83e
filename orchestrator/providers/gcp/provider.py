"""GCP node pools: a GKE node pool per pool with a cluster, else a zonal managed instance group.

A GKE node pool is one managed instance group per zone it spans, and GKE sizes it per
zone (`setSize` sets every zone's count). A total that splits evenly over the zones goes
through `setSize`; one that does not (5 nodes over 3 zones) resizes each zone's instance
group to its share (2, 2, 1), as GKE's own cluster autoscaler does. Sizes and health are
read from the instance groups, since a node pool reports neither. Both APIs answer with
an operation, polled with its client's `get` (prompt; `operation.result()` would ignore
a custom endpoint and block).

rebalance sizes a node pool only while GKE's cluster autoscaler is off for it (as the stacks
declare it): the autoscaler would remove nodes rebalance sized, down to its own minimum,
which `setSize` does not move. A pool with the autoscaler on is refused, naming the fix.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, NamedTuple

from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.errors import classify
from orchestrator.providers.gcp.api import compute_clients, container_client, project, translate_errors
from orchestrator.providers.nodepools import GroupScaler, GroupState, split_evenly
from orchestrator.providers.retry import Backoff
from orchestrator.settings import Settings
from orchestrator.spec import Pool

_MIG_URL = re.compile(r"/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/instanceGroupManagers/(?P<name>[^/]+)$")
_NODE_POOL_BUSY = {"PROVISIONING", "RECONCILING", "STOPPING"}


class Mig(NamedTuple):
    """One zone's managed instance group, as read."""

    zone: str
    name: str
    target_size: int
    nodes: int
    healthy_nodes: int


class GkeOperation(NamedTuple):
    name: str


class ZoneOperations(NamedTuple):
    names: tuple[tuple[str, str], ...]  # (zone, operation name)


def mig_from_url(url: str) -> tuple[str, str]:
    """(zone, name) of an instance group manager URL, as a GKE node pool lists them."""
    match = _MIG_URL.search(url)
    if match is None:
        raise ValueError(f"not a zonal instance group manager URL: {url}")
    return match["zone"], match["name"]


def mig_state(zone: str, manager: Any) -> Mig:
    """An InstanceGroupManager: every instance it manages counts as present, those with no action as healthy."""
    actions = {key: value for key, value in type(manager.current_actions).to_dict(manager.current_actions).items()
               if isinstance(value, int)}
    return Mig(zone, manager.name, manager.target_size, sum(actions.values()), actions.get("none", 0))


def node_pool_state(node_pool: Any, migs: list[Mig]) -> GroupState:
    """A GKE NodePool and its zones' instance groups as a GroupState."""
    status = type(node_pool).Status(node_pool.status).name
    autoscaling = node_pool.autoscaling
    max_size = None
    if autoscaling.enabled:
        max_size = autoscaling.total_max_node_count or (autoscaling.max_node_count * len(migs)) or None
    busy = f"node pool is {status}" if status in _NODE_POOL_BUSY else None
    return GroupState(
        target=sum(m.target_size for m in migs), nodes=sum(m.nodes for m in migs),
        healthy_nodes=sum(m.healthy_nodes for m in migs), max_size=max_size,
        busy=busy or (None if migs else "node pool has no instance groups yet"), parts=tuple(migs),
        autoscaled=bool(autoscaling.enabled),
    )


class _GoogleScaler(GroupScaler):
    provider: ClassVar[str] = "gcp"

    def __init__(self, settings: Settings, backoff: Backoff | None = None) -> None:
        super().__init__(settings, backoff, translate_errors)
        self._clients: dict[str, Any] = {}

    def _client(self, name: str) -> Any:
        """"container" (GKE), "managers" or "zone_operations" (Compute Engine), built on first use."""
        if name not in self._clients:
            if name == "container":
                self._clients[name] = container_client(self.settings)
            else:
                self._clients["managers"], self._clients["zone_operations"] = compute_clients(self.settings)
        return self._clients[name]

    def _sdk(self, pool: Pool, what: str, call: Any, **kwargs: Any) -> Any:
        """A google client call: no retry of its own, the settings' timeout."""
        return self._call(pool, what, call, retry=None, timeout=self.settings.provider_call_timeout_s, **kwargs)

    def _mig(self, pool: Pool, zone: str, name: str) -> Mig:
        manager = self._sdk(pool, "instanceGroupManagers.get", self._client("managers").get,
                            project=project(self.settings), zone=zone, instance_group_manager=name)
        return mig_state(zone, manager)

    def _resize_migs(self, pool: Pool, sizes: list[tuple[Mig, int]]) -> ZoneOperations:
        operations = []
        for mig, size in sizes:
            if mig.target_size != size:
                operation = self._sdk(pool, "instanceGroupManagers.resize", self._client("managers").resize,
                                      project=project(self.settings), zone=mig.zone,
                                      instance_group_manager=mig.name, size=size)
                operations.append((mig.zone, operation.name))
        return ZoneOperations(tuple(operations))

    def _poll(self, pool: Pool, handle: ZoneOperations) -> str | None:
        for zone, name in handle.names:
            operation = self._sdk(pool, "zoneOperations.get", self._client("zone_operations").get,
                                  project=project(self.settings), zone=zone, operation=name)
            if type(operation).Status(operation.status).name != "DONE":
                return f"resize of the instance group in {zone} is under way"
            if operation.error.errors:
                error = operation.error.errors[0]
                raise classify(operation.http_error_status_code or None, error.code, error.message,
                               where=self.where(pool))
        return None


class GkeNodePools(_GoogleScaler):
    """GKE node pools named after their pools, in the pool's `cluster` (regional: `region` is its location)."""

    def _name(self, pool: Pool) -> str:
        cluster = f"projects/{project(self.settings)}/locations/{pool.region}/clusters/{pool.cluster}"
        return f"{cluster}/nodePools/{pool.name}"

    def _read(self, pool: Pool) -> GroupState:
        node_pool = self._sdk(pool, "nodePools.get", self._client("container").get_node_pool, name=self._name(pool))
        migs = [self._mig(pool, *mig_from_url(url)) for url in node_pool.instance_group_urls]
        return node_pool_state(node_pool, migs)

    def _request(self, pool: Pool, state: GroupState, nodes: int) -> GkeOperation | ZoneOperations:
        if state.autoscaled:
            raise ProviderError(
                f"{self.where(pool)}: GKE's cluster autoscaler is on for this node pool, and it would undo the "
                f"resize to {nodes} nodes. To fix: deploy the environment's stacks (they leave it off), or "
                f"`gcloud container node-pools update {pool.name} --cluster {pool.cluster} --location {pool.region} "
                "--no-enable-autoscaling`")
        zones = len(state.parts)
        if nodes % zones == 0:
            operation = self._sdk(pool, "nodePools.setSize", self._client("container").set_node_pool_size,
                                  request={"name": self._name(pool), "node_count": nodes // zones})
            return GkeOperation(operation.name)
        return self._resize_migs(pool, list(zip(state.parts, split_evenly(nodes, zones))))

    def _poll(self, pool: Pool, handle: GkeOperation | ZoneOperations) -> str | None:
        if isinstance(handle, ZoneOperations):
            return super()._poll(pool, handle)
        name = f"projects/{project(self.settings)}/locations/{pool.region}/operations/{handle.name}"
        operation = self._sdk(pool, "operations.get", self._client("container").get_operation, name=name)
        if type(operation).Status(operation.status).name != "DONE":
            return f"GKE operation {handle.name} is under way"
        if operation.error.code:
            from google.rpc import code_pb2

            raise classify(None, code_pb2.Code.Name(operation.error.code), operation.error.message,
                           where=self.where(pool))
        return None


class ManagedInstanceGroups(_GoogleScaler):
    """Zonal managed instance groups named after their pools, in the pool's `zone` (pools without a cluster)."""

    def _read(self, pool: Pool) -> GroupState:
        if not pool.zone:
            raise InputError(f"{self.where(pool)}: a pool without a cluster is a zonal managed instance group, "
                             "so it needs a zone. To fix: set the pool's zone")
        mig = self._mig(pool, pool.zone, pool.name)
        return GroupState(target=mig.target_size, nodes=mig.nodes, healthy_nodes=mig.healthy_nodes, parts=(mig,))

    def _request(self, pool: Pool, state: GroupState, nodes: int) -> ZoneOperations:
        return self._resize_migs(pool, [(state.parts[0], nodes)])
