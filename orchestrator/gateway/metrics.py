"""Reading a vLLM replica's Prometheus metrics: token and request counters, queue gauges.

The counters are vLLM's own (`vllm:prompt_tokens_total`, `vllm:generation_tokens_total`,
`vllm:request_success_total`, `vllm:num_requests_waiting`, ...), summed over label sets
(engines, finish reasons) for one served model.
"""

from __future__ import annotations

from collections import defaultdict

import httpx

PROMPT_TOKENS = "vllm:prompt_tokens"
GENERATION_TOKENS = "vllm:generation_tokens"
REQUESTS_OK = "vllm:request_success"
WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"


def parse_metrics(text: str, model: str | None = None) -> dict[str, float]:
    """Sample values by family name (counters without `_total`), summed over labels; only `model`'s if given."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created") or (model and sample.labels.get("model_name", model) != model):
                continue
            if sample.name in (family.name, family.name + "_total"):
                totals[family.name] += sample.value
    return dict(totals)


def scrape(http: httpx.Client, base_url: str, model: str | None = None) -> dict[str, float]:
    """GET `base_url`/metrics (vLLM serves it without the API key) and parse it."""
    response = http.get(f"{base_url}/metrics")
    response.raise_for_status()
    return parse_metrics(response.text, model)
