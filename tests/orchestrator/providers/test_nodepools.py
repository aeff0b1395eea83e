"""The node-pool interface: which scaler a pool gets, and how counts split over zones."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.providers.nodepools import NodePoolScaler, scaler_for, split_evenly
from orchestrator.settings import Settings
from orchestrator.spec import Pool


@pytest.mark.parametrize("provider,cluster,name", [
    ("aws", "eks", "EksNodeGroups"), ("aws", None, "AutoScalingGroups"),
    ("gcp", "gke", "GkeNodePools"), ("gcp", None, "ManagedInstanceGroups"),
    ("azure", "aks", "AksAgentPools"), ("azure", None, "ScaleSets"),
])
def test_scaler_for_each_cloud_and_kind(provider, cluster, name) -> None:
    scaler = scaler_for(Pool(name="p", provider=provider, region="r", max_nodes=2, cluster=cluster), Settings())
    assert isinstance(scaler, NodePoolScaler) and type(scaler).__name__ == name


@pytest.mark.parametrize("provider", ["onprem", "local"])
def test_owned_pools_have_no_scaler(provider) -> None:
    with pytest.raises(InputError, match="no cloud node pool"):
        scaler_for(Pool(name="p", provider=provider, region="r", max_nodes=2, cluster="c"), Settings())


@pytest.mark.parametrize("total,parts,shares", [(6, 3, [2, 2, 2]), (5, 3, [2, 2, 1]), (1, 3, [1, 0, 0]), (0, 2, [0, 0])])
def test_split_evenly(total, parts, shares) -> None:
    assert list(split_evenly(total, parts)) == shares
