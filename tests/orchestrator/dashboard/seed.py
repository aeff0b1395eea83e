"""A seeded ledger: three days of the hybrid fleet, so every chart of the dashboard has something to draw.

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

from orchestrator.billing import export_focus, import_focus
from orchestrator.ledger import ReplicaTokens, TokenScrape, record_placement, record_prices, record_tokens, refresh_entries
from orchestrator.planner.placement import Placement
from orchestrator.state import StateStore

REPO = Path(__file__).resolve().parents[3]
PLAN = REPO / "tests" / "policies" / "fixtures" / "hybrid" / "plan.json"
ENVIRONMENT = "hybrid"
BASELINE_PER_HOUR = 215.3307  # single_cloud() on environments/hybrid.yaml: GCP H100, on-demand
PROMPT_PER_REPLICA_HOUR = 2_000_000
GENERATION_PER_REPLICA_HOUR = 400_000


def first_plan() -> Placement:
    """The fixture plan, with one llama-3.1-8b replica fewer on-prem so its 24 GPUs hold all replicas."""
    return _plan({("llama-3.1-8b", "fra-dc1-a100"): 8}, {})


def moved_plan() -> Placement:
    """llama-3.1-8b leaves GCP for AWS: 5 replicas on L4 spot (3 nodes), 2 on A10G on-demand (1 node)."""
    return _plan({("llama-3.1-8b", "fra-dc1-a100"): 8, ("llama-3.1-8b", "gcp-usc1-h100"): 0,
                  ("llama-3.1-8b", "aws-use1-l4-spot"): 5, ("llama-3.1-8b", "aws-euc1-a10g"): 2},
                 {"aws-use1-l4-spot": 3, "aws-euc1-a10g": 1})


def _plan(replicas: dict[tuple[str, str], int], nodes: dict[str, int]) -> Placement:
    """The fixture plan with these (model, pool) replica counts and pool node counts changed."""
    document = json.loads(PLAN.read_text())
    counts = {(r["model"], r["pool"]): r["count"] for r in document["replicas"]} | replicas
    document["replicas"] = [{"model": m, "pool": p, "count": c} for (m, p), c in counts.items() if c]
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
    return start


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
