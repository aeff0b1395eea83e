"""The data.gpufleet document: defaults, then the spec's facts, then its policies.data."""

from __future__ import annotations

import pytest

from orchestrator.policy import PolicyError
from orchestrator.policy.data import policy_data
from orchestrator.spec import parse_spec

SPEC = """
environment: prod
pools:
  - {name: p, provider: aws, region: us-east-1, instance_type: p5.48xlarge, max_nodes: 2}
models:
  - name: chat
    architecture: llama-3.1-8b
    source: s3://m/
    slo: {ttft_p95_ms: 800, tpot_p95_ms: 60, max_rtt_ms: 100}
    min_replicas: 2
    spread: {across: zone, min: 2}
    residency: {continents: [europe]}
  - {name: code, architecture: llama-3.1-8b, source: s3://m/, slo: {ttft_p95_ms: 800, tpot_p95_ms: 60, max_rtt_ms: 100}}
budget: {usd_per_hour: 50}
"""
DEFAULTS = {"environment": "", "budget_usd_per_hour": None, "models": {}, "node_ceilings": {"default": 16, "prod": 64}, "required_tags": ["env"]}


def spec(policies: str = ""):
    return parse_spec(SPEC + policies, "prod.yaml")


def test_spec_facts_fill_the_environment_keys() -> None:
    data = policy_data(spec(), DEFAULTS)
    assert data["environment"] == "prod" and data["budget_usd_per_hour"] == 50
    assert data["models"] == {
        "chat": {"min_replicas": 2, "spread": {"across": "zone", "min": 2},
                 "residency": {"providers": [], "regions": [], "continents": ["europe"]}},
        "code": {"min_replicas": 1, "spread": None, "residency": {"providers": [], "regions": [], "continents": []}},
    }
    assert data["node_ceilings"] == {"default": 16, "prod": 64}


def test_spec_policy_data_wins_merging_objects_and_replacing_lists() -> None:
    data = policy_data(spec("policies:\n  data:\n    node_ceilings: {prod: 8}\n    required_tags: [team]\n    budget_usd_per_hour: 70\n"), DEFAULTS)
    assert data["node_ceilings"] == {"default": 16, "prod": 8}
    assert data["required_tags"] == ["team"]
    assert data["budget_usd_per_hour"] == 70


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    with pytest.raises(PolicyError, match=r"policies\.data\.node_ceiling: unknown policy data key\. Did you mean 'node_ceilings'\?"):
        policy_data(spec("policies:\n  data:\n    node_ceiling: {prod: 8}\n"), DEFAULTS)


def test_null_deletes_a_default_key_and_an_empty_object_replaces() -> None:
    from orchestrator.policy.data import placement_rules

    defaults = {**DEFAULTS, "residency_areas": {"eu": {"continents": ["europe"], "allow_onprem": True}},
                "max_spot_share": {"default": 0.5}}
    merged = policy_data(spec("policies:\n  data:\n    residency_areas: {}\n"), defaults)
    assert merged["residency_areas"] == {} and placement_rules(merged).residency_areas == ()
    merged = policy_data(spec("policies:\n  data:\n    residency_areas: {eu: null, apac: {continents: [asia]}}\n"
                              "    max_spot_share: {default: null, chat: 0.2}\n    node_ceilings: {prod: null}\n"), defaults)
    assert merged["residency_areas"] == {"apac": {"continents": ["asia"]}}
    assert merged["max_spot_share"] == {"chat": 0.2} and placement_rules(merged).spot_cap("code") == 1.0
    assert merged["node_ceilings"] == {"default": 16}


def test_null_inside_a_new_object_is_dropped_and_a_top_level_null_is_a_value() -> None:
    merged = policy_data(spec("policies:\n  data:\n    licences: {q: {models: [q*], providers: null}}\n"
                              "    budget_usd_per_hour: null\n"), {**DEFAULTS, "licences": {}})
    assert merged["licences"] == {"q": {"models": ["q*"]}}
    assert "budget_usd_per_hour" in merged and merged["budget_usd_per_hour"] is None  # null: no cap, as the rules read it
