"""Serving figures per replica and pool over a window, the plan's SLO and promised rate, and stored replays."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import httpx
import pytest

from orchestrator.dashboard.serving import (
    Scrape, ServingMonitor, aggregate, pool_promises, recent_replays, slo_targets,
)
from orchestrator.dashboard.vllm_serving import parse_serving
from orchestrator.errors import InputError
from orchestrator.ledger import open_ledger
from orchestrator.ledger.tokens import ReplicaTarget
from orchestrator.planner.placement import Placement
from orchestrator.settings import load_settings
from tests.orchestrator.dashboard.conftest import NOW
from tests.orchestrator.dashboard.seed import (
    CAPTURED_MODEL, ENVIRONMENT, FIXTURES, SERVED_MODEL, SERVING_REPLICAS, SILENT_REPLICA, captured_metrics, serving_monitor,
)

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def target(n: int, pool: str = "local") -> ReplicaTarget:
    return ReplicaTarget(model=CAPTURED_MODEL, pool=pool, provider="local", url=f"http://127.0.0.1:{8000 + n}",
                         replica=f"http://127.0.0.1:{8000 + n}#{n}")


def scrape(n: int, which: int, seconds: float, pool: str = "local") -> Scrape:
    text = (FIXTURES / f"vllm-metrics-{which}.txt").read_text()
    return Scrape(T0 + dt.timedelta(seconds=seconds), target(n, pool), parse_serving(text, CAPTURED_MODEL))


def replayed(run: int) -> dict:
    return json.loads((FIXTURES / f"replay-report-{run}.json").read_text())


def finished(scrape: int, since: int) -> float:
    """Requests a seeded replica finished between its SINCE-th and SCRAPE-th scrape."""
    return parse_serving(captured_metrics(scrape)).finished - parse_serving(captured_metrics(since)).finished


def test_a_pool_adds_its_replicas_histograms_and_rates_over_the_window() -> None:
    first, second = scrape(1, 0, 0), scrape(2, 0, 0)
    latest = [scrape(1, 1, 20), scrape(2, 1, 40)]  # each served the second replay since its first scrape
    n = replayed(1)["requests"]
    pool, one, two = aggregate(latest, {first.target.replica: first, second.target.replica: second})
    assert (pool.replica, one.replica, two.replica) == (None, first.target.replica, second.target.replica)
    assert one.requests_per_s == pytest.approx(n / 20) and two.requests_per_s == pytest.approx(n / 40)
    assert pool.requests_per_s == pytest.approx(n / 20 + n / 40) and pool.replicas == 2
    assert one.window_s == 20 and pool.window_s == 40
    # the same requests twice over: the pool's quantiles are each replica's (summing doubles every bucket)
    assert pool.ttft_p95_ms == pytest.approx(one.ttft_p95_ms) and pool.tpot_p50_ms == pytest.approx(one.tpot_p50_ms)
    # and they are the second replay's alone, not the first's 13 requests too
    since_start = aggregate([scrape(1, 1, 20)], {})[0]
    assert since_start.window_s is None and since_start.requests_per_s is None
    assert one.ttft_p95_ms != pytest.approx(since_start.ttft_p95_ms)


def test_pools_are_separate_rows_and_gauges_are_summed_or_averaged() -> None:
    busy = scrape(3, 1, 10, pool="other")
    busy = dataclasses.replace(busy, serving=dataclasses.replace(busy.serving, waiting=4.0, kv_cache_use=0.6))
    rows = aggregate([scrape(1, 1, 10), busy, scrape(4, 1, 10, pool="other")], {})
    other = next(r for r in rows if r.pool == "other" and r.replica is None)
    assert [(r.pool, r.replica is None) for r in rows] == [("local", True), ("local", False),
                                                            ("other", True), ("other", False), ("other", False)]
    assert other.waiting == 4.0 and other.kv_cache_use == pytest.approx(0.3)


def test_a_replica_that_restarted_counts_its_whole_counter() -> None:
    before, after = scrape(1, 1, 0), scrape(1, 0, 13)  # 35 finished, then 13: the counter went back
    (pool, _) = aggregate([after], {before.target.replica: before})
    assert pool.requests_per_s == pytest.approx(13 / 13)


def test_the_plan_promise_per_pool_agrees_with_the_replays_promise_per_model() -> None:
    """Two routes: the dashboard's per-pool sum over the plan's routes, and replay's per-model promise, for the same plan
    (the captured local plan: one pool), must agree."""
    plan = Placement.model_validate_json((FIXTURES / "local-plan.json").read_text())
    (promise,) = pool_promises(plan)
    replayed = json.loads((FIXTURES / "replay-report-0.json").read_text())["models"][0]["plan"]
    assert promise.planned_rps == pytest.approx(replayed["planned_rps"])
    assert promise.capacity_rps == pytest.approx(replayed["capacity_rps"])
    assert [(t.model, t.ttft_p95_ms, t.tpot_p95_ms) for t in slo_targets(plan)] == [(CAPTURED_MODEL, 5000, 500)]
    assert pool_promises(None) == [] and slo_targets(None) == []


def test_a_split_route_and_unserved_demand_are_shared_out() -> None:
    plan = Placement.model_validate_json((FIXTURES / "local-plan.json").read_text())
    demand = plan.demand[0].model_copy(update={"rps": 10.0, "peak_factor": 1.5, "size_mix": []})
    route = plan.routes[0].model_copy(update={"bucket_rps": [], "share": 0.25})
    document = plan.model_dump() | {
        "demand": [demand.model_dump()], "routes": [route.model_dump(), route.model_copy(update={"pool": "b", "share": 0.75}).model_dump()],
        "unserved": [{"model": demand.model, "region": demand.region, "rps": 3.0, "reason": "capacity"}],
        "replicas": [*(r.model_dump() for r in plan.replicas), {"model": demand.model, "pool": "b", "count": 2}]}
    promises = {p.pool: p.planned_rps for p in pool_promises(Placement.model_validate(document))}
    assert promises == pytest.approx({"local": 0.25 * 12, "b": 0.75 * 12})  # 10 x 1.5 planned, 3 of it unserved


def test_replays_newest_first_and_an_unreadable_report_is_left_out(seeded, caplog) -> None:
    runs = recent_replays(seeded, ENVIRONMENT)
    assert [v.report.requests for v in runs] == [replayed(1)["requests"], replayed(0)["requests"]]
    assert runs[0].started_at > runs[1].started_at
    assert [v.report.models[0].meets_slo for v in runs] == [False, True]  # the second replay missed its TPOT SLO
    store = open_ledger(load_settings(), "broken")
    from orchestrator.replay.tables import ReplayRun

    with store.session() as session:
        session.add(ReplayRun(environment="broken", started_at=NOW, trace="t", speed=1, scale=1, requests=0, errors=0,
                              all_met=True, report_json=json.dumps({"schema_version": 1})))
    assert recent_replays(store, "broken") == [] and "not one this version reads" in caplog.text
    store.close()


def test_the_monitor_scrapes_ready_replicas_and_keeps_a_window(seeded) -> None:
    monitor = serving_monitor(seeded)
    first = monitor.summary(NOW)
    assert first.unreachable == [SILENT_REPLICA] and first.replicas_known == len(SERVING_REPLICAS) + 1
    assert {r.replica.split("#")[0] for r in first.rows if r.replica} == set(SERVING_REPLICAS)
    assert all(r.window_s is None and r.requests_per_s is None for r in first.rows)  # one scrape: since start
    assert {r.model for r in first.rows} == {SERVED_MODEL}
    second = monitor.summary(NOW + dt.timedelta(seconds=60))
    spot = next(r for r in second.rows if r.pool == "aws-use1-l4-spot" and r.replica is None)
    assert spot.replicas == 2 and spot.window_s == 60 and spot.requests_per_s == pytest.approx(2 * finished(1, 0) / 60)
    assert {t.model for t in second.targets} >= {SERVED_MODEL} and second.promises and len(second.replays) == 2
    later = monitor.summary(NOW + dt.timedelta(seconds=60 + monitor.window_s + 1))  # not viewed for longer than the window
    pool = next(r for r in later.rows if r.pool == "aws-use1-l4-spot" and r.replica is None)
    assert pool.window_s == monitor.window_s + 1  # since the last view
    assert pool.requests_per_s == pytest.approx(2 * finished(2, 1) / (monitor.window_s + 1))
    assert len(monitor.kept) == 2 * len(SERVING_REPLICAS)  # the first scrapes are forgotten
    monitor.close()


def test_an_unreadable_plan_leaves_out_the_targets_not_the_page(seeded, caplog) -> None:
    def broken() -> Placement | None:
        raise InputError("plans/latest.json: not a placement")

    monitor = ServingMonitor(seeded, ENVIRONMENT, broken, http=httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, text=captured_metrics(0)))))
    summary = monitor.summary(NOW)
    assert summary.targets == [] and summary.promises == [] and summary.rows
    assert "cannot be read" in caplog.text
