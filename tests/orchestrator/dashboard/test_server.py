"""The dashboard server: the page, Prometheus metrics that match the ledger, and the token off loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from orchestrator.dashboard import Dashboard, DashboardServer, dashboard_token
from orchestrator.dashboard.serving import ServingMonitor
from orchestrator.ledger import current_rates
from orchestrator.settings import load_settings
from tests.orchestrator.dashboard.conftest import NOW
from tests.orchestrator.dashboard.seed import ENVIRONMENT, captured_report, serving_monitor


def serve(store, token: str | None = None, serving: ServingMonitor | None = None) -> Iterator[str]:
    server = DashboardServer(("127.0.0.1", 0), Dashboard(store, ENVIRONMENT, 30, 60, 0.05, token, now=lambda: NOW, serving=serving))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def url(seeded) -> Iterator[str]:
    yield from serve(seeded)


def test_the_page_and_health(url: str, seeded) -> None:
    page = httpx.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.text.count("data-chart=") == 6  # spend only: no serving monitor
    for served in serve(seeded, serving=serving_monitor(seeded)):
        assert httpx.get(served).text.count("data-chart=") == 12
    assert httpx.get(url + "healthz").text == "ok\n"
    assert httpx.get(url + "nowhere").status_code == 404


def test_metrics_give_cost_per_hour_per_pool(url: str, seeded) -> None:
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(url + "metrics").text)}
    cost = {s.labels["pool"]: s.value for s in families["gpufleet_pool_cost_usd_per_hour"].samples}
    expected = {r.pool: r.cost_per_hour for r in current_rates(seeded, ENVIRONMENT, NOW)}
    assert cost == pytest.approx(expected) and "aws-use1-l4-spot" in cost
    assert sum(s.value for s in families["gpufleet_model_cost_usd_per_hour"].samples) == pytest.approx(sum(expected.values()))
    assert families["gpufleet_baseline_cost_usd_per_hour"].samples[0].value == pytest.approx(215.3307)
    tokens = {(s.labels["pool"], s.labels["kind"]) for s in families["gpufleet_tokens"].samples if s.name == "gpufleet_tokens_total"}
    assert ("aws-use1-l4-spot", "generation") in tokens


def test_a_token_is_required_when_one_is_set(seeded) -> None:
    for url in serve(seeded, token="s3cret"):
        assert httpx.get(url).status_code == 401
        assert httpx.get(url + "?token=wrong").status_code == 401
        assert httpx.get(url + "?token=s3cret").status_code == 200
        assert httpx.get(url + "metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_no_token_on_loopback_and_one_everywhere_else(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert dashboard_token(settings, "127.0.0.1") == (None, False) and dashboard_token(settings, "localhost") == (None, False)
    token, generated = dashboard_token(settings, "0.0.0.0")
    assert generated and len(token) >= 32
    chosen = settings.model_copy(update={"dashboard_token": SecretStr("mine")})
    assert dashboard_token(chosen, "10.0.0.5") == ("mine", False)


def test_metrics_give_the_plans_slos_and_rates_and_the_latest_replay(seeded) -> None:
    for url in serve(seeded, serving=serving_monitor(seeded)):
        families = {f.name: f for f in text_string_to_metric_families(httpx.get(url + "metrics").text)}
    slo = {s.labels["model"]: s.value for s in families["gpufleet_model_slo_ttft_p95_seconds"].samples}
    assert slo == {"llama-3.1-8b": 0.8, "qwen2.5-32b": 2.0, "llama-3.3-70b": 2.0}  # the moved plan's SLOs, in seconds
    planned = {s.labels["pool"]: s.value for s in families["gpufleet_planned_requests_per_second"].samples
               if s.labels["model"] == "llama-3.1-8b"}
    assert planned["aws-use1-l4-spot"] == pytest.approx(15 + 25 + 40 * 0.941138)  # chicago, san-francisco, most of virginia
    newest = json.loads(captured_report(1))["models"][0]
    replay = {(s.labels["model"], s.labels["quantile"]): s.value for s in families["gpufleet_replay_tpot_seconds"].samples}
    assert replay[("llama-3.1-8b", "0.95")] == pytest.approx(newest["tpot_p95_ms"] / 1000)
    assert families["gpufleet_replay_attainment_ratio"].samples[0].value == pytest.approx(newest["attainment"])


@pytest.mark.parametrize(("host", "status"), [
    ("127.0.0.1", 200), ("localhost:8765", 200), ("LOCALHOST", 200), ("[::1]:8765", 200),
    ("evil.example.com", 403), ("evil.example.com:8765", 403), ("127.0.0.1.evil.example", 403), ("", 403),
])
def test_loopback_dashboard_checks_the_host_header(url: str, host: str, status: int) -> None:
    """DNS rebinding: a page whose own name now resolves to 127.0.0.1 still sends its own name as Host."""
    assert httpx.get(url + "healthz", headers={"Host": host}).status_code == status
