"""The dashboard in a real browser: headless Chromium over a seeded ledger, driven by Playwright (node).

Every chart must have data and visible marks — the serving part's too, drawn from a real
replica's captured /metrics (tests/orchestrator/dashboard/seed.py) on the second view, with
the SLO lines visible — the console must stay free of errors, and nothing may be fetched
from anywhere but the dashboard itself. Screenshots of the live page
and of the static report go to test-artifacts/ (gitignored). Without Chromium, node or
playwright-core the test skips and says how to install them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from orchestrator.dashboard import Dashboard, DashboardServer, render_page
from orchestrator.ledger import Window, open_ledger, spend_summary
from orchestrator.settings import load_settings
from tests.orchestrator.dashboard.seed import ENVIRONMENT, seed_ledger, serving_monitor

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent.parent / "test-artifacts"
CHARTS = {"spend-over-time", "cost-per-million-tokens", "planned-vs-billed", "capacity-share", "savings", "utilization"}
SERVING_CHARTS = {"ttft", "tpot", "request-rate", "queue", "kv-cache", "replay-attainment"}
WITH_TARGETS = {"ttft", "tpot", "replay-attainment"}
BROWSER_TIMEOUT_S = 120


def chromium() -> str | None:
    """Debian's Chromium (or the binary GPUFLEET_CHROMIUM names); Playwright never downloads one here."""
    configured = os.environ.get("GPUFLEET_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


def missing() -> str | None:
    """Why the browser test cannot run here, with the set-up line that fixes it; None when it can."""
    if chromium() is None:
        return "no Chromium: apt-get install -y chromium (or set GPUFLEET_CHROMIUM to its binary)"
    if shutil.which("node") is None:
        return "no node: apt-get install -y nodejs npm"
    if not (HERE / "node_modules" / "playwright-core" / "package.json").exists():
        return "no playwright-core: npm ci --prefix tests/browser"
    return None


@pytest.mark.slow
@pytest.mark.skipif(missing() is not None, reason=missing() or "")
def test_every_chart_draws_in_chromium_without_console_errors(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    store = open_ledger(load_settings(), ENVIRONMENT)
    seed_ledger(store, now, tmp_path / "bill")
    report = tmp_path / "report.html"
    report.write_text(render_page(spend_summary(store, ENVIRONMENT, Window.last_days(30, now), now, 0.05)))
    views = itertools.count()  # each page view a minute after the one before
    dashboard = Dashboard(store, ENVIRONMENT, 30, 60, 0.05, now=lambda: now + dt.timedelta(minutes=next(views)),
                          serving=serving_monitor(store))
    dashboard.page()  # the first view: since each replica started; the browser's is the next, over the minute between
    server = DashboardServer(("127.0.0.1", 0), dashboard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        run = subprocess.run(["node", str(HERE / "dashboard.mjs"), chromium(), server.url, str(report), str(ARTIFACTS)],
                             capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False)
    finally:
        server.shutdown()
        server.server_close()
        store.close()
    assert run.returncode == 0, run.stderr
    pages = {p["page"]: p for p in json.loads(run.stdout)}
    assert pages["dashboard"]["status"] == 200
    for page in pages.values():
        assert page["problems"] == [], page["page"]
        assert {c["chart"] for c in page["charts"]} == (CHARTS | SERVING_CHARTS if page["page"] == "dashboard" else CHARTS)
        empty = [c["chart"] for c in page["charts"] if c["points"] == 0 or c["marks"] == 0]
        assert not empty, f"{page['page']}: charts without data: {empty}"
    lines = {c["chart"] for c in pages["dashboard"]["charts"] if c["targets"] > 0}
    assert lines == WITH_TARGETS, lines
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000 and (ARTIFACTS / "report.png").exists()
