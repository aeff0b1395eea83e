"""Reading vLLM's Prometheus text: one model's counters summed over label sets, `_created` ignored."""

from __future__ import annotations

from orchestrator.gateway.metrics import parse_metrics


def test_parse_metrics_sums_one_models_counters_over_labels():
    text = (
        '# TYPE vllm:generation_tokens_total counter\n'
        'vllm:generation_tokens_total{engine="0",model_name="a"} 10.0\n'
        'vllm:generation_tokens_total{engine="1",model_name="a"} 5.0\n'
        'vllm:generation_tokens_total{engine="0",model_name="b"} 99.0\n'
        'vllm:generation_tokens_created{engine="0",model_name="a"} 1.7e9\n'
        '# TYPE vllm:num_requests_waiting gauge\n'
        'vllm:num_requests_waiting{engine="0",model_name="a"} 3.0\n'
    )
    assert parse_metrics(text, "a") == {"vllm:generation_tokens": 15.0, "vllm:num_requests_waiting": 3.0}
