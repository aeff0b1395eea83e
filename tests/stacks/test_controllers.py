"""One owner per node count: the stacks ignore exactly the fields rebalance writes, per provider.

Each cloud's scaler resizes a pool of `environments/hybrid.yaml`, set up in its fake as the
stack declares it (bounds, autoscaler on or off), up and down again; every request it sends
is recorded. The fields those requests change are mapped to the Terraform attributes they
land in and compared with the synthesized stack's `lifecycle.ignore_changes` for that pool,
which the Pulumi programs match (`tests/stacks/pulumi/test_parity.py`). A scaler that starts
writing another field, or a stack that stops ignoring one, fails here: the next deploy
after a rebalance would undo the rebalance.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from urllib.parse import unquote

import boto3
import pytest

from orchestrator.providers.base import StepPending
from orchestrator.providers.nodepools import scaler_for
from orchestrator.settings import Settings
from stacks.facts import aws_node_group, azure_node_pool, gcp_node_pool
from tests.fakes.aws_fake import FakeAwsFront, serving
from tests.fakes.azure_fake import FakeResourceManager
from tests.fakes.cloud_fake import FakeCloudApi, self_signed_tls
from tests.fakes.gcp_fake import FakeGoogleCloud

# (call, field written) -> the Terraform attribute it changes. A GKE node pool's node_count is
# read from its zones' instance groups, so resizing those (an uneven split) changes it too.
TERRAFORM = {
    "aws": {("UpdateNodegroupConfig", "scalingConfig.desiredSize"): "scaling_config[0].desired_size"},
    "gcp": {("nodePools.setSize", "nodeCount"): "node_count", ("instanceGroupManagers.resize", "size"): "node_count"},
    "azure": {("agentPools.createOrUpdate", "count"): "node_count", ("agentPools.createOrUpdate", "minCount"): "min_count"},
}
# ignored, though rebalance never writes it, and why
IGNORED_ANYWAY = {"gcp": {"initial_node_count": "changing it would recreate the pool"}}
SIZES = (2, 1, 0)  # up, down, to nothing: every kind of resize
POOLS = {"aws": "aws-use1-h100", "gcp": "gcp-usc1-h100", "azure": "az-weu-h100-spot"}
RESOURCES = {"aws": "aws_eks_node_group", "gcp": "google_container_node_pool", "azure": "azurerm_kubernetes_cluster_node_pool"}
IDENTIFIERS = {"clientRequestToken", "name", "projectId", "zone", "clusterId", "nodePoolId"}  # which, not what


def settle(step: Callable[[], None], tries: int = 200) -> None:
    for _ in range(tries):
        try:
            return step()
        except StepPending:
            time.sleep(0.01)
    raise TimeoutError("resize still pending")


def leaves(value: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(dotted path, value) of every scalar in a JSON body."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), value


def resize_all(fake: FakeCloudApi, pool, settings: Settings, before: Callable[[], dict] | None = None) -> list[tuple[str, str]]:
    """Resize through SIZES with a fresh scaler each time; the (call, field) pairs of every write sent.
    `before()` gives the resource as it is, for a PUT of the whole resource (changed fields count)."""
    written = []
    for nodes in SIZES:
        fake.reset()
        state = before() if before else {}
        scaler = scaler_for(pool, settings)
        settle(lambda: scaler.resize(pool, nodes))
        for request in fake.requests:
            if request.method == "GET" or "/operations/" in request.path or request.path.startswith("/Describe"):
                continue  # reads
            written += [(call, field) for call, field in writes(request, state)]
    return written


def writes(request, state: dict) -> list[tuple[str, str]]:
    path = unquote(request.path)
    body = json.loads(request.body) if request.body.strip() else {}
    if path.endswith("/update-config"):
        return [("UpdateNodegroupConfig", field) for field, _ in leaves(body) if field not in IDENTIFIERS]
    if path.endswith(":setSize"):
        return [("nodePools.setSize", field) for field, _ in leaves(body) if field not in IDENTIFIERS]
    if path.endswith("/resize"):
        return [("instanceGroupManagers.resize", field) for field in request.args]
    if "/agentPools/" in path and request.method == "PUT":
        old = dict(leaves(state.get("properties", {})))
        return [("agentPools.createOrUpdate", field) for field, value in leaves(body["properties"]) if old.get(field) != value]
    raise AssertionError(f"a write this test does not know: {request.method} {path}. To fix: map it in TERRAFORM")


def ignored(synthesized, provider: str, pool: str) -> set[str]:
    resources = synthesized.json(f"hybrid-{provider}")["resource"][RESOURCES[provider]]
    (resource,) = [r for name, r in resources.items() if name.startswith(f"{pool}_")]
    return set(resource["lifecycle"]["ignore_changes"])


def assert_ignored_exactly(synthesized, provider: str, written: list[tuple[str, str]]) -> None:
    unknown = sorted(set(written) - TERRAFORM[provider].keys())
    assert unknown == [], f"rebalance writes fields no stack ignores: {unknown}"
    fields = {TERRAFORM[provider][w] for w in written}
    assert fields | IGNORED_ANYWAY.get(provider, {}).keys() == ignored(synthesized, provider, POOLS[provider])


@pytest.fixture
def aws_front(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeAwsFront, str]]:
    fake = FakeAwsFront()
    with serving(fake) as url:
        yield fake, url


def test_a_deploy_after_rebalance_leaves_eks_node_groups_alone(synthesized, aws_front):
    fake, url = aws_front
    group = aws_node_group(synthesized.pools[POOLS["aws"]])
    eks = boto3.session.Session().client("eks", region_name=group.region, endpoint_url=url)
    eks.create_cluster(name=group.cluster, roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": []})
    eks.create_nodegroup(clusterName=group.cluster, nodegroupName=group.name, nodeRole="arn:aws:iam::123456789012:role/node",
                         subnets=["subnet-1"], scalingConfig={"minSize": group.sizing.min_nodes, "maxSize": group.sizing.max_nodes,
                                                              "desiredSize": group.sizing.initial})
    settings = Settings(aws_endpoint_url=url, provider_poll_s=0.01)
    written = resize_all(fake, group.pool.pool, settings)
    assert ("UpdateNodegroupConfig", "scalingConfig.desiredSize") in written
    assert_ignored_exactly(synthesized, "aws", written)


@pytest.mark.parametrize("regional", [False, True], ids=["one zone", "three zones"])
def test_a_deploy_after_rebalance_leaves_gke_node_pools_alone(synthesized, regional):
    facts = gcp_node_pool(synthesized.pools[POOLS["gcp"]])
    pool = facts.pool.pool.model_copy(update={"zone": None}) if regional else facts.pool.pool
    zones = [f"{pool.region}-{z}" for z in "abc"] if regional else list(facts.node_locations)
    fake = FakeGoogleCloud(operation_s=0.0)
    fake.add_node_pool(pool.region, facts.cluster, facts.name, zones, facts.sizing.initial)  # no autoscaler: as declared
    with fake.serve() as url:
        settings = Settings(gcp_project=fake.project, gcp_container_endpoint=url, gcp_compute_endpoint=url, provider_poll_s=0.01)
        written = resize_all(fake, pool, settings)
    # two nodes over three zones is an uneven split: each zone's instance group is resized
    expected = ("instanceGroupManagers.resize", "size") if regional else ("nodePools.setSize", "nodeCount")
    assert expected in written
    assert_ignored_exactly(synthesized, "gcp", written)


def test_a_deploy_after_rebalance_leaves_aks_node_pools_alone(synthesized, tmp_path, monkeypatch):
    facts = azure_node_pool(synthesized.pools[POOLS["azure"]])
    fake = FakeResourceManager(operation_s=0.0)
    agent_pool = fake.add_agent_pool(facts.resource_group, facts.cluster, facts.name, facts.sizing.initial,
                                     autoscaling=True, max_count=facts.sizing.max_nodes)  # the autoscaler on: as declared
    agent_pool.min_count = facts.sizing.min_nodes
    tls, certificate = self_signed_tls(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    path = (f"/subscriptions/{fake.subscription}/resourceGroups/{facts.resource_group}/providers/Microsoft.ContainerService"
            f"/managedClusters/{facts.cluster}/agentPools/{facts.name}")
    with fake.serve(tls) as url:
        settings = Settings(azure_subscription_id=fake.subscription, azure_arm_endpoint=url, azure_access_token="fake-token",
                            provider_poll_s=0.01)
        written = resize_all(fake, facts.pool.pool, settings, before=lambda: agent_pool.resource(path))
    assert {("agentPools.createOrUpdate", "count"), ("agentPools.createOrUpdate", "minCount")} <= set(written)
    assert agent_pool.max_count == facts.sizing.max_nodes  # the stack's bound, never written by rebalance
    assert_ignored_exactly(synthesized, "azure", written)
