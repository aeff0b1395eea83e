"""Cloud API calls per rebalance step for a 500-pool fleet, counted by the local fakes.

    python -m bench.bench_providers

A rebalance observes every pool, resizes those whose size changes and polls them until the
clouds are done; provider APIs throttle per account, so the calls a step makes per pool
are what decides how large a fleet one rebalance can move. For each kind of pool, 500 pools
on the tests' fakes (moto's server app for AWS, the GKE/Compute, Resource Manager and
Kubernetes fakes) go through: observe all; resize all from 1 to 2 nodes until done
(operations finish at once, so polls are the fewest a real cloud needs); resize again (a
no-op); and, for Kubernetes, ScaleUp of one replica per pool until ready, then observe.
Each line: requests the fake received per pool, the documented minimum for that step
(the calls that carry the information, no retries), their ratio, and the wall time for
the 500 pools, one call after another. That time is mostly the fakes', which run in this
process and close every connection (werkzeug), so each Azure call pays a TLS handshake:
read it as an upper bound of the client's own cost, not as cloud latency. Every call goes
to 127.0.0.1.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.providers.base import ReplicaSpec, ScaleUp, StepPending
from orchestrator.providers.kubernetes import KubernetesDeployments
from orchestrator.providers.nodepools import NodePoolScaler, scaler_for
from orchestrator.settings import Settings
from orchestrator.spec import Pool
from tests.fakes.aws_fake import FakeAwsFront
from tests.fakes.azure_fake import FakeResourceManager
from tests.fakes.cloud_fake import FakeCloudApi, self_signed_tls
from tests.fakes.gcp_fake import FakeGoogleCloud
from tests.fakes.kubernetes_fake import FakeKubernetesApi

POOLS = 500
POOLS_PER_CLUSTER = 25  # within EKS's default 30 managed node groups and AKS's 100 agent pools per cluster
FAST = {"provider_poll_s": 0.001, "provider_call_timeout_s": 30.0}


@dataclass(frozen=True)
class Minimum:
    """The fewest calls per pool each step needs, from the APIs' documented shape."""

    observe: float
    resize: float
    noop: float


@dataclass
class Fleet:
    """One kind of pool, `POOLS` of them on a fake, and the scaler that drives them."""

    name: str
    fake: FakeCloudApi
    pools: list[Pool]
    scaler: NodePoolScaler
    minimum: Minimum
    nodes: tuple[int, int] = (1, 2)  # each pool's size before, and the size it is resized to


def settle_all(steps: list[Callable[[], None]]) -> None:
    """Call every pending step in rounds, as rebalance does, until none is pending."""
    while steps:
        pending = []
        for step in steps:
            try:
                step()
            except StepPending:
                pending.append(step)
        steps = pending


def measure(fake: FakeCloudApi, name: str, minimum: float, run: Callable[[], None]) -> None:
    before = len(fake.requests)
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    per_pool = (len(fake.requests) - before) / POOLS
    print(f"{name:<56} {per_pool:6.2f} calls/pool   minimum {minimum:5.2f}   ratio {per_pool / minimum:5.2f}"
          f"   {seconds:6.2f} s / {POOLS} pools")


def run_fleet(fleet: Fleet) -> None:
    measure(fleet.fake, f"{fleet.name}: observe", fleet.minimum.observe,
            lambda: [fleet.scaler.observe(p) for p in fleet.pools])
    before, after = fleet.nodes
    measure(fleet.fake, f"{fleet.name}: resize {before} -> {after} until done", fleet.minimum.resize,
            lambda: settle_all([lambda p=p: fleet.scaler.resize(p, after) for p in fleet.pools]))
    measure(fleet.fake, f"{fleet.name}: resize again (no-op)", fleet.minimum.noop,
            lambda: [fleet.scaler.resize(p, after) for p in fleet.pools])


def aws_fleets(url: str, fake: FakeAwsFront) -> Iterator[Fleet]:
    import boto3

    session = boto3.session.Session()
    eks = session.client("eks", region_name="us-east-1", endpoint_url=url)
    autoscaling = session.client("autoscaling", region_name="us-east-1", endpoint_url=url)
    session.client("ec2", region_name="us-east-1", endpoint_url=url).create_launch_template(
        LaunchTemplateName="bench", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "p5.48xlarge"})

    def group(name: str) -> None:
        autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": "bench"},
                                              MinSize=0, MaxSize=4, DesiredCapacity=1, AvailabilityZones=["us-east-1a"])

    pools = []
    for i in range(POOLS):
        cluster = f"eks-{i // POOLS_PER_CLUSTER}"
        if i % POOLS_PER_CLUSTER == 0:
            eks.create_cluster(name=cluster, roleArn="arn:aws:iam::123456789012:role/eks",
                               resourcesVpcConfig={"subnetIds": []})
        nodegroup = eks.create_nodegroup(clusterName=cluster, nodegroupName=f"eks-{i}", subnets=["subnet-1"],
                                         nodeRole="arn:aws:iam::123456789012:role/node",
                                         scalingConfig={"minSize": 0, "maxSize": 4, "desiredSize": 1})["nodegroup"]
        group(nodegroup["resources"]["autoScalingGroups"][0]["name"])
        pools.append(Pool(name=f"eks-{i}", provider="aws", region="us-east-1", max_nodes=4, cluster=cluster))
    settings = Settings(aws_endpoint_url=url, **FAST)
    yield Fleet("aws EKS node group", fake, pools, scaler_for(pools[0], settings), Minimum(2, 3, 2))
    for i in range(POOLS):
        group(f"asg-{i}")
    pools = [Pool(name=f"asg-{i}", provider="aws", region="us-east-1", max_nodes=4) for i in range(POOLS)]
    yield Fleet("aws Auto Scaling group", fake, pools, scaler_for(pools[0], settings), Minimum(1, 2, 1))


def gcp_fleets(url: str, fake: FakeGoogleCloud) -> Iterator[Fleet]:
    settings = Settings(gcp_project=fake.project, gcp_container_endpoint=url, gcp_compute_endpoint=url, **FAST)
    zones = ["us-central1-a", "us-central1-b", "us-central1-c"]
    # read (node pool + a group per zone), setSize or one zone's group resize, its operation, read again
    for label, spread, minimum, nodes in (("1 zone", zones[:1], Minimum(2, 6, 2), (1, 2)),
                                          ("3 zones, uneven", zones, Minimum(4, 10, 4), (3, 4))):
        cluster = f"gke-{len(spread)}"
        for i in range(POOLS):
            fake.add_node_pool("us-central1", cluster, f"p{i}", spread, per_zone=1)
        pools = [Pool(name=f"p{i}", provider="gcp", region="us-central1", max_nodes=8, cluster=cluster)
                 for i in range(POOLS)]
        yield Fleet(f"gcp GKE node pool, {label}", fake, pools, scaler_for(pools[0], settings), minimum, nodes)
    for i in range(POOLS):
        fake.add_mig(zones[0], f"mig-{i}", 1)
    pools = [Pool(name=f"mig-{i}", provider="gcp", region="us-central1", zone=zones[0], max_nodes=8) for i in range(POOLS)]
    yield Fleet("gcp managed instance group", fake, pools, scaler_for(pools[0], settings), Minimum(1, 4, 1))


def azure_fleets(url: str, fake: FakeResourceManager) -> Iterator[Fleet]:
    settings = Settings(azure_subscription_id=fake.subscription, azure_arm_endpoint=url, azure_access_token="bench", **FAST)
    clusters = [f"aks-{i // POOLS_PER_CLUSTER}" for i in range(POOLS)]
    for i, cluster in enumerate(clusters):
        fake.add_agent_pool(f"rg-{cluster}", cluster, f"p{i}", 1)
    pools = [Pool(name=f"p{i}", provider="azure", region="westeurope", max_nodes=4, cluster=cluster)
             for i, cluster in enumerate(clusters)]
    # first observe: agent pool, cluster, scale-set list (both then cached), instance view;
    # resize: read (2), PUT, operation status, the poller's final GET, read (2)
    yield Fleet("azure AKS agent pool", fake, pools, scaler_for(pools[0], settings), Minimum(2 + 2 / POOLS_PER_CLUSTER, 7, 2))  # + a cluster read and scale-set list per cluster
    for i in range(POOLS):
        fake.add_scale_set("rg-vmss", f"vmss-{i}", 1)
    settings = settings.model_copy(update={"azure_resource_group": "rg-vmss"})
    pools = [Pool(name=f"vmss-{i}", provider="azure", region="westeurope", max_nodes=4) for i in range(POOLS)]
    yield Fleet("azure VM scale set", fake, pools, scaler_for(pools[0], settings), Minimum(2, 7, 2))


def kubernetes(url: str, fake: FakeKubernetesApi, directory: Path) -> None:
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "bench",
        "clusters": [{"name": "fake", "cluster": {"server": url}}], "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "bench", "context": {"cluster": "fake", "user": "u"}}]}))
    settings = Settings(kubeconfig=kubeconfig, kubernetes_image="registry.example/vllm@sha256:" + "ab" * 32, **FAST)
    pools = [Pool(name=f"k{i}", provider="onprem", region="dc", gpu="A100", gpus_per_node=8, max_nodes=4, cluster="bench")
             for i in range(POOLS)]
    deployments = KubernetesDeployments(pools, settings)
    replica = ReplicaSpec(source="hf:model", served_name="model")
    # ScaleUp to ready: read, create namespace, Service and Deployment, read (ready), for a replica ready by the second look
    measure(fake, "kubernetes Deployment: ScaleUp 1 until ready", 5,
            lambda: settle_all([lambda p=p: deployments.apply(ScaleUp(model="model", pool=p.name, count=1, replica=replica))
                                for p in pools]))
    measure(fake, "kubernetes Deployment: ScaleUp again (no-op)", 1,
            lambda: [deployments.apply(ScaleUp(model="model", pool=p.name, count=1, replica=replica)) for p in pools])
    measure(fake, "kubernetes Deployment: observe (pods)", 1, deployments.observe)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def main() -> None:
    print(f"{POOLS} pools per kind; requests counted at the fakes (127.0.0.1)\n")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        tls, certificate = self_signed_tls(Path(tmp))
        stack.enter_context(environment({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                                         "AWS_SESSION_TOKEN": "bench", "REQUESTS_CA_BUNDLE": str(certificate)}))
        aws, gcp = FakeAwsFront(), FakeGoogleCloud(operation_s=0)
        azure, kube = FakeResourceManager(operation_s=0), FakeKubernetesApi(ready_delay_s=0.01, terminate_delay_s=0)
        for fleet in aws_fleets(stack.enter_context(aws.serve()), aws):
            run_fleet(fleet)
        for fleet in gcp_fleets(stack.enter_context(gcp.serve()), gcp):
            run_fleet(fleet)
        for fleet in azure_fleets(stack.enter_context(azure.serve(tls)), azure):
            run_fleet(fleet)
        kubernetes(stack.enter_context(kube.serve()), kube, Path(tmp))


if __name__ == "__main__":
    main()
