"""The records a placement wants (pure), and the diff every DNS service applies."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.routes import RouteTable, Target, WeightedRecord, diff, dns_label
from orchestrator.routes.base import record_type
from tests.orchestrator.routes.conftest import placement, spec


def records(table: RouteTable) -> dict[str, dict[str, tuple[str, int]]]:
    return {r.name: {t.set_id: (t.value, t.weight) for t in r.targets} for r in table.records}


def test_one_record_per_model_and_user_region_weighted_by_the_plans_shares() -> None:
    plan = placement([("llama-3.1-8b", "virginia", "a", 0.941137), ("llama-3.1-8b", "virginia", "b", 0.058863),
                      ("llama-3.1-8b", "frankfurt", "b", 1.0)])
    table = RouteTable.from_placement(spec(), plan)
    assert records(table) == {
        "llama-3-1-8b.frankfurt.llm.example.com.": {"b": ("gw-b.example.com", 100)},
        "llama-3-1-8b.virginia.llm.example.com.": {"a": ("gw-a.example.com", 94), "b": ("gw-b.example.com", 6)},
    }
    assert {r.ttl for r in table.records} == {60}


def test_pools_behind_one_gateway_keep_their_own_answers_to_the_same_target() -> None:
    table = RouteTable.from_placement(spec(), placement([("m", "virginia", "c", 0.25), ("m", "virginia", "d", 0.75)]))
    assert records(table) == {"m.virginia.llm.example.com.": {"c": ("gw-cd.example.com", 25),
                                                            "d": ("gw-cd.example.com", 75)}}


def test_a_pool_without_traffic_or_rounded_to_zero_gets_no_answer() -> None:
    plan = placement([("m", "virginia", "a", 0.998), ("m", "virginia", "b", 0.002), ("m", "virginia", "c", 0.0)])
    assert records(RouteTable.from_placement(spec(), plan)) == {
        "m.virginia.llm.example.com.": {"a": ("gw-a.example.com", 100)}}


def test_an_ip_address_gateway_gives_an_a_record_and_a_template_and_ttl_apply() -> None:
    table = RouteTable.from_placement(spec(record="{region}-{model}", ttl=30, gateways={"a": "10.0.0.7"}),
                                      placement([("m", "us-east", "a", 1.0)]))
    (record,) = table.records
    assert (record.name, record.ttl, record.targets) == ("us-east-m.llm.example.com.", 30, (Target("a", "10.0.0.7", 100, "A"),))


def test_a_region_only_record_mixes_the_models_by_demand() -> None:
    plan = placement([("m", "virginia", "a", 1.0), ("n", "virginia", "a", 0.5), ("n", "virginia", "b", 0.5)],
                     replicas={("m", "a"): 1, ("n", "a"): 1, ("m", "b"): 1, ("n", "b"): 1},
                     demand={("m", "virginia"): 30.0, ("n", "virginia"): 10.0})
    # a: 30 * 1.0 + 10 * 0.5 = 35 of 40; b: 5 of 40
    assert records(RouteTable.from_placement(spec(record="{region}"), plan)) == {
        "virginia.llm.example.com.": {"a": ("gw-a.example.com", 88), "b": ("gw-b.example.com", 12)}}


def test_a_region_only_record_is_refused_where_a_gateway_lacks_a_model_of_that_region() -> None:
    plan = placement([("m", "virginia", "a", 1.0), ("n", "virginia", "b", 1.0)])
    with pytest.raises(InputError, match=r"routing.dns.record: .*gateway gw-a.example.com serves no replica of n.*"
                                         r"put \{model\} in routing.dns.record"):
        RouteTable.from_placement(spec(record="{region}"), plan)


def test_a_pool_with_traffic_but_no_gateway_is_named_by_its_spec_path() -> None:
    plan = placement([("m", "virginia", "a", 0.5), ("m", "virginia", "b", 0.5), ("n", "tokyo", "b", 1.0)])
    with pytest.raises(InputError) as raised:
        RouteTable.from_placement(spec(gateways={"b": None}), plan)
    assert str(raised.value) == ("pools[1].gateway: pool 'b' serves m from virginia, n from tokyo but has no gateway for "
                                 "routing.dns to point at. To fix: set it to the host name or IP address of the pool's gateway")


def test_host_names_and_addresses_cannot_share_a_record() -> None:
    with pytest.raises(InputError, match="both host names and IP addresses"):
        RouteTable.from_placement(spec(gateways={"a": "10.0.0.7"}),
                                  placement([("m", "virginia", "a", 0.5), ("m", "virginia", "b", 0.5)]))


def test_two_pairs_that_make_the_same_name_are_refused() -> None:
    with pytest.raises(InputError, match="both make the record m-1.virginia.llm.example.com."):
        RouteTable.from_placement(spec(), placement([("m.1", "virginia", "a", 1.0), ("m_1", "virginia", "a", 1.0)]))


def test_unserved_demand_is_left_alone_and_said() -> None:
    plan = placement([("m", "virginia", "a", 1.0)], demand={("m", "virginia"): 1.0, ("m", "tokyo"): 2.0})
    table = RouteTable.from_placement(spec(), plan)
    assert [r.name for r in table.records] == ["m.virginia.llm.example.com."]
    assert table.unrouted == ("m from tokyo: the plan serves none of it; its record is left as it is",)


def test_a_spec_without_routing_dns_has_no_table() -> None:
    with pytest.raises(InputError, match="no routing.dns"):
        RouteTable.from_placement(spec(routing=False), placement([("m", "virginia", "a", 1.0)]))


@pytest.mark.parametrize("text,label", [("llama-3.1-8b", "llama-3-1-8b"), ("San Francisco", "san-francisco"),
                                        ("--eu__west--", "eu-west"), ("x" * 70, "x" * 63)])
def test_dns_labels(text, label) -> None:
    assert dns_label(text) == label


def test_record_types() -> None:
    assert [record_type(v) for v in ("gw.example.com", "10.1.2.3", "2001:db8::1")] == ["CNAME", "A", "AAAA"]


# --- diff ---------------------------------------------------------------------------------------------------

NAME = "m.virginia.llm.example.com."


def rec(*targets: tuple[str, str, int], ttl: int = 60, name: str = NAME) -> WeightedRecord:
    return WeightedRecord(name, ttl, tuple(Target(s, v, w, record_type(v)) for s, v, w in targets))


def test_nothing_differs_nothing_changes() -> None:
    wanted = rec(("a", "gw-a.example.com", 70), ("b", "gw-b.example.com", 30))
    held = rec(("a", "GW-A.example.com.", 70), ("b", "gw-b.example.com", 30))  # as a DNS service may spell it
    assert diff([wanted], [held]) == []


def test_only_what_differs_is_upserted_and_a_pool_that_left_is_deleted() -> None:
    wanted = rec(("a", "gw-a.example.com", 60), ("c", "gw-c.example.com", 40))
    held = rec(("a", "gw-a.example.com", 70), ("b", "gw-b.example.com", 30))
    changes = diff([wanted], [held])
    assert [(c.action, c.target.set_id, c.target.weight) for c in changes] == [
        ("DELETE", "b", 30), ("UPSERT", "a", 60), ("UPSERT", "c", 40)]
    assert [c.describe("dns") for c in changes] == [
        f"dns: {NAME} CNAME b: deleted (was weight 30 -> gw-b.example.com)",
        f"dns: {NAME} CNAME a: weight 60 -> gw-a.example.com (was weight 70)",
        f"dns: {NAME} CNAME c: created, weight 40 -> gw-c.example.com",
    ]


def test_a_new_ttl_rewrites_every_answer() -> None:
    changes = diff([rec(("a", "gw-a.example.com", 100), ttl=30)], [rec(("a", "gw-a.example.com", 100), ttl=60)])
    assert [(c.action, c.ttl, c.before_ttl) for c in changes] == [("UPSERT", 30, 60)]


def test_a_type_change_deletes_the_old_answer_first() -> None:
    changes = diff([rec(("a", "10.0.0.7", 100))], [rec(("a", "gw-a.example.com", 100))])
    assert [(c.action, c.target.type) for c in changes] == [("DELETE", "CNAME"), ("UPSERT", "A")]


def test_names_not_wanted_are_never_touched() -> None:
    other = rec(("a", "gw-a.example.com", 100), name="n.tokyo.llm.example.com.")
    assert diff([rec(("a", "gw-a.example.com", 100))], [rec(("a", "gw-a.example.com", 100)), other]) == []
