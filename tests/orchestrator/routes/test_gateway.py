"""Shared gateways and `local`: membership is the route; the plan's split is compared with it, never claimed."""

from __future__ import annotations

import logging

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from orchestrator.gateway import RouterClient
from orchestrator.routes import gaps, membership_shares, realize_routes
from orchestrator.routes.base import RouteSetter
from orchestrator.routes.gateway import LOCAL_GATEWAY, ROUTER_HAS_WORKER_WEIGHTS, gateway_of, local_members
from orchestrator.settings import Settings
from orchestrator.state import GatewayRecord, ReplicaRecord, ReplicaStatus, open_state, state_url
from tests.fakes.http_fake import FakeHttpApi, json_response
from tests.orchestrator.routes.conftest import placement, spec


def test_the_pinned_router_sets_no_weights() -> None:
    assert ROUTER_HAS_WORKER_WEIGHTS is False  # docs/routes.md and gateway.py say why; change both if it does


def test_local_pools_share_the_local_gateway_and_pools_without_one_have_none() -> None:
    assert gateway_of(spec(gateways={"b": None})) == {
        "a": "gw-a.example.com", "c": "gw-cd.example.com", "d": "gw-cd.example.com", "here": LOCAL_GATEWAY}


def test_a_shared_gateway_splits_by_replicas_not_by_the_plans_shares() -> None:
    plan = placement([("m", "virginia", "c", 0.6), ("m", "virginia", "d", 0.2), ("m", "virginia", "a", 0.2)],
                     replicas={("m", "c"): 1, ("m", "d"): 3, ("m", "a"): 1})
    rows = membership_shares(spec(), plan)
    assert [(r.gateway, r.pool, r.planned, r.realized, r.replicas) for r in rows] == [
        ("gw-cd.example.com", "c", pytest.approx(0.75), 0.25, 1),
        ("gw-cd.example.com", "d", pytest.approx(0.25), 0.75, 3),
    ]  # pool a has its own gateway: DNS weights realize its share exactly, nothing to compare
    (line,) = gaps(rows)
    assert line == ("gateway gw-cd.example.com: m from virginia: the plan splits c 75%, d 25%; its members give "
                    "c 25% (1 replicas), d 75% (3 replicas) (vllm-router has no worker weights: each ready replica "
                    "gets an equal part)")


def test_a_member_without_share_for_a_region_still_takes_its_part() -> None:
    plan = placement([("m", "virginia", "c", 1.0), ("m", "tokyo", "d", 1.0)], replicas={("m", "c"): 1, ("m", "d"): 1})
    virginia = [(r.pool, r.planned, r.realized) for r in membership_shares(spec(), plan) if r.region == "virginia"]
    assert virginia == [("c", 1.0, 0.5), ("d", 0.0, 0.5)]


def test_membership_that_matches_the_plan_is_no_gap() -> None:
    plan = placement([("m", "virginia", "c", 0.52), ("m", "virginia", "d", 0.48)], replicas={("m", "c"): 2, ("m", "d"): 2})
    assert membership_shares(spec(), plan) and gaps(membership_shares(spec(), plan)) == []


class FakeRouter:
    """vllm-router's worker list (GET /workers) as an httpx transport, with the workers a test gives."""

    def __init__(self, workers: list[dict]) -> None:
        self.workers = workers

    def client(self) -> RouterClient:
        return RouterClient("http://gateway.test", transport=httpx.MockTransport(
            lambda request: httpx.Response(200, json={"workers": self.workers})
            if request.url.path == "/workers" else httpx.Response(404)))


@pytest.fixture
def settings(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("GPUFLEET_HOME", str(tmp_path))
    return Settings(home=tmp_path)


def record_replicas(settings: Settings, replicas: list[tuple[str, str, str]], gateway: str | None = None) -> None:
    store = open_state(state_url(settings, "routes-test"))
    with store.session() as session:
        for model, pool, url in replicas:
            session.add(ReplicaRecord(environment="routes-test", model=model, pool=pool, provider="local", url=url,
                                      status=ReplicaStatus.ready))
        if gateway:
            session.add(GatewayRecord(environment="routes-test", site="local", url=gateway, metrics_url=gateway))
    store.close()


def test_local_members_are_counted_per_model_and_pool_from_the_gateways_own_list(settings: Settings) -> None:
    record_replicas(settings, [("m", "here", "http://127.0.0.1:1"), ("m", "here", "http://127.0.0.1:2"),
                               ("n", "here", "http://127.0.0.1:3")])
    router = FakeRouter([{"url": "http://127.0.0.1:1", "model_id": "m"}, {"url": "http://127.0.0.1:2", "model_id": "m"},
                         {"url": "http://127.0.0.1:3", "model_id": "n", "is_healthy": False},
                         {"url": "http://10.9.9.9:8000", "model_id": "m"}])
    members = local_members(spec(), "routes-test", settings, client=router.client())
    assert members == {("m", "here"): 2, ("m", "?"): 1}  # the unhealthy one is no member; an unknown one is said


def test_no_local_gateway_running_means_nothing_to_read(settings: Settings) -> None:
    assert local_members(spec(), "routes-test", settings) is None


class RecordingSetter(RouteSetter):
    def __init__(self) -> None:
        self.applied: list = []

    def observe(self) -> list:
        return []

    def apply(self, records) -> list[str]:
        self.applied.append(list(records))
        return [f"set {r.name}" for r in records]


def test_realize_routes_writes_dns_and_warns_where_a_shared_gateway_cannot_follow(settings: Settings, caplog) -> None:
    setter = RecordingSetter()
    plan = placement([("m", "virginia", "c", 0.75), ("m", "virginia", "d", 0.25)], replicas={("m", "c"): 1, ("m", "d"): 1})
    with caplog.at_level(logging.WARNING, logger="orchestrator.routes"):
        changes = realize_routes(spec(), plan, settings, setter=setter)
    assert changes == ["set m.virginia.llm.example.com."]
    assert [[t.set_id for t in r.targets] for r in setter.applied[0]] == [["c", "d"]]
    assert any("gateway gw-cd.example.com: m from virginia: the plan splits c 75%, d 25%" in r.getMessage()
               for r in caplog.records)


def test_realize_routes_without_dns_only_reports(settings: Settings, caplog) -> None:
    fleet = spec()
    fleet = fleet.model_copy(update={"routing": fleet.routing.model_copy(update={"dns": None})})  # type: ignore[union-attr]
    plan = placement([("m", "local", "here", 1.0)])
    with caplog.at_level(logging.WARNING, logger="orchestrator.routes"):
        assert realize_routes(fleet, plan, settings) == []
    assert caplog.records == []  # one local pool: nothing shared, nothing to say


class FakeRouterApi(FakeHttpApi):
    """A served worker list (GET /workers), for code that builds its own RouterClient from the gateway's record."""

    def __init__(self, workers: list[dict]) -> None:
        super().__init__()
        self.workers = workers

    def handle(self, request: Request) -> Response:
        return json_response({"workers": self.workers}) if request.path == "/workers" else json_response({}, 404)


def test_realize_routes_compares_the_local_gateways_actual_members_with_the_plan(settings: Settings, caplog) -> None:
    fleet = spec(routing=True)
    second = fleet.pools[-1].model_copy(update={"name": "here2"})
    fleet = fleet.model_copy(update={"pools": [*fleet.pools, second],
                                     "routing": fleet.routing.model_copy(update={"dns": None})})  # type: ignore[union-attr]
    plan = placement([("m", "local", "here", 0.5), ("m", "local", "here2", 0.5)])  # one replica each: no gap on paper
    urls = [f"http://127.0.0.1:{port}" for port in (1, 2, 3, 4)]
    router = FakeRouterApi([{"url": url, "model_id": "m"} for url in urls])
    with router.serve() as gateway_url:
        record_replicas(settings, [("m", "here", urls[0]), ("m", "here", urls[1]), ("m", "here", urls[2]),
                                   ("m", "here2", urls[3])], gateway=gateway_url)
        with caplog.at_level(logging.WARNING, logger="orchestrator.routes"):
            assert realize_routes(fleet, plan, settings) == []
    (message,) = [r.getMessage() for r in caplog.records]
    assert "gateway local: m from local: the plan splits here 50%, here2 50%; its members give here 75% (3 replicas), " \
           "here2 25% (1 replicas)" in message
