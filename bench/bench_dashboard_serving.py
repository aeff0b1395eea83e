"""How fast the dashboard's serving part answers: scrape, parse and draw a large fleet's replicas.

    python -m bench.bench_dashboard_serving

Each page view scrapes every ready replica's vLLM `/metrics` (about 53 KB, some 50 metric
families) and draws latency, queue, KV cache and rate per replica and pool. A large fleet,
200 pools of 3 replicas, must still draw interactively. The target is 2 s per view, like the
spend page. The replicas are a fake (an httpx MockTransport) that answers the text a real CPU
vLLM replica served under load (tests/orchestrator/dashboard/fixtures/vllm-metrics-busy.txt),
so the measurement is the dashboard's own work, not the network. The baseline for the parse
is prometheus_client parsing the whole text, which the dashboard did before it kept only the
families it reads. Each line prints the measurement and its ratio to the target or baseline
(< 1.00 is better).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

import httpx

from bench.bench_inputs import best_of, report
from orchestrator.dashboard.page import render_page
from orchestrator.dashboard.serving import ServingMonitor
from orchestrator.dashboard.vllm_serving import parse_serving
from orchestrator.ledger import Window, open_ledger, spend_summary
from orchestrator.settings import load_settings
from orchestrator.state import ReplicaRecord, ReplicaStatus

REPO = Path(__file__).resolve().parents[1]
CAPTURED = REPO / "tests" / "orchestrator" / "dashboard" / "fixtures" / "vllm-metrics-busy.txt"
POOLS, PER_POOL = 200, 3
ENV = "bench"
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def whole_parse(text: str) -> None:
    """The baseline: every family of the text parsed."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        list(family.samples)


def main() -> None:
    print(__doc__.splitlines()[0])
    print(f"python {sys.version.split()[0]}; best of several runs\n")
    text = CAPTURED.read_text()
    whole = best_of(20, lambda: whole_parse(text))
    ours = best_of(20, lambda: parse_serving(text, "tiny-llama"))
    print(f"{'parse one replica /metrics (' + str(len(text) // 1024) + ' KB): serving families only':<66}"
          f"{ours * 1000:8.2f} ms   whole text {whole * 1000:6.2f} ms   ratio {ours / whole:5.2f}")
    with tempfile.TemporaryDirectory() as scratch:
        store = open_ledger(load_settings(), ENV, f"sqlite:///{Path(scratch) / 'state.db'}")
        with store.session() as session:
            for p in range(POOLS):
                for r in range(PER_POOL):
                    session.add(ReplicaRecord(environment=ENV, model="tiny-llama", pool=f"pool-{p:03d}", provider="aws",
                                              url=f"http://10.0.{p}.{r}:8000", status=ReplicaStatus.ready))
        fake = httpx.MockTransport(lambda request: httpx.Response(200, text=text))
        monitor = ServingMonitor(store, ENV, lambda: None, http=httpx.Client(transport=fake))
        views = iter(range(10**6))
        seconds = best_of(3, lambda: monitor.summary(NOW + dt.timedelta(minutes=next(views))))
        report(f"serving summary: scrape + parse + aggregate, {POOLS * PER_POOL} replicas", seconds, 2.0)
        spend = spend_summary(store, ENV, Window.last_days(30, NOW), NOW, 0.05)
        serving = monitor.summary(NOW + dt.timedelta(minutes=next(views)))
        report(f"page render with the serving part, {POOLS * PER_POOL} replicas", best_of(3, lambda: render_page(spend, serving=serving)), 0.5)
        monitor.close()
        store.close()


if __name__ == "__main__":
    main()
