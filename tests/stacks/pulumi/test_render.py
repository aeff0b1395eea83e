"""`python -m stacks --engine pulumi`: the programs run under mocks, written where the policy check reads them."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import InputError


def test_renders_every_stack_of_the_environment(tmp_path, capsys, monkeypatch):
    from stacks.__main__ import main

    monkeypatch.setenv("GPUFLEET_HOME", str(tmp_path / "home"))
    assert main(["--engine", "pulumi", "--env", "hybrid", "--outdir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rendered under Pulumi mocks") and "hybrid-aws (28 resources)" in out and "hybrid-gcp (6 resources)" in out
    stack = tmp_path / "out" / "stacks" / "hybrid-gcp"
    resources = json.loads((stack / "resources.json").read_text())
    assert [r["name"] for r in resources if r["type"] == "gcp:container/nodePool:NodePool"] == ["gcp-euw4-l4-spot_node-pool", "gcp-usc1-h100_node-pool"]
    assert set(json.loads((stack / "cdk.tf.json").read_text())["resource"]) == {
        "google_container_node_pool", "google_service_account_iam_member", "google_storage_bucket_iam_member"}


def test_a_stack_name_says_environment_and_provider():
    from stacks.pulumi.program import split_stack_name

    assert split_stack_name("hybrid-eu-aws") == ("hybrid-eu", "aws")
    with pytest.raises(InputError, match="not <environment>-<provider>"):
        split_stack_name("hybrid-oracle")


def test_the_program_pulumi_runs_reads_environment_and_provider_from_the_stack_name(tmp_path, monkeypatch):
    from stacks.pulumi import program
    from stacks.pulumi.mocked import record

    monkeypatch.setenv("GPUFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # Pulumi starts it in stacks/pulumi; it reads environments/ from the repository
    declared = record("hybrid-gcp", program.main)
    assert [d.name for d in declared if d.type == "gcp:container/nodePool:NodePool"] == [
        "gcp-euw4-l4-spot_node-pool", "gcp-usc1-h100_node-pool"]
    assert "google" in [d.name for d in declared]
