"""A handful of requests through the gateway, each attributed to the replica that answered.

`orchestrator up` runs this to show the local fleet working end to end: which replica
answered (the one whose `vllm:request_success` counter moved), how many tokens, how long,
and what the request cost at the replica's share of its pool's price.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from orchestrator.gateway.metrics import REQUESTS_OK, scrape
from orchestrator.providers.base import ObservedReplica

PROMPTS = (
    "Write a haiku about GPUs in three clouds.",
    "What is the cheapest place to serve a token?",
    "Explain tensor parallelism to a platform engineer.",
    "Name a reason to keep replicas in two regions.",
)
REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DemoAnswer:
    prompt: str
    text: str
    replica_url: str | None
    pid: int | None
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cost_usd: float


def ask_through_gateway(
    gateway_url: str, api_key: str, model: str, replicas: list[ObservedReplica],
    replica_usd_per_hour: float, max_tokens: int = 24,
) -> list[DemoAnswer]:
    """Send `PROMPTS` one at a time as chat completions; sequential, so each counter delta names one replica."""
    answers = []
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as http:
        for prompt in PROMPTS:
            before = {r.url: scrape(http, r.url, model).get(REQUESTS_OK, 0.0) for r in replicas}
            start = time.perf_counter()
            response = http.post(f"{gateway_url}/v1/chat/completions", headers=headers, json={
                "model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens})
            seconds = time.perf_counter() - start
            response.raise_for_status()
            body = response.json()
            moved = [r for r in replicas if scrape(http, r.url, model).get(REQUESTS_OK, 0.0) > before[r.url]]
            where = moved[0] if len(moved) == 1 else None
            answers.append(DemoAnswer(
                prompt=prompt, text=body["choices"][0]["message"]["content"] or "",
                replica_url=where.url if where else None, pid=where.pid if where else None,
                prompt_tokens=body["usage"]["prompt_tokens"], completion_tokens=body["usage"]["completion_tokens"],
                seconds=seconds, cost_usd=replica_usd_per_hour * seconds / 3600))
    return answers
