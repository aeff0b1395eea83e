"""docs/grafana-dashboard.json: valid, every panel on the `datasource` variable, every query valid PromQL, and every
metric it queries one that exists — gpufleet's on the dashboard's /metrics, vLLM's in the installed vLLM's source."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.orchestrator.dashboard.seed import REPO, serving_monitor
from tests.orchestrator.dashboard.test_server import serve
from tests.orchestrator.dashboard.test_vllm_serving import vllm_metric_names

DASHBOARD = json.loads((REPO / "docs" / "grafana-dashboard.json").read_text())
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# what Grafana puts in place of its variables before a query reaches Prometheus
VARIABLES = {"$__rate_interval": "5m", "$__interval_ms": "60000", "$__interval": "1m", "$environment": "prod",
             "$model": "(llama-3.1-8b|qwen2.5-32b)", "$pool": "(fra-dc1-a100|aws-use1-l4-spot)"}


def queries() -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query, the variables' own included."""
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in DASHBOARD["templating"]["list"]:
        if variable["type"] == "query":
            yield f"${variable['name']}", re.sub(r"^label_values\((.*), \w+\)$", r"\1", variable["query"]["query"])


def metric_names(prefix: str) -> set[str]:
    return {name for _, expr in queries() for name in re.findall(rf"\b{prefix}[a-z_]+\b", expr)}


def test_a_datasource_variable_and_every_panel_and_query_on_it() -> None:
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "__inputs" not in DASHBOARD and "DS_PROMETHEUS" not in json.dumps(DASHBOARD)
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert all(target["datasource"] == DATASOURCE for target in panel.get("targets", [])), panel["title"]
    assert all(v["datasource"] == DATASOURCE for v in variables.values() if v["type"] == "query")
    assert len({p["id"] for p in DASHBOARD["panels"]}) == len(DASHBOARD["panels"])


@pytest.mark.parametrize(("title", "expr"), list(queries()))
def test_every_query_is_promql(title: str, expr: str) -> None:
    for variable in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, VARIABLES[variable])
    assert "$" not in expr, f"{title}: a variable Grafana does not define: {expr}"
    promql_parser.parse(expr)  # raises on a syntax error


def test_latency_panels_take_quantiles_of_vllms_histograms_per_pool_and_draw_the_slo() -> None:
    latency = [p for p in DASHBOARD["panels"] if p["title"].startswith(("TTFT", "TPOT"))]
    assert len(latency) == 4
    for panel in latency:
        exprs = [t["expr"] for t in panel["targets"]]
        quantiles = [e for e in exprs if e.startswith("histogram_quantile(")]
        assert {e.split(",")[0] for e in quantiles} == {"histogram_quantile(0.5", "histogram_quantile(0.95"}, panel["title"]
        assert all("sum by (le, pool" in e and "_seconds_bucket{" in e for e in quantiles), panel["title"]
        assert any("gpufleet_model_slo_" in e for e in exprs), f"{panel['title']}: no SLO line"
    rate = next(p for p in DASHBOARD["panels"] if p["title"] == "Request rate per pool against the plan")
    assert any("gpufleet_planned_requests_per_second" in t["expr"] for t in rate["targets"])


def test_every_vllm_metric_queried_is_one_vllm_declares() -> None:
    queried = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in metric_names("vllm:")}
    assert {"vllm:time_to_first_token_seconds", "vllm:request_time_per_output_token_seconds", "vllm:num_requests_waiting",
            "vllm:kv_cache_usage_perc", "vllm:request_success"} <= queried
    assert queried <= vllm_metric_names(), queried - vllm_metric_names()


def test_every_gpufleet_metric_queried_is_one_the_dashboard_exposes(seeded) -> None:
    for url in serve(seeded, serving=serving_monitor(seeded)):
        exposed = {s.name for f in text_string_to_metric_families(httpx.get(url + "metrics").text) for s in f.samples}
    queried = metric_names("gpufleet_")
    assert queried and queried <= exposed, queried - exposed
