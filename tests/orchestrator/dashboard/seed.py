"""A seeded ledger: three days of the hybrid fleet, so every chart of the dashboard has something to draw.

Serving: three ready llama-3.1-8b replicas recorded, whose `/metrics` a fake (an httpx
MockTransport) answers with the text a real CPU vLLM replica served (fixtures/, captured by
fixtures/capture.py; its model name relabelled), and the two real replay reports captured with it.

Day 0: the hybrid plan of the policy fixtures (on-prem, GCP, Azure spot), with its single-
cloud baseline. Day 1, noon: llama-3.1-8b moves from GCP H100 to AWS L4 spot and A10G
on-demand. Day 2: GCP re-prices its H100 nodes +10%. Every hour each replica's token
counters are scraped. The cloud bill is the ledger's own FOCUS export with AWS billed 8%
over and the others 1% under (an untagged line item too).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx

from orchestrator.billing import export_focus, import_focus
from orchestrator.dashboard.serving import ServingMonitor
from orchestrator.ledger import ReplicaTokens, TokenScrape, record_placement, record_prices, record_tokens, refresh_entries
from orchestrator.planner.placement import Placement
from orchestrator.replay.tables import ReplayRun
from orchestrator.state import ReplicaRecord, ReplicaStatus, StateStore

REPO = Path(__file__).resolve().parents[3]
PLAN = REPO / "tests" / "policies" / "fixtures" / "hybrid" / "plan.json"
ENVIRONMENT = "hybrid"
BASELINE_PER_HOUR = 215.3307  # single_cloud() on environments/hybrid.yaml: GCP H100, on-demand
PROMPT_PER_REPLICA_HOUR = 2_000_000
GENERATION_PER_REPLICA_HOUR = 400_000
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CAPTURED_MODEL = "tiny-llama"  # the model the fixtures were captured from
SERVED_MODEL = "llama-3.1-8b"
SCRAPES = ("vllm-metrics-0.txt", "vllm-metrics-busy.txt", "vllm-metrics-1.txt")  # each replica answers these in turn
SERVING_REPLICAS = {"http://l4-spot-0.example:8000": "aws-use1-l4-spot", "http://l4-spot-1.example:8000": "aws-use1-l4-spot",
                    "http://a100-0.example:8000": "fra-dc1-a100"}
SILENT_REPLICA = "http://a10g-0.example:8000"  # recorded ready, never answers


def first_plan() -> Placement:
    """The fixture plan, with one llama-3.1-8b replica fewer on-prem so its 24 GPUs hold all replicas."""
    return _plan({("llama-3.1-8b", "fra-dc1-a100"): 8}, {})


def moved_plan() -> Placement:
    """llama-3.1-8b leaves GCP for AWS: 5 replicas on L4 spot (3 nodes), 2 on A10G on-demand (1 node); its GCP routes
    go to the L4 spot pool."""
    return _plan({("llama-3.1-8b", "fra-dc1-a100"): 8, ("llama-3.1-8b", "gcp-usc1-h100"): 0,
                  ("llama-3.1-8b", "aws-use1-l4-spot"): 5, ("llama-3.1-8b", "aws-euc1-a10g"): 2},
                 {"aws-use1-l4-spot": 3, "aws-euc1-a10g": 1}, {("llama-3.1-8b", "gcp-usc1-h100"): "aws-use1-l4-spot"})


def _plan(replicas: dict[tuple[str, str], int], nodes: dict[str, int], routes: dict[tuple[str, str], str] | None = None) -> Placement:
    """The fixture plan with these (model, pool) replica counts and pool node counts changed, and routes of (model, pool)
    moved to another pool."""
    document = json.loads(PLAN.read_text())
    counts = {(r["model"], r["pool"]): r["count"] for r in document["replicas"]} | replicas
    document["replicas"] = [{"model": m, "pool": p, "count": c} for (m, p), c in counts.items() if c]
    for route in document["routes"]:
        route["pool"] = (routes or {}).get((route["model"], route["pool"]), route["pool"])
    for pool in document["pools"]:
        pool["nodes"] = nodes.get(pool["pool"], pool["nodes"])
        pool["cost_per_hour"] = pool["nodes"] * pool["cost_per_node_hour"]
    document["cost_per_hour"] = sum(p["cost_per_hour"] for p in document["pools"])
    return Placement.model_validate(document)


def seed_ledger(store: StateStore, end: dt.datetime, scratch: Path) -> dt.datetime:
    """Record three days up to `end` (hour-aligned inside); returns the start. `scratch` holds the bill files."""
    start = end.replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=3)
    first, moved = first_plan(), moved_plan()
    record_placement(store, ENVIRONMENT, first, start, baseline_cost_per_hour=BASELINE_PER_HOUR,
                     baseline_detail="gcp H100, on-demand, 4 regions")
    switch = start + dt.timedelta(days=1, hours=12)
    record_placement(store, ENVIRONMENT, moved, switch, baseline_cost_per_hour=BASELINE_PER_HOUR,
                     baseline_detail="gcp H100, on-demand, 4 regions")
    gcp = next(p for p in first.pools if p.pool == "gcp-usc1-h100")
    record_prices(store, ENVIRONMENT, {gcp.pool: round(gcp.cost_per_node_hour * 1.1, 4)}, start + dt.timedelta(days=2))
    totals: dict[str, list[float]] = {}
    at = start + dt.timedelta(minutes=30)
    while at < end:
        plan = first if at < switch else moved
        replicas = []
        for row in plan.replicas:
            for i in range(row.count):
                key = f"http://{row.pool}.example/{row.model}/{i}"
                total = totals.setdefault(key, [0.0, 0.0])
                total[0] += PROMPT_PER_REPLICA_HOUR
                total[1] += GENERATION_PER_REPLICA_HOUR
                replicas.append(ReplicaTokens(replica=key, model=row.model, pool=row.pool, provider=_provider(plan, row.pool),
                                              prompt_tokens_total=total[0], generation_tokens_total=total[1]))
        record_tokens(store, ENVIRONMENT, TokenScrape(at=at, replicas=replicas))
        at += dt.timedelta(hours=1)
    refresh_entries(store, ENVIRONMENT, end)
    _import_bill(store, scratch, start, end)
    seed_serving(store, end)
    return start


def captured_metrics(scrape: int) -> str:
    """The real replica's `/metrics` of its SCRAPE-th scrape (the last one for every later scrape), as served by
    the seeded model."""
    name = SCRAPES[min(scrape, len(SCRAPES) - 1)]
    return (FIXTURES / name).read_text().replace(f'model_name="{CAPTURED_MODEL}"', f'model_name="{SERVED_MODEL}"')


def captured_report(run: int) -> str:
    """A real replay report (fixtures/replay-report-RUN.json) as the seeded environment's."""
    document = json.loads((FIXTURES / f"replay-report-{run}.json").read_text())
    document["environment"] = ENVIRONMENT
    for model in document["models"]:
        model["model"] = SERVED_MODEL
    return json.dumps(document)


def seed_serving(store: StateStore, end: dt.datetime) -> None:
    """The serving replicas (ready) and the two captured replays, an hour and half an hour before `end`."""
    with store.session() as session:
        for url, pool in [*SERVING_REPLICAS.items(), (SILENT_REPLICA, "aws-euc1-a10g")]:
            session.add(ReplicaRecord(environment=ENVIRONMENT, model=SERVED_MODEL, pool=pool, provider=_provider(moved_plan(), pool),
                                      url=url, status=ReplicaStatus.ready))
        for run, ago in ((0, 60), (1, 30)):
            report = json.loads(captured_report(run))
            session.add(ReplayRun(environment=ENVIRONMENT, started_at=end - dt.timedelta(minutes=ago), trace="azure_llm_2023_code.csv",
                                  speed=report["speed"], scale=report["scale"], requests=report["requests"], errors=report["errors"],
                                  all_met=all(m["meets_slo"] for m in report["models"]), report_json=json.dumps(report)))


def fake_replicas() -> httpx.MockTransport:
    """A fake of the serving replicas' `/metrics`: each replica answers the captured texts in SCRAPES' order, the last
    one on every later scrape; the silent replica answers 503."""
    scrapes: dict[str, int] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        base = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        if base not in SERVING_REPLICAS or request.url.path != "/metrics":
            return httpx.Response(503)
        scrapes[base] = scrapes.get(base, -1) + 1
        return httpx.Response(200, text=captured_metrics(scrapes[base]))

    return httpx.MockTransport(answer)


def serving_monitor(store: StateStore) -> ServingMonitor:
    """The dashboard's serving monitor over the seeded replicas (their fake) and the moved plan."""
    return ServingMonitor(store, ENVIRONMENT, moved_plan, http=httpx.Client(transport=fake_replicas()))


def _provider(plan: Placement, pool: str) -> str:
    return next(p.provider for p in plan.pools if p.pool == pool)


def _import_bill(store: StateStore, scratch: Path, start: dt.datetime, end: dt.datetime) -> None:
    """The clouds' bill: the ledger's FOCUS export, AWS +8%, others -1%, plus an untagged support charge."""
    import duckdb

    scratch.mkdir(parents=True, exist_ok=True)
    ledger, bill = scratch / "ledger.csv", scratch / "bill.csv"
    export_focus(store, ENVIRONMENT, ledger, start, end)
    con = duckdb.connect()
    con.execute(f"""
        COPY (
            SELECT * REPLACE (BilledCost * CASE ProviderName WHEN 'AWS' THEN 1.08 ELSE 0.99 END AS BilledCost)
            FROM read_csv('{ledger}', all_varchar = false) WHERE ProviderName <> 'On-premises'
            UNION ALL BY NAME
            SELECT 25.0 AS BilledCost, 25.0 AS EffectiveCost, 25.0 AS ListCost, 'USD' AS BillingCurrency,
                   '111122223333' AS BillingAccountId, '{start:%Y-%m-%dT%H:%M:%SZ}' AS ChargePeriodStart,
                   '{start + dt.timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}' AS ChargePeriodEnd, 'Usage' AS ChargeCategory,
                   'AWS' AS ProviderName, 'Management and Governance' AS ServiceCategory
        ) TO '{bill}' (FORMAT csv, HEADER true)""")
    con.close()
    import_focus(store, ENVIRONMENT, bill)
