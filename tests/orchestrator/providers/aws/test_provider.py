"""AWS node pools through boto3 against moto's server app (behind a fault-injecting front)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from orchestrator.errors import InputError
from orchestrator.providers.aws.provider import AutoScalingGroups, EksNodeGroups, asg_state, nodegroup_state
from orchestrator.providers.errors import (
    CapacityUnavailable, CredentialsInvalid, PoolNotFound, ProviderUnavailable, QuotaExceeded,
)
from orchestrator.providers.nodepools import scaler_for
from orchestrator.settings import Settings
from orchestrator.spec import Pool
from tests.fakes.aws_fake import AUTOSCALING_NS, AWS_CREDENTIALS, FakeAwsFront, query_error, rest_json_error, serving

REGION = "us-east-1"


@dataclass
class Aws:
    """moto's server and this test's names: a cluster and a plain group of their own (no reset between tests)."""

    fake: FakeAwsFront
    settings: Settings
    cluster: str
    plain: str
    eks: object
    autoscaling: object
    ec2: object

    def nodegroup(self, max_size: int = 4, desired: int = 1) -> str:
        """An EKS node group `gpu` and the Auto Scaling group EKS would make for it; returns the latter's name."""
        self.eks.create_cluster(name=self.cluster, roleArn="arn:aws:iam::123456789012:role/eks",
                                resourcesVpcConfig={"subnetIds": []})
        nodegroup = self.eks.create_nodegroup(
            clusterName=self.cluster, nodegroupName="gpu", nodeRole="arn:aws:iam::123456789012:role/node",
            subnets=["subnet-1"], scalingConfig={"minSize": 0, "maxSize": max_size, "desiredSize": desired})["nodegroup"]
        name = nodegroup["resources"]["autoScalingGroups"][0]["name"]
        self.group(name, max_size, desired)
        return name

    def group(self, name: str, max_size: int, desired: int) -> None:
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": "gpu-nodes"}, MinSize=0,
            MaxSize=max_size, DesiredCapacity=desired, AvailabilityZones=[f"{REGION}a"])

    def eks_pool(self, max_nodes: int = 4) -> Pool:
        return Pool(name="gpu", provider="aws", region=REGION, instance_type="p5.48xlarge", max_nodes=max_nodes,
                    cluster=self.cluster)

    def plain_pool(self) -> Pool:
        return Pool(name=self.plain, provider="aws", region=REGION, max_nodes=4)

    def desired(self) -> int:
        nodegroup = self.eks.describe_nodegroup(clusterName=self.cluster, nodegroupName="gpu")["nodegroup"]
        return nodegroup["scalingConfig"]["desiredSize"]


@pytest.fixture(scope="module")
def moto_server() -> Iterator[tuple[FakeAwsFront, str, dict]]:
    """One server, one launch template and one set of test clients for the module (moto and botocore load slowly)."""
    fake = FakeAwsFront()
    with serving(fake) as url:
        session = boto3.session.Session()
        clients = {name: session.client(name, region_name=REGION, endpoint_url=url) for name in ("eks", "autoscaling", "ec2")}
        clients["ec2"].create_launch_template(
            LaunchTemplateName="gpu-nodes", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "p5.48xlarge"})
        yield fake, url, clients


@pytest.fixture
def aws(moto_server: tuple[FakeAwsFront, str, dict], monkeypatch: pytest.MonkeyPatch, faults) -> Aws:
    fake, url, clients = moto_server
    for name, value in AWS_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    fake.reset()
    settings = Settings(aws_endpoint_url=url, provider_call_timeout_s=faults.call_timeout_s, provider_poll_s=0.01)
    test = next(_tests)
    return Aws(fake, settings, f"eks-{test}", f"plain-{test}", **clients)


_tests = itertools.count()


def test_scaler_for_picks_eks_with_a_cluster_and_auto_scaling_without(aws: Aws) -> None:
    assert isinstance(scaler_for(aws.eks_pool(), aws.settings), EksNodeGroups)
    assert isinstance(scaler_for(aws.plain_pool(), aws.settings), AutoScalingGroups)


def test_eks_resize_sets_the_desired_size_once(aws: Aws, backoff, caplog) -> None:
    aws.nodegroup()
    scaler = EksNodeGroups(aws.settings, backoff)
    with caplog.at_level(logging.INFO, logger="orchestrator.providers"):
        scaler.resize(aws.eks_pool(), 3)  # moto finishes the update at once
        scaler.resize(aws.eks_pool(), 3)
    assert aws.desired() == 3
    assert aws.fake.count("POST", "/update-config") == 1
    changes = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert changes == ["resize: provider=aws region=us-east-1 pool=gpu from 1 to 3 nodes"]


def test_eks_observe_reads_nodes_from_the_node_groups_auto_scaling_group(aws: Aws, backoff) -> None:
    aws.nodegroup(desired=2)
    observed = EksNodeGroups(aws.settings, backoff).observe(aws.eks_pool())
    assert (observed.pool, observed.nodes, observed.healthy_nodes) == ("gpu", 2, 2)


def test_eks_never_asks_beyond_the_node_groups_own_max(aws: Aws, backoff) -> None:
    aws.nodegroup(max_size=2)
    with pytest.raises(QuotaExceeded, match="beyond the group's own maximum of 2"):
        EksNodeGroups(aws.settings, backoff).resize(aws.eks_pool(max_nodes=4), 3)
    assert aws.fake.count("POST", "/update-config") == 0
    assert aws.desired() == 1


def test_never_asks_beyond_the_specs_max_nor_calls_aws(aws: Aws, backoff) -> None:
    with pytest.raises(InputError, match="outside the spec's bounds"):
        EksNodeGroups(aws.settings, backoff).resize(aws.eks_pool(max_nodes=4), 5)
    assert aws.fake.requests == []


def test_a_missing_node_group_is_pool_not_found(aws: Aws, backoff) -> None:
    with pytest.raises(PoolNotFound, match="To fix: deploy"):
        EksNodeGroups(aws.settings, backoff).observe(aws.eks_pool())


EKS_CALLS = [("GET", "/node-groups/gpu"), ("POST", "/DescribeAutoScalingGroups"), ("POST", "/update-config")]


def error(fault: str, path: str) -> tuple[int, object, str]:
    """Throttling or a 5xx in the shape of the call's service: query protocol (Auto Scaling) or rest-json (EKS)."""
    if path.startswith(("/Describe", "/Set")):
        status, code = {"throttling": (400, "Throttling"), "5xx": (503, "ServiceUnavailable")}[fault]
        return status, query_error(code, "Rate exceeded"), "text/xml"
    status, code = {"throttling": (429, "ThrottlingException"), "5xx": (503, "ServiceUnavailable")}[fault]
    return status, rest_json_error(code, "Rate exceeded"), "application/json"


@pytest.mark.parametrize("fault,times", [("throttling", 2), ("5xx", 2), ("timeout", 1)])
@pytest.mark.parametrize("method,path", EKS_CALLS)
def test_every_call_is_retried_with_backoff(aws: Aws, backoff, faults, fault, times, method, path) -> None:
    aws.nodegroup()
    faults.inject(aws.fake, fault, method, path, times, error)
    EksNodeGroups(faults.settings(aws.settings, fault), backoff).resize(aws.eks_pool(), 3)
    assert aws.desired() == 3
    faults.assert_retried(fault, times)


@pytest.mark.parametrize("method,path", EKS_CALLS)
def test_retries_give_up_after_the_last_attempt(aws: Aws, backoff, sleeps, faults, method, path) -> None:
    aws.nodegroup()
    faults.inject(aws.fake, "5xx", method, path, 4, error)
    with pytest.raises(ProviderUnavailable, match="ServiceUnavailable"):
        EksNodeGroups(aws.settings, backoff).resize(aws.eks_pool(), 3)
    assert sleeps == [0.01, 0.02, 0.04]


@pytest.mark.parametrize("code,error", [
    ("ResourceLimitExceededException", QuotaExceeded),
    ("InsufficientInstanceCapacity", CapacityUnavailable),
    ("UnrecognizedClientException", CredentialsInvalid),
])
def test_quota_capacity_and_credential_errors_are_typed_and_not_retried(aws: Aws, backoff, sleeps, code, error) -> None:
    aws.nodegroup()
    aws.fake.fail_next(403 if error is CredentialsInvalid else 400, rest_json_error(code, "no"),
                       method="POST", path="/update-config")
    with pytest.raises(error) as raised:
        EksNodeGroups(aws.settings, backoff).resize(aws.eks_pool(), 3)
    assert raised.value.__cause__ is not None  # raised from botocore's ClientError
    assert sleeps == []


def test_auto_scaling_group_is_sized_with_set_desired_capacity(aws: Aws, backoff) -> None:
    aws.group(aws.plain, max_size=3, desired=0)
    pool = aws.plain_pool()
    scaler = AutoScalingGroups(aws.settings, backoff)
    scaler.resize(pool, 2)
    scaler.resize(pool, 2)
    assert aws.fake.count("POST", "/SetDesiredCapacity") == 1
    observed = scaler.observe(pool)
    assert (observed.nodes, observed.healthy_nodes) == (2, 2)  # moto launches at once
    with pytest.raises(QuotaExceeded, match="maximum of 3"):
        scaler.resize(pool, 4)  # moto itself would accept it


def test_a_missing_auto_scaling_group_is_pool_not_found(aws: Aws, backoff) -> None:
    with pytest.raises(PoolNotFound, match=f"no Auto Scaling group named {aws.plain}"):
        AutoScalingGroups(aws.settings, backoff).observe(aws.plain_pool())


# What moto does not emulate, read from documented answers without AWS.

def _nodegroup(status: str = "ACTIVE", issues: list | None = None) -> dict:
    return {"status": status, "scalingConfig": {"minSize": 0, "maxSize": 4, "desiredSize": 3},
            "health": {"issues": issues or []}}


def _group(states: list[str]) -> dict:
    return {"DesiredCapacity": 3, "MinSize": 0, "MaxSize": 4,
            "Instances": [{"LifecycleState": s, "HealthStatus": "Healthy"} for s in states]}


def test_an_updating_node_group_is_busy() -> None:
    state = nodegroup_state(_nodegroup("UPDATING"), [_group(["InService", "Pending"])], "aws")
    assert (state.busy, state.nodes, state.healthy_nodes) == ("node group is UPDATING", 2, 1)


@pytest.mark.parametrize("issue,error", [
    ({"code": "AsgInstanceLaunchFailures", "message": "Could not launch On-Demand Instances. InsufficientInstanceCapacity"},
     CapacityUnavailable),
    ({"code": "InstanceLimitExceeded", "message": "You've reached your quota for maximum running instances"},
     QuotaExceeded),
    ({"code": "NodeCreationFailure", "message": "Instances failed to join the kubernetes cluster"}, None),
])
def test_node_group_health_issues_become_typed_failures(issue, error) -> None:
    failure = nodegroup_state(_nodegroup(issues=[issue]), [_group(["InService"])], "aws").failure
    assert type(failure) is error if error else failure is None


def test_a_failed_scaling_activity_becomes_a_typed_failure() -> None:
    activity = {"StatusCode": "Failed", "StatusMessage": "You have requested more vCPU capacity than your current "
                "vCPU limit of 32 allows. Launching EC2 instance failed. VcpuLimitExceeded"}
    assert isinstance(asg_state(_group(["InService"]), [activity], "aws").failure, QuotaExceeded)


def test_resize_raises_the_failure_of_a_group_that_cannot_reach_its_size(aws: Aws, backoff) -> None:
    aws.group(aws.plain, max_size=4, desired=0)
    pool = aws.plain_pool()
    scaler = AutoScalingGroups(aws.settings, backoff)
    scaler.resize(pool, 2)
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[aws.plain])["AutoScalingGroups"][0]
    instance = group["Instances"][0]
    aws.autoscaling.set_instance_health(InstanceId=instance["InstanceId"], HealthStatus="Unhealthy")
    message = ("We currently do not have sufficient p5.48xlarge capacity in the Availability Zone you requested. "
               "Launching EC2 instance failed. InsufficientInstanceCapacity")
    aws.fake.fail_next(200, scaling_activities("Failed", message), content_type="text/xml",
                       path="/DescribeScalingActivities")  # moto reports no activities
    with pytest.raises(CapacityUnavailable, match="sufficient p5.48xlarge capacity"):
        scaler.resize(pool, 2)


def scaling_activities(status: str, message: str) -> str:
    """A DescribeScalingActivities answer with one activity."""
    return (f'<DescribeScalingActivitiesResponse xmlns="{AUTOSCALING_NS}"><DescribeScalingActivitiesResult>'
            "<Activities><member><ActivityId>a-1</ActivityId><AutoScalingGroupName>plain</AutoScalingGroupName>"
            "<Cause>desired capacity changed</Cause><StartTime>2026-11-23T12:00:00Z</StartTime>"
            f"<StatusCode>{status}</StatusCode><StatusMessage>{message}</StatusMessage><Progress>100</Progress>"
            "</member></Activities></DescribeScalingActivitiesResult>"
            "<ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>")
