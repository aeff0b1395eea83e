"""Collecting tokens: ready replicas' vLLM counters scraped over HTTP into the ledger; a silent replica is skipped."""

from __future__ import annotations

import httpx

from orchestrator.ledger import collect_tokens
from orchestrator.ledger.tokens import replica_targets
from orchestrator.state import ReplicaRecord, ReplicaStatus

VLLM_METRICS = """# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="tiny-llama"} 1200.0
vllm:prompt_tokens_created{engine="0",model_name="tiny-llama"} 1.76e+09
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="tiny-llama"} 300.0
vllm:generation_tokens_total{engine="1",model_name="tiny-llama"} 20.0
"""


def replicas(store, *rows: tuple[str, ReplicaStatus, int | None]) -> None:
    with store.session() as session:
        for url, status, pid in rows:
            session.add(ReplicaRecord(environment="test", model="tiny-llama", pool="local", provider="local", url=url,
                                      pid=pid, status=status))


def vllm(request: httpx.Request) -> httpx.Response:
    if request.url.host == "broken":
        return httpx.Response(500, text="engine dead")
    return httpx.Response(200, text=VLLM_METRICS)


def test_ready_replicas_are_scraped_and_recorded_once(store) -> None:
    replicas(store, ("http://ok:8000", ReplicaStatus.ready, 41), ("http://broken:8000", ReplicaStatus.ready, 42),
             ("http://loading:8000", ReplicaStatus.starting, 43))
    assert [t.replica for t in replica_targets(store, "test")] == ["http://ok:8000#41", "http://broken:8000#42"]
    with httpx.Client(transport=httpx.MockTransport(vllm)) as http:
        assert collect_tokens(store, "test", http) == {("tiny-llama", "local"): (1200, 320)}  # summed over engines
        assert collect_tokens(store, "test", http) == {}  # counters unchanged: nothing new


def test_no_ready_replica_no_scrape(store) -> None:
    with httpx.Client(transport=httpx.MockTransport(vllm)) as http:
        assert collect_tokens(store, "test", http) == {}
