"""The spec's `routing` section and `pools[].gateway`: valid ones load, bad ones name the field and what is allowed."""

from __future__ import annotations

import textwrap

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec import parse_spec

SPEC = textwrap.dedent("""\
    pools:
      - {name: use1, provider: aws, region: us-east-1, instance_type: p5.48xlarge, max_nodes: 2, gateway: GATEWAY}
    models:
      - name: m8b
        architecture: llama-3.1-8b
        source: s3://bucket/m8b/
        slo: {ttft_p95_ms: 500, tpot_p95_ms: 50, max_rtt_ms: 100}
    routing:
      dns: DNS
""")
DNS = "{provider: route53, zone_id: /hostedzone/Z0123ABC, domain: LLM.Example.com., record: '{region}.{model}', ttl: 30}"


def issues(gateway: str = "gw.example.com", dns: str = DNS) -> list[str]:
    try:
        parse_spec(SPEC.replace("GATEWAY", gateway).replace("DNS", dns), "f.yaml")
    except SpecError as exc:
        return [f"{i.path}: {i.message}" for i in exc.issues]
    return []


def test_a_routing_section_loads_normalized() -> None:
    spec = parse_spec(SPEC.replace("GATEWAY", "GW.Example.com.").replace("DNS", DNS), "f.yaml")
    assert spec.pools[0].gateway == "gw.example.com"
    dns = spec.routing.dns  # type: ignore[union-attr]
    assert (dns.provider, dns.zone_id, dns.domain, dns.record, dns.ttl) == ("route53", "Z0123ABC", "llm.example.com",
                                                                           "{region}.{model}", 30)


def test_routing_is_optional_and_its_defaults_are_per_model_records_with_a_short_ttl() -> None:
    assert parse_spec(SPEC.replace("GATEWAY", "10.0.0.1").split("routing:")[0], "f.yaml").routing is None
    dns = parse_spec(SPEC.replace("GATEWAY", "10.0.0.1").replace(
        "DNS", "{provider: route53, zone_id: Z1, domain: llm.example.com}"), "f.yaml").routing.dns  # type: ignore[union-attr]
    assert (dns.record, dns.ttl) == ("{model}.{region}", 60)


@pytest.mark.parametrize("gateway,dns,expected", [
    ("gw_1", DNS, "pools[0].gateway: Value error, not a host name or IP address; allowed: a DNS name"),
    ("gw.example.com", DNS.replace("route53", "cloud-dns"), "routing.dns.provider: Input should be 'route53'"),
    ("gw.example.com", DNS.replace("/hostedzone/Z0123ABC", "z-1"),
     "routing.dns.zone_id: Value error, not a Route 53 hosted zone ID; allowed: upper-case letters and digits"),
    ("gw.example.com", DNS.replace("LLM.Example.com.", "10.0.0.1"),
     "routing.dns.domain: Value error, an IP address is not a domain; allowed: a DNS name"),
    ("gw.example.com", DNS.replace("'{region}.{model}'", "'{model}'"),
     "routing.dns.record: Value error, the record name must contain {region}"),
    ("gw.example.com", DNS.replace("'{region}.{model}'", "'{region}.{pool}'"),
     "routing.dns.record: Value error, not a record name template; allowed: dot-separated labels"),
    ("gw.example.com", DNS.replace("ttl: 30", "ttl: 0"), "routing.dns.ttl: Input should be greater than or equal to 1"),
    ("gw.example.com", DNS.replace("ttl: 30", "tll: 30"), "routing.dns.tll: unknown key 'tll'. Did you mean 'ttl'?"),
])
def test_bad_routing_names_the_field_and_what_is_allowed(gateway, dns, expected) -> None:
    found = issues(gateway, dns)
    assert len(found) == 1 and found[0].startswith(expected), found
