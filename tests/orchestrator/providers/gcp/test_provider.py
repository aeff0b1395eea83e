"""GCP node pools through the real google-cloud-container and -compute clients against a local fake."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.errors import (
    CapacityUnavailable, CredentialsInvalid, PoolNotFound, ProviderUnavailable, QuotaExceeded,
)
from orchestrator.providers.gcp.provider import GkeNodePools, ManagedInstanceGroups
from orchestrator.providers.nodepools import scaler_for
from orchestrator.settings import Settings
from orchestrator.spec import Pool
from tests.fakes.gcp_billing import error_body
from tests.fakes.gcp_fake import FakeGoogleCloud

REGION = "us-central1"
ZONES = ["us-central1-a", "us-central1-b", "us-central1-c"]


@dataclass
class Gcp:
    fake: FakeGoogleCloud
    settings: Settings


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeGoogleCloud, str]]:
    fake = FakeGoogleCloud()
    with fake.serve() as url:
        yield fake, url


@pytest.fixture
def gcp(server: tuple[FakeGoogleCloud, str], faults) -> Gcp:
    fake, url = server
    fake.reset()
    fake.node_pools.clear()
    fake.migs.clear()
    settings = Settings(gcp_project=fake.project, gcp_container_endpoint=url, gcp_compute_endpoint=url,
                        provider_call_timeout_s=faults.call_timeout_s, provider_poll_s=0.01)
    return Gcp(fake, settings)


def gke_pool(max_nodes: int = 8) -> Pool:
    return Pool(name="gpu", provider="gcp", region=REGION, instance_type="a3-highgpu-8g", max_nodes=max_nodes,
                cluster="gke")


def mig_pool() -> Pool:
    return Pool(name="plain", provider="gcp", region=REGION, zone=ZONES[0], max_nodes=8)


def sizes(fake: FakeGoogleCloud) -> list[int]:
    return [m.target_size for m in fake.node_pools[(REGION, "gke", "gpu")].migs]


def test_scaler_for_picks_gke_with_a_cluster_and_instance_groups_without(gcp: Gcp) -> None:
    assert isinstance(scaler_for(gke_pool(), gcp.settings), GkeNodePools)
    assert isinstance(scaler_for(mig_pool(), gcp.settings), ManagedInstanceGroups)


def test_gke_resize_waits_on_the_operation_then_is_a_no_op(gcp: Gcp, backoff, settle) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES[:1], per_zone=1)
    scaler = GkeNodePools(gcp.settings, backoff)
    assert settle(lambda: scaler.resize(gke_pool(), 3)) >= 1  # the operation takes a while
    assert sizes(gcp.fake) == [3]
    scaler.resize(gke_pool(), 3)
    assert gcp.fake.count("POST", ":setSize") == 1
    observed = scaler.observe(gke_pool())
    assert (observed.nodes, observed.healthy_nodes) == (3, 3)


def test_gke_sizes_per_zone_when_the_total_splits_evenly(gcp: Gcp, backoff, settle) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES, per_zone=1)
    scaler = GkeNodePools(gcp.settings, backoff)
    settle(lambda: scaler.resize(gke_pool(), 6))
    assert sizes(gcp.fake) == [2, 2, 2]
    assert gcp.fake.count("POST", "/resize") == 0


def test_gke_shrinks_a_pool_to_zero(gcp: Gcp, backoff, settle) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES, per_zone=1)
    scaler = GkeNodePools(gcp.settings, backoff)
    settle(lambda: scaler.resize(gke_pool(), 0))  # the SDK sends no nodeCount for 0 (proto3 JSON)
    assert sizes(gcp.fake) == [0, 0, 0]


def test_gke_resizes_each_zones_group_when_the_total_does_not_split(gcp: Gcp, backoff, settle) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES, per_zone=2)
    scaler = GkeNodePools(gcp.settings, backoff)
    settle(lambda: scaler.resize(gke_pool(), 5))
    assert sizes(gcp.fake) == [2, 2, 1]
    assert (gcp.fake.count("POST", ":setSize"), gcp.fake.count("POST", "/resize")) == (0, 1)


def test_a_new_scaler_reads_a_resize_under_way_from_the_node_pool(gcp: Gcp, backoff, settle) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES[:1])
    with pytest.raises(Exception, match="resizing from 0 to 2"):
        GkeNodePools(gcp.settings, backoff).resize(gke_pool(), 2)
    settle(lambda: GkeNodePools(gcp.settings, backoff).resize(gke_pool(), 2))  # RECONCILING, then done
    assert gcp.fake.count("POST", ":setSize") == 1


def test_gke_never_asks_beyond_the_autoscaling_max(gcp: Gcp, backoff) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES[:1], max_total=2)
    with pytest.raises(QuotaExceeded, match="maximum of 2"):
        GkeNodePools(gcp.settings, backoff).resize(gke_pool(max_nodes=8), 3)
    assert gcp.fake.count("POST") == 0


def test_gke_refuses_to_resize_a_pool_its_cluster_autoscaler_also_sizes(gcp: Gcp, backoff) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES[:1], max_total=4)
    with pytest.raises(ProviderError, match="cluster autoscaler is on .* --no-enable-autoscaling"):
        GkeNodePools(gcp.settings, backoff).resize(gke_pool(max_nodes=4), 2)
    assert gcp.fake.count("POST") == 0
    assert GkeNodePools(gcp.settings, backoff).observe(gke_pool()).nodes == 0  # observing it is fine


@pytest.mark.parametrize("error,raised", [
    ({"code": 8, "message": 'Insufficient regional quota to satisfy request: resource "NVIDIA_H100_GPUS"'}, QuotaExceeded),
    ({"code": 8, "message": "ZONE_RESOURCE_POOL_EXHAUSTED: The zone does not have enough resources"}, CapacityUnavailable),
])
def test_a_failed_gke_operation_is_a_typed_error(gcp: Gcp, backoff, settle, error, raised) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES[:1])
    gcp.fake.operations.fail_next(error)
    scaler = GkeNodePools(gcp.settings, backoff)
    with pytest.raises(raised):
        settle(lambda: scaler.resize(gke_pool(), 2))
    assert sizes(gcp.fake) == [0]


@pytest.mark.parametrize("error,raised", [
    ({"code": "QUOTA_EXCEEDED", "message": "Quota 'NVIDIA_H100_GPUS' exceeded. Limit: 8.0 in region us-central1."},
     QuotaExceeded),
    ({"code": "ZONE_RESOURCE_POOL_EXHAUSTED", "message": "The zone does not have enough resources available."},
     CapacityUnavailable),
])
def test_a_failed_instance_group_resize_is_a_typed_error(gcp: Gcp, backoff, settle, error, raised) -> None:
    gcp.fake.add_mig(ZONES[0], "plain")
    gcp.fake.operations.fail_next(error)
    scaler = ManagedInstanceGroups(gcp.settings, backoff)
    with pytest.raises(raised):
        settle(lambda: scaler.resize(mig_pool(), 2))


def test_instance_group_resize_and_observe(gcp: Gcp, backoff, settle) -> None:
    gcp.fake.add_mig(ZONES[0], "plain", 1)
    scaler = ManagedInstanceGroups(gcp.settings, backoff)
    settle(lambda: scaler.resize(mig_pool(), 4))
    observed = scaler.observe(mig_pool())
    assert (observed.nodes, observed.healthy_nodes) == (4, 4)


def test_an_instance_group_pool_needs_a_zone(gcp: Gcp, backoff) -> None:
    with pytest.raises(InputError, match="needs a zone"):
        ManagedInstanceGroups(gcp.settings, backoff).observe(Pool(name="plain", provider="gcp", region=REGION, max_nodes=2))


def test_the_project_must_be_set(gcp: Gcp, backoff) -> None:
    settings = gcp.settings.model_copy(update={"gcp_project": None})
    with pytest.raises(InputError, match="GPUFLEET_GCP_PROJECT"):
        GkeNodePools(settings, backoff).observe(gke_pool())


GKE_CALLS = [("GET", "/nodePools/gpu"), ("GET", "/instanceGroupManagers/"), ("POST", ":setSize"),
             ("GET", "/operations/")]


def error(fault: str, path: str) -> tuple[int, object, str]:
    """Throttling (a rate quota, as Google words it) or a 503, in Google's JSON error shape."""
    if fault == "5xx":
        return 503, error_body(503, "UNAVAILABLE", "The service is currently unavailable."), "application/json"
    body = error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Read requests' and limit "
                      "'Read requests per minute' of service 'container.googleapis.com'")
    body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                                 "domain": "googleapis.com"}]
    return 429, body, "application/json"


@pytest.mark.parametrize("fault,times", [("throttling", 2), ("5xx", 2), ("timeout", 1)])
@pytest.mark.parametrize("method,path", GKE_CALLS)
def test_every_call_is_retried_with_backoff(gcp: Gcp, backoff, faults, settle, fault, times, method, path) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES[:1])
    faults.inject(gcp.fake, fault, method, path, times, error)
    scaler = GkeNodePools(faults.settings(gcp.settings, fault), backoff)
    settle(lambda: scaler.resize(gke_pool(), 2))
    assert sizes(gcp.fake) == [2]
    faults.assert_retried(fault, times)


@pytest.mark.parametrize("method,path", [("GET", "/instanceGroupManagers/"), ("POST", "/resize"), ("GET", "/operations/")])
def test_instance_group_calls_are_retried_too(gcp: Gcp, backoff, faults, settle, method, path) -> None:
    gcp.fake.add_mig(ZONES[0], "plain")
    faults.inject(gcp.fake, "5xx", method, path, 2, error)
    scaler = ManagedInstanceGroups(gcp.settings, backoff)
    settle(lambda: scaler.resize(mig_pool(), 2))
    faults.assert_retried("5xx", 2)


def test_retries_give_up_after_the_last_attempt(gcp: Gcp, backoff, sleeps, faults) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES[:1])
    faults.inject(gcp.fake, "5xx", "GET", "/nodePools/gpu", 4, error)
    with pytest.raises(ProviderUnavailable, match="status 503"):
        GkeNodePools(gcp.settings, backoff).observe(gke_pool())
    assert sleeps == [0.01, 0.02, 0.04]


@pytest.mark.parametrize("status,reason,raised", [
    (403, "PERMISSION_DENIED", CredentialsInvalid),
    (403, "FORBIDDEN", QuotaExceeded),  # GKE's "Insufficient regional quota" answer
    (404, "NOT_FOUND", PoolNotFound),
])
def test_errors_are_typed_and_not_retried(gcp: Gcp, backoff, sleeps, status, reason, raised) -> None:
    gcp.fake.add_node_pool(REGION, "gke", "gpu", ZONES[:1])
    message = ("Insufficient regional quota to satisfy request: resource \"NVIDIA_H100_GPUS\""
               if raised is QuotaExceeded else "no")
    gcp.fake.fail_next(status, error_body(status, reason, message), method="POST", path=":setSize")
    with pytest.raises(raised) as caught:
        GkeNodePools(gcp.settings, backoff).resize(gke_pool(), 2)
    assert caught.value.__cause__ is not None
    assert sleeps == []
