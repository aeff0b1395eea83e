"""AWS node pools: an EKS managed node group per pool with a cluster, else an Auto Scaling group.

EKS sizes a node group through `update_nodegroup_config` (desired size only; its min and
max belong to the stacks) and reports no nodes itself: they are read from the node
group's Auto Scaling groups. While an update runs the node group is UPDATING; a failed
scale-up shows as the node group's health issues or, for a plain group, as a failed
scaling activity, read into `QuotaExceeded`/`CapacityUnavailable`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.errors import ProviderError
from orchestrator.providers.aws.api import client, session, translate_errors
from orchestrator.providers.errors import CapacityUnavailable, PoolNotFound, QuotaExceeded, classify
from orchestrator.providers.nodepools import GroupScaler, GroupState
from orchestrator.providers.retry import Backoff
from orchestrator.settings import Settings
from orchestrator.spec import Pool

_EKS_BUSY = {"CREATING", "UPDATING", "DELETING"}
_GONE = {"Terminated", "Terminating", "Terminating:Wait", "Terminating:Proceed", "Detached"}


def asg_counts(groups: list[dict]) -> tuple[int, int]:
    """(instances present, instances in service and healthy) over Auto Scaling groups."""
    instances = [i for group in groups for i in group.get("Instances", []) if i["LifecycleState"] not in _GONE]
    healthy = [i for i in instances if i["LifecycleState"] == "InService" and i.get("HealthStatus") == "Healthy"]
    return len(instances), len(healthy)


def typed_failure(code: str | None, message: str, where: str) -> ProviderError | None:
    """A quota or capacity error a group reports about itself, or None for any other issue."""
    error = classify(None, code, message, where=where)
    return error if isinstance(error, (QuotaExceeded, CapacityUnavailable)) else None


def nodegroup_state(nodegroup: dict, groups: list[dict], where: str) -> GroupState:
    """A `describe_nodegroup` answer and its Auto Scaling groups as a GroupState."""
    scaling = nodegroup["scalingConfig"]
    nodes, healthy = asg_counts(groups)
    issues = nodegroup.get("health", {}).get("issues", [])
    failures = [f for issue in issues if (f := typed_failure(issue.get("code"), issue.get("message", ""), where))]
    status = nodegroup["status"]
    return GroupState(
        target=scaling["desiredSize"], nodes=nodes, healthy_nodes=healthy,
        max_size=scaling.get("maxSize"), min_size=scaling.get("minSize", 0),
        busy=f"node group is {status}" if status in _EKS_BUSY else None,
        failure=failures[0] if failures else None,
    )


def asg_state(group: dict, activities: list[dict], where: str) -> GroupState:
    """A `describe_auto_scaling_groups` entry, and its latest scaling activities, as a GroupState."""
    nodes, healthy = asg_counts([group])
    failed = [a for a in activities if a.get("StatusCode") in ("Failed", "Cancelled")]
    return GroupState(
        target=group["DesiredCapacity"], nodes=nodes, healthy_nodes=healthy,
        max_size=group["MaxSize"], min_size=group["MinSize"],
        failure=typed_failure(None, failed[0].get("StatusMessage", ""), where) if failed else None,
    )


class _AwsScaler(GroupScaler):
    provider: ClassVar[str] = "aws"

    def __init__(self, settings: Settings, backoff: Backoff | None = None) -> None:
        super().__init__(settings, backoff, translate_errors)
        self._session: Any = None
        self._clients: dict[tuple[str, str], Any] = {}

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._session = self._session or session()
            self._clients[key] = client(self._session, self.settings, service, region)
        return self._clients[key]

    def _groups(self, pool: Pool, names: list[str]) -> list[dict]:
        if not names:
            return []
        autoscaling = self._client("autoscaling", pool.region)
        answer = self._call(pool, "describe_auto_scaling_groups", autoscaling.describe_auto_scaling_groups,
                            AutoScalingGroupNames=names)
        return answer["AutoScalingGroups"]


class EksNodeGroups(_AwsScaler):
    """EKS managed node groups named after their pools, in the pool's `cluster` and region."""

    def _read(self, pool: Pool) -> GroupState:
        eks = self._client("eks", pool.region)
        nodegroup = self._call(pool, "describe_nodegroup", eks.describe_nodegroup,
                               clusterName=pool.cluster, nodegroupName=pool.name)["nodegroup"]
        names = [group["name"] for group in nodegroup.get("resources", {}).get("autoScalingGroups", [])]
        return nodegroup_state(nodegroup, self._groups(pool, names), self.where(pool))

    def _request(self, pool: Pool, state: GroupState, nodes: int) -> str | None:
        eks = self._client("eks", pool.region)
        update = self._call(pool, "update_nodegroup_config", eks.update_nodegroup_config,
                            clusterName=pool.cluster, nodegroupName=pool.name,
                            scalingConfig={"desiredSize": nodes})["update"]
        return None if update["status"] == "Successful" else update["id"]  # polled by the node group's status


class AutoScalingGroups(_AwsScaler):
    """Plain Auto Scaling groups named after their pools (pools without a cluster)."""

    def _read(self, pool: Pool) -> GroupState:
        groups = self._groups(pool, [pool.name])
        if not groups:
            raise PoolNotFound(f"{self.where(pool)}: no Auto Scaling group named {pool.name}. "
                               "To fix: create it, or name the pool's cluster to use its EKS node group")
        group = groups[0]
        activities: list[dict] = []
        _, healthy = asg_counts([group])
        if healthy < group["DesiredCapacity"]:
            autoscaling = self._client("autoscaling", pool.region)
            activities = self._call(pool, "describe_scaling_activities", autoscaling.describe_scaling_activities,
                                    AutoScalingGroupName=pool.name, MaxRecords=1)["Activities"]
        return asg_state(group, activities, self.where(pool))

    def _request(self, pool: Pool, state: GroupState, nodes: int) -> None:
        """Synchronous: the group's desired capacity is `nodes` when the call returns."""
        autoscaling = self._client("autoscaling", pool.region)
        self._call(pool, "set_desired_capacity", autoscaling.set_desired_capacity,
                   AutoScalingGroupName=pool.name, DesiredCapacity=nodes, HonorCooldown=False)
