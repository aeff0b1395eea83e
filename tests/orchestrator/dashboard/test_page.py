"""The spend page over a seeded ledger: every chart drawn, nothing loaded from elsewhere, empty windows said so."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from orchestrator.dashboard import render_page
from orchestrator.ledger import Window, open_ledger, spend_summary
from orchestrator.settings import load_settings
from tests.orchestrator.dashboard.conftest import NOW
from tests.orchestrator.dashboard.seed import ENVIRONMENT, SERVING_REPLICAS, SILENT_REPLICA, serving_monitor

CHARTS = ["spend-over-time", "cost-per-million-tokens", "planned-vs-billed", "capacity-share", "savings", "utilization"]
SERVING_CHARTS = ["ttft", "tpot", "request-rate", "queue", "kv-cache", "replay-attainment"]


def charts(html: str) -> dict[str, int]:
    return {name: int(points) for name, points in re.findall(r'data-chart="([^"]+)" data-points="(\d+)"', html)}


def marks(html: str) -> dict[str, int]:
    """Marks drawn in each chart's section."""
    parts = re.split(r'<section class="card" data-chart="([^"]+)"', html)[1:]  # name, body, name, body, ...
    return {parts[i]: parts[i + 1].split("</section>")[0].count('class="mark"') for i in range(0, len(parts), 2)}


def test_every_chart_has_data_over_the_seeded_ledger(seeded) -> None:
    summary = spend_summary(seeded, ENVIRONMENT, Window.last_days(30, NOW), NOW, 0.05)
    html = render_page(summary)
    assert list(charts(html)) == CHARTS
    assert all(points > 0 for points in charts(html).values()), charts(html)
    assert all(count > 0 for count in marks(html).values()), marks(html)
    # the move to AWS and the bill: AWS billed 8% over the ledger, the others 1% under
    statuses = {(r.provider, r.status) for r in summary.reconciliation if r.status != "unbilled"}
    assert ("aws", "over") in statuses and ("gcp", "ok") in statuses and ("azure", "ok") in statuses


def test_the_page_loads_nothing_from_elsewhere(seeded) -> None:
    html = render_page(spend_summary(seeded, ENVIRONMENT, Window.last_days(7, NOW), NOW, 0.05), refresh_s=60)
    assert re.findall(r"\b(?:src|href)\s*=\s*\"[^\"]*\"", html) == ['href="data:,"']  # an empty icon: no favicon request
    assert "url(" not in html and "@import" not in html
    assert set(re.findall(r"https?://[^\s\"'<]+", html)) == {"http://www.w3.org/2000/svg"}  # the SVG namespace only
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert '<meta http-equiv="refresh" content="60">' in html and "<script" not in html


def test_an_empty_ledger_says_so_in_every_chart() -> None:
    store = open_ledger(load_settings(), "empty")
    html = render_page(spend_summary(store, "empty", Window.last_days(30, NOW), NOW, 0.05))
    assert charts(html) == dict.fromkeys(CHARTS, 0)
    assert html.count("no data in this window") == len(CHARTS)
    assert "spend record" in html and "spend import" in html  # what to run to get data


@pytest.mark.parametrize("days", [1, 400])
def test_short_windows_are_hourly_and_long_ones_daily(seeded, days: int) -> None:
    summary = spend_summary(seeded, ENVIRONMENT, Window.last_days(days, NOW), NOW, 0.05)
    assert summary.bucket == ("hour" if days == 1 else "day")
    assert charts(render_page(summary))["spend-over-time"] > 0


def section(html: str, chart: str) -> str:
    return html.split(f'data-chart="{chart}"', 1)[1].split("</section>", 1)[0]


def test_the_serving_part_draws_latency_against_the_slo_rate_against_the_plan_and_replays(seeded) -> None:
    monitor = serving_monitor(seeded)
    spend = spend_summary(seeded, ENVIRONMENT, Window.last_days(30, NOW), NOW, 0.05)
    render_page(spend, serving=monitor.summary(NOW))  # the first view: since each replica started
    serving = monitor.summary(NOW + dt.timedelta(seconds=60))
    html = render_page(spend, serving=serving)
    assert list(charts(html)) == CHARTS + SERVING_CHARTS
    assert all(charts(html)[c] > 0 and marks(html)[c] > 0 for c in SERVING_CHARTS), (charts(html), marks(html))
    ttft = section(html, "ttft")
    assert "over the last 60 s" in ttft and SILENT_REPLICA.split("://")[1] in ttft  # the one not answering is named
    # one SLO line per latency row: 2 pools + 3 replicas + the latest replay; the hybrid plan's 800 ms, the replay's 5 s
    assert ttft.count('class="target"') == 2 + len(SERVING_REPLICAS) + 1
    assert "SLO p95: 800 ms" in ttft and "SLO p95: 5,000 ms" in ttft
    rate = section(html, "request-rate")
    spot = next(r for r in serving.rows if r.pool == "aws-use1-l4-spot" and r.replica is None)
    assert f"llama-3.1-8b · aws-use1-l4-spot (2 replicas) · measured: {spot.requests_per_s:.2f} req/s" in rate
    assert spot.requests_per_s > 0
    assert "llama-3.1-8b · aws-use1-l4-spot (2 replicas) · planned: 77.65 req/s" in rate
    assert "qwen2.5-32b · az-weu-h100-spot (no data)" in rate  # planned, nothing scraped
    replays = section(html, "replay-attainment")
    assert replays.count("<tr>") == 3 and ">missed<" in replays and ">met<" in replays


def test_without_replicas_or_replays_the_serving_part_says_what_to_run() -> None:
    from orchestrator.dashboard.serving import ServingMonitor

    store = open_ledger(load_settings(), "empty")
    html = render_page(spend_summary(store, "empty", Window.last_days(30, NOW), NOW, 0.05),
                       serving=ServingMonitor(store, "empty", lambda: None).summary(NOW))
    assert all(charts(html)[c] == 0 for c in SERVING_CHARTS)
    assert "orchestrator up" in html and "orchestrator replay" in html
