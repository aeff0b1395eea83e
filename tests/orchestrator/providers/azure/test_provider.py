"""Azure node pools through the real azure-mgmt clients against a local Resource Manager fake over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from orchestrator.errors import InputError
from orchestrator.providers.azure.provider import AksAgentPools, ScaleSets, aks_pool_name
from orchestrator.providers.errors import (
    CapacityUnavailable, CredentialsInvalid, PoolNotFound, ProviderUnavailable, QuotaExceeded,
)
from orchestrator.providers.nodepools import scaler_for
from orchestrator.settings import Settings
from orchestrator.spec import Pool
from tests.fakes.azure_fake import FakeResourceManager, arm_error
from tests.fakes.cloud_fake import self_signed_tls

GROUP = "rg-aks"  # the stacks' resource group of cluster "aks"


@dataclass
class Azure:
    fake: FakeResourceManager
    settings: Settings

    def agent_pool(self):
        return self.fake.agent_pools[(GROUP, "aks", "gpu")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeResourceManager, str, str]]:
    tls, certificate = self_signed_tls(tmp_path_factory.mktemp("tls"))
    fake = FakeResourceManager()
    with fake.serve(tls) as url:
        yield fake, url, str(certificate)


@pytest.fixture
def azure(server: tuple[FakeResourceManager, str, str], monkeypatch: pytest.MonkeyPatch, faults) -> Azure:
    fake, url, certificate = server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate)  # trust the fake's certificate, and only here
    fake.reset()
    fake.agent_pools.clear()
    fake.scale_sets.clear()
    fake.clusters.clear()
    settings = Settings(azure_subscription_id=fake.subscription, azure_arm_endpoint=url, azure_access_token="fake-token",
                        provider_call_timeout_s=faults.call_timeout_s, provider_poll_s=0.01)
    return Azure(fake, settings)


def aks_pool(max_nodes: int = 4, name: str = "gpu") -> Pool:
    return Pool(name=name, provider="azure", region="westeurope", instance_type="Standard_ND96isr_H100_v5",
                max_nodes=max_nodes, cluster="aks")


def vmss_pool() -> Pool:
    return Pool(name="plain", provider="azure", region="westeurope", max_nodes=4)


def test_scaler_for_picks_aks_with_a_cluster_and_scale_sets_without(azure: Azure) -> None:
    assert isinstance(scaler_for(aks_pool(), azure.settings), AksAgentPools)
    assert isinstance(scaler_for(vmss_pool(), azure.settings), ScaleSets)


def test_agent_pool_names_match_the_stacks() -> None:
    assert aks_pool_name("gpu") == "gpu"
    assert aks_pool_name("1-gpu") == "p1gpu"
    long = aks_pool_name("azure-weu-h100-spot")
    assert long.startswith("azureweu") and len(long) == 12 and long != aks_pool_name("azure-weu-h100-spot2")


def test_aks_resize_follows_the_async_operation_then_is_a_no_op(azure: Azure, backoff, settle) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 1)
    scaler = AksAgentPools(azure.settings, backoff)
    assert settle(lambda: scaler.resize(aks_pool(), 3)) >= 1
    assert azure.agent_pool().scale_set.capacity == 3
    scaler.resize(aks_pool(), 3)
    assert azure.fake.count("PUT") == 1
    assert azure.fake.count("GET", "/operations/") >= 1  # polled through Azure-AsyncOperation
    observed = scaler.observe(aks_pool())
    assert (observed.nodes, observed.healthy_nodes) == (3, 3)
    assert {r.headers.get("Authorization") for r in azure.fake.requests} == {"Bearer fake-token"}


def test_aks_with_the_autoscaler_raises_its_floor_to_the_count(azure: Azure, backoff, settle) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 1, autoscaling=True, max_count=4)
    scaler = AksAgentPools(azure.settings, backoff)
    settle(lambda: scaler.resize(aks_pool(), 3))
    assert (azure.agent_pool().scale_set.capacity, azure.agent_pool().min_count) == (3, 3)


def test_aks_never_asks_beyond_the_autoscalers_max(azure: Azure, backoff) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 1, autoscaling=True, max_count=2)
    with pytest.raises(QuotaExceeded, match="maximum of 2"):
        AksAgentPools(azure.settings, backoff).resize(aks_pool(max_nodes=4), 3)
    assert azure.fake.count("PUT") == 0


def test_aks_reads_a_cluster_and_lists_its_scale_sets_once_for_all_its_pools(azure: Azure, backoff) -> None:
    for name in ("gpua", "gpub", "gpuc"):
        azure.fake.add_agent_pool(GROUP, "aks", name, 1)
    scaler = AksAgentPools(azure.settings, backoff)
    observed = [scaler.observe(aks_pool(name=name)) for name in ("gpua", "gpub", "gpuc")]
    assert [(o.nodes, o.healthy_nodes) for o in observed] == [(1, 1)] * 3
    assert lookups(azure.fake) == (1, 1)
    azure.fake.add_agent_pool(GROUP, "aks", "gpud", 1)  # a pool added since: looked up again, once
    assert scaler.observe(aks_pool(name="gpud")).nodes == 1
    assert lookups(azure.fake) == (2, 2)


def lookups(fake: FakeResourceManager) -> tuple[int, int]:
    """(cluster reads, scale-set lists) the fake received."""
    gets = [r.path for r in fake.requests if r.method == "GET"]
    return (sum(p.endswith("/managedClusters/aks") for p in gets),
            sum(p.endswith("/virtualMachineScaleSets") for p in gets))


def test_a_new_scaler_reads_an_operation_under_way_from_provisioning_state(azure: Azure, backoff, settle) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 0)
    with pytest.raises(Exception, match="resizing from 0 to 2"):
        AksAgentPools(azure.settings, backoff).resize(aks_pool(), 2)
    settle(lambda: AksAgentPools(azure.settings, backoff).resize(aks_pool(), 2))
    assert azure.fake.count("PUT") == 1


@pytest.mark.parametrize("code,message,raised", [
    ("QuotaExceeded", "Operation could not be completed as it results in exceeding approved "
     "standardNDSH100v5Family Cores quota.", QuotaExceeded),
    ("AllocationFailed", "Allocation failed. We do not have sufficient capacity for the requested VM size "
     "in this region.", CapacityUnavailable),
])
def test_a_failed_operation_is_a_typed_error(azure: Azure, backoff, settle, code, message, raised) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 1)
    azure.fake.operations.fail_next({"code": code, "message": message})
    scaler = AksAgentPools(azure.settings, backoff)
    with pytest.raises(raised):
        settle(lambda: scaler.resize(aks_pool(), 3))
    assert azure.agent_pool().scale_set.capacity == 1


def test_scale_set_resize_patches_its_capacity(azure: Azure, backoff, settle) -> None:
    azure.fake.add_scale_set("rg-plain", "plain", 1)
    settings = azure.settings.model_copy(update={"azure_resource_group": "rg-plain"})
    scaler = ScaleSets(settings, backoff)
    settle(lambda: scaler.resize(vmss_pool(), 4))
    assert azure.fake.scale_sets[("rg-plain", "plain")].capacity == 4
    assert azure.fake.count("PATCH") == 1
    assert scaler.observe(vmss_pool()).healthy_nodes == 4


def test_a_scale_set_pool_needs_the_resource_group(azure: Azure, backoff) -> None:
    with pytest.raises(InputError, match="GPUFLEET_AZURE_RESOURCE_GROUP"):
        ScaleSets(azure.settings, backoff).observe(vmss_pool())


def test_an_agent_pool_without_its_scale_set_is_pool_not_found(azure: Azure, backoff) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 1)
    azure.fake.scale_sets.clear()
    with pytest.raises(PoolNotFound, match="no scale set tagged aks-managed-poolName=gpu"):
        AksAgentPools(azure.settings, backoff).observe(aks_pool())


AKS_CALLS = [("GET", "/agentPools/gpu"), ("GET", "/managedClusters/aks"), ("GET", "/virtualMachineScaleSets"),
             ("GET", "/instanceView"), ("PUT", "/agentPools/gpu")]


def error(fault: str, path: str) -> tuple[int, object, str]:
    """Throttling (429) or a 503 in Resource Manager's error shape."""
    if fault == "throttling":
        return 429, arm_error("TooManyRequests", "The request is being throttled."), "application/json"
    return 503, arm_error("ServiceUnavailable", "The service is unavailable."), "application/json"


@pytest.mark.parametrize("fault,times", [("throttling", 2), ("5xx", 2), ("timeout", 1)])
@pytest.mark.parametrize("method,path", AKS_CALLS)
def test_every_call_is_retried_with_backoff(azure: Azure, backoff, faults, settle, fault, times, method, path) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 1)
    faults.inject(azure.fake, fault, method, path, times, error)
    scaler = AksAgentPools(faults.settings(azure.settings, fault), backoff)
    settle(lambda: scaler.resize(aks_pool(), 3))
    assert azure.agent_pool().scale_set.capacity == 3
    faults.assert_retried(fault, times)


@pytest.mark.parametrize("fault", ["throttling", "5xx"])
def test_a_failed_poll_of_the_operation_reads_the_outcome_from_the_pool(azure: Azure, backoff, faults, settle,
                                                                        fault) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 1)
    faults.inject(azure.fake, fault, "GET", "/operations/", 1, error)  # polled by the SDK's poller, which then gives up
    scaler = AksAgentPools(azure.settings, backoff)
    settle(lambda: scaler.resize(aks_pool(), 3))
    assert azure.agent_pool().scale_set.capacity == 3
    assert azure.fake.count("PUT") == 1


def test_scale_set_calls_are_retried_too(azure: Azure, backoff, faults, settle) -> None:
    azure.fake.add_scale_set("rg-plain", "plain", 0)
    settings = azure.settings.model_copy(update={"azure_resource_group": "rg-plain"})
    faults.inject(azure.fake, "throttling", "PATCH", "/plain", 2, error)
    scaler = ScaleSets(settings, backoff)
    settle(lambda: scaler.resize(vmss_pool(), 2))
    faults.assert_retried("throttling", 2)


def test_retries_give_up_after_the_last_attempt(azure: Azure, backoff, sleeps, faults) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 1)
    faults.inject(azure.fake, "5xx", "GET", "/agentPools/gpu", 4, error)
    with pytest.raises(ProviderUnavailable, match="status 503"):
        AksAgentPools(azure.settings, backoff).observe(aks_pool())
    assert sleeps == [0.01, 0.02, 0.04]


@pytest.mark.parametrize("status,code,message,raised", [
    (401, "InvalidAuthenticationToken", "The access token is invalid.", CredentialsInvalid),
    (403, "AuthorizationFailed", "The client does not have authorization to perform action.", CredentialsInvalid),
    (409, "OperationNotAllowed", "Operation could not be completed as it results in exceeding approved Total "
     "Regional Cores quota.", QuotaExceeded),
    (409, "SkuNotAvailable", "The requested VM size is currently not available in location 'westeurope'.",
     CapacityUnavailable),
])
def test_errors_are_typed_and_not_retried(azure: Azure, backoff, sleeps, status, code, message, raised) -> None:
    azure.fake.add_agent_pool(GROUP, "aks", "gpu", 1)
    azure.fake.fail_next(status, arm_error(code, message), method="PUT", path="/agentPools/gpu")
    with pytest.raises(raised) as caught:
        AksAgentPools(azure.settings, backoff).resize(aks_pool(), 3)
    assert caught.value.__cause__ is not None
    assert sleeps == []
