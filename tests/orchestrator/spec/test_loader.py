"""The fleet spec loader: good specs load, every kind of bad input is located and explained."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import InputError, SpecError
from orchestrator.spec import load_spec, parse_spec

VALID = textwrap.dedent("""\
    pools:
      - name: fra
        provider: onprem
        region: fra-dc1
        location: frankfurt
        gpu: A100-80GB
        gpus_per_node: 8
        cost_per_hour: 10
        node: {cpus: 128, memory_gb: 1024}
        capacity: owned
        min_nodes: 1
        max_nodes: 2
      - name: use1
        provider: aws
        region: us-east-1
        instance_type: p5.48xlarge
        max_nodes: 2
    models:
      - name: m8b
        architecture: llama-3.1-8b
        source: s3://bucket/m8b/
        slo: {ttft_p95_ms: 500, tpot_p95_ms: 50, max_rtt_ms: 100}
    demand:
      - {model: m8b, region: frankfurt, requests_per_second: 5, input_tokens: 100, output_tokens: 50}
""")


def issues_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "env.yaml")
    return [issue.render("env.yaml") for issue in caught.value.issues]


def test_valid_spec_loads_with_defaults() -> None:
    spec = parse_spec(VALID, "env.yaml")
    assert [p.name for p in spec.pools] == ["fra", "use1"]
    assert spec.pools[1].capacity == "on_demand"
    assert spec.models[0].dtype == "bf16" and spec.models[0].min_replicas == 1
    assert spec.budget.usd_per_hour is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # unknown key, with a did-you-mean and the allowed keys
        ("    max_nodes: 2\n  - name: use1", "    max_nodes: 2\n    capcity: spot\n  - name: use1",
         "env.yaml:13: pools[0].capcity: unknown key 'capcity'. Did you mean 'capacity'?"),
        # wrong type
        ("max_nodes: 2\nmodels", "max_nodes: two\nmodels", "env.yaml:17: pools[1].max_nodes: Input should be a valid integer"),
        # negative and zero numbers
        ("requests_per_second: 5", "requests_per_second: 0", "demand[0].requests_per_second: Input should be greater than 0 (got 0)"),
        ("cost_per_hour: 10", "cost_per_hour: -1", "pools[0].cost_per_hour: Input should be greater than or equal to 0 (got -1)"),
        # not an allowed value
        ("provider: aws", "provider: aws-cloud", "pools[1].provider: Input should be 'aws', 'gcp', 'azure', 'onprem' or 'local'"),
        ("capacity: owned", "capacity: free", "pools[0].capacity: Input should be 'on_demand', 'spot', 'reserved' or 'owned'"),
        # min > max
        ("min_nodes: 1", "min_nodes: 3", "env.yaml:11: pools[0].min_nodes: min_nodes (3) is greater than max_nodes (2)"),
        # unknown model in demand, with a suggestion
        ("{model: m8b,", "{model: m8c,", "env.yaml:24: demand[0].model: unknown model 'm8c'. Did you mean 'm8b'?"),
        # duplicate names
        ("name: use1", "name: fra", "pools[1].name: duplicate name 'fra' (first at pools[0])"),
        # a field required by the provider
        ("    cost_per_hour: 10\n", "", "pools[0].cost_per_hour: required for onprem pools"),
        ("    instance_type: p5.48xlarge\n", "", "pools[1].instance_type: required for aws pools"),
        ("    location: frankfurt\n", "", "pools[0].location: required for onprem pools"),
        ("    node: {cpus: 128, memory_gb: 1024}\n", "", "pools[0].node: required for onprem pools: the CPUs and memory of one node"),
        # capacity market that the provider does not have
        ("    instance_type: p5.48xlarge\n", "    instance_type: p5.48xlarge\n    capacity: owned\n", "pools[1].capacity: 'owned' is for onprem and local pools"),
        # missing required field
        ("    source: s3://bucket/m8b/\n", "", "models[0].source: required field is missing"),
        # bad name
        ("name: m8b", "name: M 8B", "models[0].name: String should match pattern"),
        # out of range coordinates in a union field: only the real cause is shown
        ("location: frankfurt", "location: {lat: 95, lon: 8}", "pools[0].location.lat: Input should be less than or equal to 90 (got 95)"),
    ],
)
def test_bad_input_is_located_and_explained(old: str, new: str, expected: str) -> None:
    text = VALID.replace(old, new, 1)
    assert text != VALID, "the test case did not change the spec"
    rendered = issues_of(text)
    assert any(expected in line for line in rendered), rendered


def test_every_problem_is_reported_at_once() -> None:
    text = VALID.replace("min_nodes: 1", "min_nodes: 5").replace("{model: m8b,", "{model: nope,")
    rendered = issues_of(text)
    assert len(rendered) == 2
    assert "pools[0].min_nodes" in rendered[0] and "demand[0].model" in rendered[1]


def test_union_member_noise_is_dropped() -> None:
    rendered = issues_of(VALID.replace("location: frankfurt", "location: {lat: 95, lon: 8}"))
    assert rendered == ["env.yaml:5: pools[0].location.lat: Input should be less than or equal to 90 (got 95)"]


def test_duplicate_demand_is_rejected() -> None:
    line = "  - {model: m8b, region: frankfurt, requests_per_second: 5, input_tokens: 100, output_tokens: 50}\n"
    rendered = issues_of(VALID + line)
    assert any("demand[1]: duplicate demand for model 'm8b' from region 'frankfurt'" in r for r in rendered)


def test_residency_naming_a_provider_without_pools() -> None:
    text = VALID.replace("    source: s3://bucket/m8b/\n", "    source: s3://bucket/m8b/\n    residency: {providers: [gcp]}\n")
    assert any("models[0].residency.providers[0]: no pool of provider 'gcp'" in r for r in issues_of(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pools: [a\n", "not valid YAML"),
        ("", "got an empty file"),
        ("- a\n- b\n", "got a list"),
        ("pools: []\nmodels: []\n", "pools: List should have at least 1 item"),
    ],
)
def test_malformed_documents(text: str, expected: str) -> None:
    assert any(expected in line for line in issues_of(text))


def test_yaml_syntax_error_names_the_line() -> None:
    rendered = issues_of(VALID.replace("max_nodes: 2\nmodels", "max_nodes: [2\nmodels"))
    assert rendered[0].startswith("env.yaml:1") and "not valid YAML" in rendered[0]


def test_load_spec_names_environment_after_file(tmp_path: Path) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text(VALID)
    assert load_spec(path).environment == "staging"


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")
