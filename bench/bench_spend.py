"""How fast spend answers: the dashboard and report over a year of ledger, FOCUS import, accrual.

    python -m bench.bench_spend

A year of hourly ledger entries for 200 pools (1.75M rows, generated straight into a
scratch SQLite state database) is what a large fleet's dashboard reads; it must answer
interactively (target: 2 s per page, cold process aside). A provider's monthly FOCUS export
of a large account is around a million rows; importing it must take seconds (target:
250k rows/s, CSV and Parquet). Exporting the ledger is a batch job (target: 50k rows/s, a
year of 200 pools in well under a minute). Accrual turns applied placements into entries; it
usually covers the last hour or two, but a late fact (a price corrected a week back) re-accrues
every hour since (target: 20k entries/s, a week of 200 pools in under 2 s). Each line prints
the measurement and its ratio to the target (< 1.00 meets it).
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from bench.bench_inputs import best_of, report
from orchestrator.billing import export_focus, import_focus
from orchestrator.dashboard import Dashboard, DashboardServer, render_page
from orchestrator.ledger import Window, open_ledger, record_placement, refresh_entries, spend_summary
from orchestrator.ledger.entries import sum_days
from orchestrator.ledger.tables import LedgerApply, LedgerEntry, LedgerWatermark, PoolSpan, PricePoint, ReplicaSpan
from orchestrator.planner.placement import Placement
from orchestrator.settings import load_settings
from orchestrator.state import StateStore

POOLS = 200
MODELS = ("llama-3.1-8b", "llama-3.3-70b", "qwen2.5-32b", "mistral-7b", "gemma-2-27b")
SHAPES = (("aws", "on_demand", "H100", 8, 55.04), ("aws", "spot", "L4", 4, 2.0), ("gcp", "on_demand", "H100", 8, 43.07),
          ("gcp", "spot", "L4", 4, 1.98), ("azure", "spot", "H100", 8, 23.62), ("onprem", "owned", "A100-80GB", 8, 10.43))
END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
YEAR_H = 365 * 24
FOCUS_ROWS = 1_000_000
ENV = "bench"


def pool_shape(i: int) -> tuple[str, str, str, str, int, float]:
    provider, capacity, gpu, gpus, price = SHAPES[i % len(SHAPES)]
    return f"{provider}-{capacity}-{i:03d}", provider, capacity, gpu, gpus, price


def generate_year(store: StateStore) -> int:
    """One entry per hour and pool for a year (model by pool, 1-4 nodes on a daily cycle), plus today's spans and prices."""
    rng = random.Random(7)
    start = END - dt.timedelta(hours=YEAR_H)
    pools = [pool_shape(i) for i in range(POOLS)]
    table = LedgerEntry.__table__
    with store.engine.begin() as connection:
        for h in range(YEAR_H):
            hour = start + dt.timedelta(hours=h)
            rows = []
            for i, (name, provider, capacity, gpu, gpus, price) in enumerate(pools):
                nodes = 1 + (h // 24 + i) % 4
                used = nodes * gpus * rng.uniform(0.5, 1.0)
                rows.append({"environment": ENV, "hour": hour, "day": hour.date(), "pool": name, "model": MODELS[i % len(MODELS)],
                             "provider": provider, "region": "r", "capacity": capacity, "gpu": gpu, "node_hours": nodes,
                             "gpu_hours": nodes * gpus, "used_gpu_hours": used, "cost_usd": nodes * price,
                             "prompt_tokens": int(used * 900_000), "generation_tokens": int(used * 200_000)})
            connection.execute(insert(table), rows)
        connection.execute(insert(PoolSpan.__table__), [
            {"environment": ENV, "pool": n, "provider": p, "region": "r", "capacity": c, "gpu": g, "gpus_per_node": k, "nodes": 2,
             "started_at": END - dt.timedelta(hours=1), "ended_at": None} for n, p, c, g, k, _ in pools])
        connection.execute(insert(ReplicaSpan.__table__), [
            {"environment": ENV, "model": MODELS[i % len(MODELS)], "pool": n, "count": k, "gpus_per_replica": 1,
             "started_at": END - dt.timedelta(hours=1), "ended_at": None} for i, (n, _, _, _, k, _) in enumerate(pools)])
        connection.execute(insert(PricePoint.__table__), [
            {"environment": ENV, "pool": n, "effective_from": start, "cost_per_node_hour": price, "source": "plan"}
            for n, _, _, _, _, price in pools])
        connection.execute(insert(LedgerApply.__table__), [
            {"environment": ENV, "at": start + dt.timedelta(days=d), "placement_sha256": f"{d:064x}", "cost_per_hour": 4000.0,
             "baseline_cost_per_hour": 5200.0, "baseline_detail": "generated"} for d in range(365)])
        connection.execute(insert(LedgerWatermark.__table__), [{"environment": ENV, "valid_until": END}])
    return YEAR_H * POOLS


def sum_year(store: StateStore) -> None:
    """The daily sums of the generated year (what `refresh_entries` keeps current day by day)."""
    with store.session() as session:
        sum_days(session, ENV, (END - dt.timedelta(hours=YEAR_H)).date())


def generated_focus(directory: Path) -> tuple[Path, Path]:
    """A million FOCUS 1.0 rows (hourly GPU usage over a month, three clouds, tagged) as CSV and Parquet."""
    import duckdb

    csv, parquet = directory / "focus.csv", directory / "focus.parquet"
    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE focus AS
        SELECT round(random() * 50, 6) AS BilledCost, round(random() * 50, 6) AS EffectiveCost,
               round(random() * 60, 6) AS ListCost, 'USD' AS BillingCurrency, '1234567890' || (i % 3) AS BillingAccountId,
               strftime(TIMESTAMP '2026-10-01' + to_hours(CAST(i % 720 AS BIGINT)), '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodStart,
               strftime(TIMESTAMP '2026-10-01' + to_hours(CAST(i % 720 + 1 AS BIGINT)), '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodEnd,
               'Usage' AS ChargeCategory, ['AWS', 'Google Cloud', 'Microsoft'][i % 3 + 1] AS ProviderName,
               'Compute' AS ServiceCategory, 'i-' || i AS ResourceId, 'Standard' AS PricingCategory,
               '{{"env": "prod", "pool": "pool-' || (i % 200) || '"}}' AS Tags
        FROM range({FOCUS_ROWS}) AS t(i)""")
    con.execute(f"COPY focus TO '{csv}' (FORMAT csv, HEADER true)")
    con.execute(f"COPY focus TO '{parquet}' (FORMAT parquet)")
    con.close()
    return csv, parquet


def accrual_rate(scratch: Path) -> tuple[float, int]:
    """Seconds and entries to accrue a month in which all 200 pools change every hour (record_placement each hour)."""
    store = open_ledger(load_settings(), "accrual", f"sqlite:///{scratch / 'accrual.db'}")
    start = END - dt.timedelta(days=30)
    for h in range(30 * 24):
        pools, replicas, capacity = [], [], []
        for i in range(POOLS):
            name, provider, cap, gpu, gpus, price = pool_shape(i)
            nodes = 1 + (h + i) % 3
            pools.append({"pool": name, "provider": provider, "region": "r", "gpu": gpu, "capacity": cap, "gpus_per_node": gpus,
                          "min_nodes": 0, "max_nodes": 4, "cost_per_node_hour": price, "nodes": nodes,
                          "cost_per_hour": nodes * price})
            replicas.append({"model": MODELS[i % len(MODELS)], "pool": name, "count": nodes * gpus})
            capacity.append({"model": MODELS[i % len(MODELS)], "pool": name, "gpus_per_replica": 1, "rps_per_replica": 1.0})
        placement = Placement.model_validate({
            "environment": "accrual", "cost_per_hour": sum(p["cost_per_hour"] for p in pools), "lower_bound_per_hour": 0.0,
            "solver": {"status": "optimal", "seconds": 0.0}, "models": [], "demand": [], "pools": pools,
            "capacity": capacity, "latency": [], "replicas": replicas, "routes": []})
        record_placement(store, "accrual", placement, start + dt.timedelta(hours=h))
    began = time.perf_counter()
    entries = refresh_entries(store, "accrual", END)
    seconds = time.perf_counter() - began
    store.close()
    return seconds, entries


def rate_line(name: str, rows: int, seconds: float, target_per_s: float) -> None:
    rate = rows / seconds
    print(f"{name:<58} {rate / 1000:10.0f} k/s  target {target_per_s / 1000:8.0f} k/s  ratio {target_per_s / rate:5.2f}"
          f"   ({rows:,} in {seconds:.2f} s)")


def main() -> None:
    print(__doc__.splitlines()[0])
    print(f"python {sys.version.split()[0]}; best of several runs unless said\n")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        store = open_ledger(load_settings(), ENV, f"sqlite:///{scratch / 'state.db'}")
        began = time.perf_counter()
        rows = generate_year(store)
        print(f"{'':<4}-> generated {rows:,} ledger entries (a year x {POOLS} pools) in {time.perf_counter() - began:.1f} s")
        report("day sums: a year of entries (INSERT ... SELECT ... GROUP BY)", best_of(1, lambda: sum_year(store)), 30.0)
        window = Window(start=END - dt.timedelta(days=365), end=END)
        summary = spend_summary(store, ENV, window, END, 0.05)
        report("summary: a year, 200 pools (one grouped scan)", best_of(3, lambda: spend_summary(store, ENV, window, END, 0.05)), 2.0)
        report("page render: a year, 200 pools (SVG, HTML)", best_of(3, lambda: render_page(summary)), 0.5)
        report_file = scratch / "report.html"
        report("spend report --html: a year (summary + page + write)", best_of(3, lambda: report_file.write_text(
            render_page(spend_summary(store, ENV, window, END, 0.05)))), 2.0)
        print(f"{'':<4}-> {report_file.stat().st_size / 1024:.0f} KiB, self-contained")
        server = DashboardServer(("127.0.0.1", 0), Dashboard(store, ENV, 365, 60, 0.05, now=lambda: END))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with httpx.Client(timeout=60) as http:
            report("dashboard GET /: a year, 200 pools", best_of(3, lambda: http.get(server.url).raise_for_status()), 2.0)
            report("dashboard GET /metrics: 200 pools", best_of(3, lambda: http.get(server.url + "metrics").raise_for_status()), 0.5)
        server.shutdown()
        server.server_close()
        began = time.perf_counter()
        exported = export_focus(store, ENV, scratch / "ledger.parquet")
        rate_line("export: the year as FOCUS Parquet", exported, time.perf_counter() - began, 50_000)
        store.close()

        csv, parquet = generated_focus(scratch)
        for name, path in (("CSV", csv), ("Parquet", parquet)):
            target = open_ledger(load_settings(), ENV, f"sqlite:///{scratch / f'import-{name}.db'}")
            seconds = best_of(3, lambda path=path, target=target: import_focus(target, "prod", path))
            rate_line(f"FOCUS import: {FOCUS_ROWS:,} rows, {name} ({path.stat().st_size / 2**20:.0f} MiB)", FOCUS_ROWS, seconds, 250_000)
            target.close()

        seconds, entries = accrual_rate(scratch)
        rate_line("accrual: a month, 200 pools changing every hour", entries, seconds, 20_000)


if __name__ == "__main__":
    main()
