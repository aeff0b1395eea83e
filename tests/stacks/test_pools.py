"""What all four providers share: tags, labels, taints, names, and the stacks' own spec checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec import parse_spec
from stacks.pools import Taint, bounded_name, gpu_resource, node_labels, node_taints, parse_taint, pool_tags

SPEC = """
environment: prod
tags: {owner: ml-platform, cost-center: cc-1, env: ignored}
pools:
  - name: p1
    provider: aws
    region: us-east-1
    instance_type: g6.12xlarge
    max_nodes: 2
    cluster: eks-1
    labels: {team: search}
    taints: ["dedicated=llm:NoExecute"]
    tags: {cost-center: cc-2, pool: ignored}
models:
  - {name: m, architecture: llama-3.1-8b, source: s3://m/, slo: {ttft_p95_ms: 1000, tpot_p95_ms: 100, max_rtt_ms: 100}}
"""


@pytest.fixture
def spec():
    return parse_spec(SPEC, "prod.yaml")


def test_tags_merge_pool_over_environment_and_gpufleet_over_both(spec):
    assert pool_tags(spec, spec.pools[0]) == {
        "owner": "ml-platform", "cost-center": "cc-2", "env": "prod", "pool": "p1", "managed-by": "gpufleet",
    }


def test_labels_keep_the_pools_and_add_gpufleets(spec):
    assert node_labels(spec, spec.pools[0], "L4") == {
        "team": "search", "gpufleet.io/environment": "prod", "gpufleet.io/pool": "p1",
        "gpufleet.io/capacity": "on_demand", "gpufleet.io/gpu": "L4",
    }


@pytest.mark.parametrize(("text", "taint"), [
    ("dedicated=llm:NoExecute", Taint("dedicated", "llm", "NoExecute")),
    ("nvidia.com/gpu:NoSchedule", Taint("nvidia.com/gpu", "", "NoSchedule")),
    (" a=b:PreferNoSchedule ", Taint("a", "b", "PreferNoSchedule")),
])
def test_parse_taint(text, taint):
    assert parse_taint(text) == taint


@pytest.mark.parametrize("text", ["dedicated=llm", "a=b:NoRun", "=b:NoSchedule", "a b=c:NoSchedule"])
def test_parse_taint_rejects_what_kubernetes_would(text):
    with pytest.raises(ValueError, match="NoSchedule, PreferNoSchedule, NoExecute"):
        parse_taint(text)


def test_upper_effect_is_eks_and_gke_spelling():
    assert [Taint("k", "v", e).upper_effect for e in ("NoSchedule", "PreferNoSchedule", "NoExecute")] == [
        "NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE"]


def test_gpu_taint_is_added_once(spec):
    pool = spec.pools[0]
    assert node_taints(pool, "L4") == (Taint("dedicated", "llm", "NoExecute"), Taint("nvidia.com/gpu", "present", "NoSchedule"))
    own = pool.model_copy(update={"taints": ["nvidia.com/gpu=yes:NoExecute"]})
    assert node_taints(own, "L4") == (Taint("nvidia.com/gpu", "yes", "NoExecute"),)


def test_amd_gpus_are_scheduled_as_amd_resources():
    assert (gpu_resource("MI300X"), gpu_resource("H100")) == ("amd.com/gpu", "nvidia.com/gpu")


def test_bounded_name_is_stable_unique_and_within_the_limit():
    long_a, long_b = "gpufleet-" + "a" * 60 + "-x", "gpufleet-" + "a" * 60 + "-y"
    assert bounded_name("short", 63) == "short"
    assert len(bounded_name(long_a, 63)) == 63
    assert bounded_name(long_a, 63) == bounded_name(long_a, 63) != bounded_name(long_b, 63)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prod.yaml"
    path.write_text(text)
    return path


def test_stack_checks_are_located_in_the_file_like_the_orchestrators(tmp_path):
    from stacks.app import load_environment

    broken = SPEC.replace("    cluster: eks-1\n", "").replace("dedicated=llm:NoExecute", "dedicated=llm").replace("max_nodes: 2", "max_nodes: 0")
    with pytest.raises(SpecError) as caught:
        load_environment(_write(tmp_path, broken))
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == ["pools[0].cluster", "pools[0].max_nodes", "pools[0].taints[0]"]
    assert lines[1].startswith(f"{tmp_path / 'prod.yaml'}:9: pools[0].max_nodes")


def test_catalog_errors_are_the_orchestrators_own(tmp_path):
    from orchestrator.catalog.price_catalog import load_price_catalog
    from orchestrator.inputs import load_inputs
    from stacks.app import load_environment

    path = _write(tmp_path, SPEC.replace("g6.12xlarge", "g6.12xlarg"))
    with pytest.raises(SpecError) as ours:
        load_environment(path, load_price_catalog())
    with pytest.raises(SpecError) as theirs:
        load_inputs(path, load_price_catalog())
    assert str(ours.value) == str(theirs.value)
    assert "Did you mean 'g6.12xlarge'" in str(ours.value)
