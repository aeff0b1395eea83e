"""Route 53 weighted records through boto3 against moto's server app (behind the fault-injecting front)."""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree import ElementTree

import boto3
import pytest
from werkzeug.wrappers import Request, Response

from orchestrator.errors import InputError
from orchestrator.providers.errors import ProviderUnavailable
from orchestrator.routes import RouteTable, realize_routes
from orchestrator.routes.base import fqdn
from orchestrator.routes.route53 import Route53Records
from orchestrator.settings import Settings
from tests.fakes.aws_fake import AWS_CREDENTIALS, FakeAwsFront, serving
from tests.conftest import BASE_S
from tests.orchestrator.routes.conftest import DOMAIN, placement, spec

ROUTE53_NS = "https://route53.amazonaws.com/doc/2013-04-01/"
POLL_S = 1.0
VIRGINIA = f"m.virginia.{DOMAIN}."


def rest_xml_error(code: str, message: str) -> str:
    """An error of a rest-xml service (Route 53) as botocore reads it."""
    return (f'<ErrorResponse xmlns="{ROUTE53_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>fake</RequestId></ErrorResponse>")


def change_info(status: str) -> str:
    """A GetChange answer in the given status."""
    return (f'<GetChangeResponse xmlns="{ROUTE53_NS}"><ChangeInfo><Id>/change/CFAKE</Id><Status>{status}</Status>'
            "<SubmittedAt>2026-11-23T12:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>")


class Route53Front(FakeAwsFront):
    """The front, with two things for Route 53: moto's DELETE made exact, and answers that can be lost.

    moto (5.2) deletes a weighted set by its SetIdentifier across the whole zone, and accepts
    deleting one that is gone; Route 53 deletes the one set of that name, type and identifier,
    and refuses a batch deleting a missing one (InvalidChangeBatch). Since gpufleet names a
    pool's sets after the pool under every record name, the front puts back what moto removed
    beyond the set asked for, and answers a missing one as Route 53 does.
    `lose_applied` lets moto apply a change and then answers 503 (a try that timed out after
    AWS acted), so a test can see the retry.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lose_applied = 0

    def handle(self, request: Request) -> Response:
        deletes, zone = self._weighted_deletes(request), None
        if deletes:
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.route53.models import route53_backends

            zone = route53_backends[DEFAULT_ACCOUNT_ID]["aws"].zones[request.path.split("/")[3]]
            before = list(zone.rrsets)
            missing = deletes - {(r.name, r.type, r.set_identifier) for r in before}
            if missing:
                name, type_, set_id = sorted(missing)[0]
                return Response(rest_xml_error("InvalidChangeBatch", f"[Tried to delete resource record set [name='{name}', "
                                               f"type='{type_}', set-identifier='{set_id}'] but it was not found]"),
                                400, content_type="text/xml")
        response = super().handle(request)
        if zone is not None and response.status_code == 200:
            kept, ids = set(map(id, zone.rrsets)), {set_id for *_, set_id in deletes}
            zone.rrsets += [r for r in before if id(r) not in kept and r.set_identifier in ids
                            and (r.name, r.type, r.set_identifier) not in deletes]
        if self.lose_applied and request.method == "POST" and "/rrset" in request.path:
            self.lose_applied -= 1
            return Response("upstream went away", 503)
        return response

    @staticmethod
    def _weighted_deletes(request: Request) -> set[tuple[str, str, str]]:
        """(name, type, set id) of every weighted set a ChangeResourceRecordSets request deletes."""
        if request.method != "POST" or not request.path.endswith("/rrset/"):
            return set()
        body = request.get_data(cache=True)
        request.environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        ns = {"r": ROUTE53_NS}
        return {(fqdn(c.findtext("r:ResourceRecordSet/r:Name", "", ns)), c.findtext("r:ResourceRecordSet/r:Type", "", ns),
                 c.findtext("r:ResourceRecordSet/r:SetIdentifier", "", ns))
                for c in ElementTree.fromstring(body).iterfind(".//r:Change", ns)
                if c.findtext("r:Action", "", ns) == "DELETE" and c.find("r:ResourceRecordSet/r:SetIdentifier", ns) is not None}


@dataclass
class Zone:
    """A hosted zone of its own per test (moto's state is process-wide and not reset between tests)."""

    fake: Route53Front
    settings: Settings
    zone_id: str
    route53: object

    def setter(self, backoff, **kwargs) -> Route53Records:
        return Route53Records(spec(zone_id=self.zone_id).routing.dns, self.settings, backoff,  # type: ignore[union-attr]
                              poll_s=POLL_S, **kwargs)

    def held(self) -> dict[tuple[str, str], tuple[str, int, int, str]]:
        """(name, set id) -> (type, weight, ttl, value) of every weighted set in the zone."""
        sets = self.route53.list_resource_record_sets(HostedZoneId=self.zone_id)["ResourceRecordSets"]
        return {(s["Name"], s["SetIdentifier"]): (s["Type"], s["Weight"], s["TTL"], s["ResourceRecords"][0]["Value"])
                for s in sets if "SetIdentifier" in s}

    def writes(self) -> int:
        return self.fake.count("POST", "/rrset")


@pytest.fixture(scope="module")
def moto_server() -> Iterator[tuple[Route53Front, str, object]]:
    fake = Route53Front()
    with serving(fake) as url:
        yield fake, url, boto3.session.Session().client("route53", region_name="us-east-1", endpoint_url=url)


_zones = itertools.count()


@pytest.fixture
def zone(moto_server, monkeypatch: pytest.MonkeyPatch) -> Zone:
    fake, url, route53 = moto_server
    for name, value in AWS_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    zone_id = route53.create_hosted_zone(Name=DOMAIN, CallerReference=f"routes-{next(_zones)}")["HostedZone"]["Id"]
    fake.reset()
    return Zone(fake, Settings(aws_endpoint_url=url, provider_call_timeout_s=5.0), zone_id.split("/")[-1], route53)


def table(*routes: tuple[str, str, str, float], **spec_args) -> RouteTable:
    return RouteTable.from_placement(spec(**spec_args), placement(list(routes)))


PLAN = (("m", "virginia", "a", 0.7), ("m", "virginia", "b", 0.3), ("m", "frankfurt", "b", 1.0))


def test_apply_writes_weighted_records_from_the_shares(zone: Zone, backoff, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="orchestrator.routes"):
        changes = zone.setter(backoff).apply(table(*PLAN).records)
    assert zone.held() == {
        (VIRGINIA, "a"): ("CNAME", 70, 60, "gw-a.example.com"),
        (VIRGINIA, "b"): ("CNAME", 30, 60, "gw-b.example.com"),
        (f"m.frankfurt.{DOMAIN}.", "b"): ("CNAME", 100, 60, "gw-b.example.com"),
    }
    assert len(changes) == 3 and all("created" in line for line in changes)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == changes
    assert zone.writes() == 1  # one batch
    assert zone.fake.count("GET", "/change/") == 1  # waited for INSYNC (moto is in sync at once)


def test_a_second_apply_changes_nothing(zone: Zone, backoff) -> None:
    setter = zone.setter(backoff)
    setter.apply(table(*PLAN).records)
    assert setter.apply(table(*PLAN).records) == []
    assert zone.writes() == 1


def test_observe_reads_back_what_apply_wrote(zone: Zone, backoff) -> None:
    setter = zone.setter(backoff)
    setter.apply(table(*PLAN).records)
    observed = {r.name: r.weights() for r in setter.observe()}
    assert observed == {VIRGINIA: {"a": 70, "b": 30}, f"m.frankfurt.{DOMAIN}.": {"b": 100}}


def test_new_shares_change_only_what_differs_and_a_pool_that_left_is_deleted(zone: Zone, backoff) -> None:
    setter = zone.setter(backoff)
    setter.apply(table(*PLAN).records)
    changes = setter.apply(table(("m", "virginia", "a", 0.4), ("m", "virginia", "c", 0.6),
                                 ("m", "frankfurt", "b", 1.0)).records)
    assert zone.held() == {
        (VIRGINIA, "a"): ("CNAME", 40, 60, "gw-a.example.com"),
        (VIRGINIA, "c"): ("CNAME", 60, 60, "gw-cd.example.com"),
        (f"m.frankfurt.{DOMAIN}.", "b"): ("CNAME", 100, 60, "gw-b.example.com"),  # untouched
    }
    assert changes == [
        f"route53 zone {zone.zone_id}: {VIRGINIA} CNAME b: deleted (was weight 30 -> gw-b.example.com)",
        f"route53 zone {zone.zone_id}: {VIRGINIA} CNAME a: weight 40 -> gw-a.example.com (was weight 70)",
        f"route53 zone {zone.zone_id}: {VIRGINIA} CNAME c: created, weight 60 -> gw-cd.example.com",
    ]


def test_names_the_plan_does_not_route_are_left_alone(zone: Zone, backoff) -> None:
    setter = zone.setter(backoff)
    setter.apply(table(*PLAN).records)
    setter.apply(table(("m", "virginia", "a", 1.0)).records)  # frankfurt is unserved in this plan
    assert (f"m.frankfurt.{DOMAIN}.", "b") in zone.held()


def test_an_address_gateway_gets_an_a_record_and_a_ttl_change_rewrites(zone: Zone, backoff) -> None:
    setter = zone.setter(backoff)
    setter.apply(table(("m", "virginia", "a", 1.0)).records)
    setter.apply(table(("m", "virginia", "a", 1.0), gateways={"a": "10.0.0.7"}, ttl=30).records)
    assert zone.held() == {(VIRGINIA, "a"): ("A", 100, 30, "10.0.0.7")}


ROUTE53_CALLS = [("GET", "/rrset"), ("POST", "/rrset"), ("GET", "/change/")]


@pytest.mark.parametrize("status,code", [(400, "Throttling"), (503, "ServiceUnavailable"),
                                         (400, "PriorRequestNotComplete")])
@pytest.mark.parametrize("method,path", ROUTE53_CALLS)
def test_every_call_is_retried_through_throttling_5xx_and_prior_requests(zone: Zone, backoff, sleeps, status, code,
                                                                           method, path) -> None:
    zone.fake.fail_next(status, rest_xml_error(code, "Rate exceeded"), times=2, content_type="text/xml",
                        method=method, path=path)
    zone.setter(backoff).apply(table(*PLAN).records)
    assert zone.held()[(VIRGINIA, "a")] == ("CNAME", 70, 60, "gw-a.example.com")
    assert sleeps == [BASE_S, 2 * BASE_S]


def test_a_call_that_times_out_is_retried(zone: Zone, backoff, sleeps) -> None:
    settings = zone.settings.model_copy(update={"provider_call_timeout_s": 0.3})
    zone.fake.delay_next(0.6, method="POST", path="/rrset")  # held past the timeout, then dropped unapplied
    Route53Records(spec(zone_id=zone.zone_id).routing.dns, settings, backoff).apply(table(*PLAN).records)  # type: ignore[union-attr]
    assert zone.held()[(VIRGINIA, "b")] == ("CNAME", 30, 60, "gw-b.example.com")
    assert sleeps[:1] == [BASE_S]


def test_retries_give_up_after_the_last_attempt(zone: Zone, backoff, sleeps) -> None:
    zone.fake.fail_next(503, rest_xml_error("ServiceUnavailable", "down"), times=4, content_type="text/xml",
                        method="POST", path="/rrset")
    with pytest.raises(ProviderUnavailable, match="ServiceUnavailable"):
        zone.setter(backoff).apply(table(*PLAN).records)
    assert sleeps == [BASE_S, 2 * BASE_S, 4 * BASE_S]
    assert zone.held() == {}


def test_a_change_applied_but_whose_answer_was_lost_is_not_an_error(zone: Zone, backoff) -> None:
    setter = zone.setter(backoff)
    setter.apply(table(*PLAN).records)
    zone.fake.lose_applied = 1  # moto applies the delete+upserts, the client sees a 503 and sends them again
    changes = setter.apply(table(("m", "virginia", "a", 1.0), ("m", "frankfurt", "b", 1.0)).records)
    assert [line.split(": ", 1)[1] for line in changes] == [
        f"{VIRGINIA} CNAME b: deleted (was weight 30 -> gw-b.example.com)",
        f"{VIRGINIA} CNAME a: weight 100 -> gw-a.example.com (was weight 70)",
    ]
    assert zone.held()[(VIRGINIA, "a")] == ("CNAME", 100, 60, "gw-a.example.com")
    assert (VIRGINIA, "b") not in zone.held()


def test_apply_waits_until_the_change_is_insync(zone: Zone, backoff, sleeps) -> None:
    zone.fake.fail_next(200, change_info("PENDING"), times=2, content_type="text/xml", method="GET", path="/change/")
    changes = zone.setter(backoff).apply(table(*PLAN).records)
    assert zone.fake.count("GET", "/change/") == 3
    assert sleeps == [POLL_S, POLL_S]
    assert not any("not INSYNC" in line for line in changes)


def test_a_change_still_pending_after_the_timeout_is_said(zone: Zone, backoff, sleeps) -> None:
    zone.fake.fail_next(200, change_info("PENDING"), times=10, content_type="text/xml", method="GET", path="/change/")
    changes = zone.setter(backoff, timeout_s=2 * POLL_S).apply(table(*PLAN).records)
    assert changes[-1].endswith("not INSYNC after 2 s; Route 53 goes on propagating it")
    assert sleeps == [POLL_S, POLL_S]


def test_an_unknown_zone_is_the_specs_zone_id(zone: Zone, backoff) -> None:
    setter = Route53Records(spec(zone_id="ZNOSUCHZONE").routing.dns, zone.settings, backoff)  # type: ignore[union-attr]
    with pytest.raises(InputError, match="To fix: set routing.dns.zone_id"):
        setter.apply(table(*PLAN).records)


def test_a_plain_record_in_the_way_is_refused_before_anything_is_written(zone: Zone, backoff) -> None:
    zone.route53.change_resource_record_sets(HostedZoneId=zone.zone_id, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {"Name": VIRGINIA, "Type": "CNAME", "TTL": 300,
                                                  "ResourceRecords": [{"Value": "old.example.com"}]}}]})
    zone.fake.reset()
    with pytest.raises(InputError, match=f"{VIRGINIA} already has a CNAME record that is not weighted"):
        zone.setter(backoff).apply(table(*PLAN).records)
    assert zone.writes() == 0


def test_realize_routes_writes_the_plans_records(zone: Zone, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("GPUFLEET_HOME", str(tmp_path))
    settings = zone.settings.model_copy(update={"home": tmp_path})
    fleet = spec(zone_id=zone.zone_id)
    changes = realize_routes(fleet, placement(list(PLAN)), settings)
    assert len(changes) == 3
    assert zone.held()[(VIRGINIA, "a")] == ("CNAME", 70, 60, "gw-a.example.com")
    assert realize_routes(fleet, placement(list(PLAN)), settings) == []


def test_realize_routes_without_routing_calls_nothing(zone: Zone) -> None:
    assert realize_routes(spec(routing=False), placement(list(PLAN)), zone.settings) == []
    assert zone.fake.requests == []
