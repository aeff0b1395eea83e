"""Supported Kubernetes versions: the preStop pause each one gets, checked against its own API schema."""

from __future__ import annotations

import kubernetes_validate
import pytest

from orchestrator.providers.base import ReplicaSpec
from orchestrator.providers.kubernetes.models import deployment
from orchestrator.providers.kubernetes.versions import SUPPORTED, pre_stop_pause, schema_version
from orchestrator.settings import Settings
from orchestrator.spec import Pool

SETTINGS = Settings(kubernetes_image="registry.example/gpufleet/vllm@sha256:" + "ab" * 32)
REPLICA = ReplicaSpec(source="meta-llama/Llama-3.1-8B-Instruct", served_name="llama")


def pool(version: str | None) -> Pool:
    return Pool(name="p", provider="aws", region="us-east-1", instance_type="p5.48xlarge", max_nodes=2, cluster="c",
                kubernetes_version=version)


def test_supported_versions_are_consecutive_minors_from_1_28() -> None:
    assert SUPPORTED[0] == "1.28" and [int(v.split(".")[1]) for v in SUPPORTED] == list(range(28, 28 + len(SUPPORTED)))


@pytest.mark.parametrize("version,native", [(None, False), ("1.28", False), ("1.29", False), ("1.30", True), ("1.37", True)])
def test_the_native_sleep_from_1_30_an_exec_before_and_when_unknown(version, native) -> None:
    handler = pre_stop_pause(pool(version), 5)
    assert handler == ({"sleep": {"seconds": 5}} if native else {"exec": {"command": ["sleep", "5"]}})
    assert schema_version(pool(version)) == (version or "1.28")


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_deployment_validates_against_each_supported_versions_schema(version) -> None:
    kubernetes_validate.validate(deployment(pool(version), "llama", REPLICA, 1, SETTINGS), version, strict=True)


def test_the_native_sleep_fails_1_28s_schema_so_the_gate_matters() -> None:
    rendered = deployment(pool("1.30"), "llama", REPLICA, 1, SETTINGS)
    with pytest.raises(kubernetes_validate.ValidationError, match="sleep"):
        kubernetes_validate.validate(rendered, "1.28", strict=True)
