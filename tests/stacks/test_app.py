"""The app: one stack per environment x provider, each with its backend, pinned providers and outputs."""

from __future__ import annotations

import re

import pytest

from stacks.app import PROJECT_FILE, project_context


def test_one_stack_per_environment_and_provider(synthesized):
    assert synthesized.names() == ["hybrid-aws", "hybrid-azure", "hybrid-gcp", "hybrid-onprem", "local-local"]


def test_synth_output_is_where_the_policies_look(synthesized):
    for name in synthesized.names():
        assert (synthesized.outdir / "stacks" / name / "cdk.tf.json").is_file()


@pytest.mark.parametrize(("stack", "backend", "settings"), [
    ("hybrid-aws", "s3", {"bucket": "gpufleet-tfstate-hybrid", "key": "gpufleet/hybrid-aws.tfstate", "region": "us-east-1", "encrypt": True, "use_lockfile": True}),
    ("hybrid-gcp", "gcs", {"bucket": "gpufleet-tfstate-hybrid", "prefix": "gpufleet/hybrid-gcp"}),
    ("hybrid-azure", "azurerm", {"storage_account_name": "gpufleettfstatehybrid", "container_name": "tfstate", "key": "gpufleet/hybrid-azure.tfstate"}),
    ("hybrid-onprem", "kubernetes", {"secret_suffix": "hybrid-onprem", "config_context": "onprem-fra"}),
    ("local-local", "local", {"path": "terraform.local-local.tfstate"}),
])
def test_each_stack_keeps_state_with_its_provider(synthesized, stack, backend, settings):
    (kind, found), = synthesized.json(stack)["terraform"]["backend"].items()
    assert kind == backend
    assert found.items() >= settings.items()


def test_provider_versions_are_pinned_exactly(synthesized):
    for name in synthesized.names():
        for provider, requirement in synthesized.json(name)["terraform"].get("required_providers", {}).items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", requirement["version"]), (name, provider, requirement)


def test_outputs_name_every_pool_with_what_rebalance_needs(synthesized):
    expected: dict[str, set[str]] = {}
    for pool in synthesized.pools.values():
        expected.setdefault(f"{pool.environment}-{pool.pool.provider}", set()).add(pool.name)
    assert sorted(expected) == synthesized.names()
    for stack, pools in expected.items():
        outputs = synthesized.json(stack)["output"]["pools"]["value"]
        assert set(outputs) == pools
        for pool, identifiers in outputs.items():
            assert identifiers["node_pool"] and identifiers["provider"] == stack.split("-")[1], (stack, pool)
            assert {"region", "cluster"} <= identifiers.keys()
    assert synthesized.json("hybrid-azure")["output"]["pools"]["value"]["az-weu-h100-spot"]["node_pool"] == "azweuh10df2a"


def test_standalone_synth_reads_the_project_file_like_the_cli():
    assert PROJECT_FILE.name == "cdktf.json"
    assert project_context()["targetVersions"]["terraform"] == ">=1.10.0"  # S3 native locking needs it
