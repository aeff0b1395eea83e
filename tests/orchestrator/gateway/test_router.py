"""The real vllm-router binary driven through RouterClient, in front of fake workers (no model needed)."""

from __future__ import annotations

import time

import httpx
import pytest

from orchestrator.gateway import GatewayWorker, RouterClient, router_command
from orchestrator.gateway.metrics import parse_metrics
from orchestrator.providers.local.processes import free_port, kill_group, spawn
from tests.fakes.http_fake import json_response
from tests.fakes.openai_worker import FakeOpenAiWorker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    port = free_port()
    metrics_port = free_port(avoid={port})
    process = spawn(router_command("127.0.0.1", port, metrics_port, "round_robin"),
                    tmp_path_factory.mktemp("router") / "router.log", {})
    client = RouterClient(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 20
    while not client.healthy():
        assert process.poll() is None and time.monotonic() < deadline, "vllm-router did not start"
        time.sleep(0.1)
    yield client, f"http://127.0.0.1:{metrics_port}/metrics"
    client.close()
    kill_group(process.pid)
    process.wait(timeout=10)


def test_router_command_binds_loopback_with_workers_added_later():
    command = router_command("127.0.0.1", 1, 2, "round_robin")
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert "--enable-igw" in command and "--worker-urls" not in command


def test_workers_are_added_routed_to_by_model_and_removed(router):
    client, _ = router
    a, b = FakeOpenAiWorker("m", "a"), FakeOpenAiWorker("m", "b")
    with a.serve() as url_a, b.serve() as url_b:
        client.add(GatewayWorker(url=url_a, model_id="m"))
        client.add(GatewayWorker(url=url_b, model_id="m"))
        assert {w.url for w in client.workers()} == {url_a, url_b}
        answered = {httpx.post(f"{client.base_url}/v1/completions", json={"model": "m", "prompt": "x"}).json()["choices"][0]["text"]
                    for _ in range(4)}
        assert answered == {"a", "b"}
        client.remove(url_a)
        client.remove(url_a)  # idempotent
        assert [w.url for w in client.workers()] == [url_b]
        served = {httpx.post(f"{client.base_url}/v1/completions", json={"model": "m", "prompt": "x"}).json()["choices"][0]["text"]
                  for _ in range(3)}
        assert served == {"b"}
        client.remove(url_b)
    assert client.workers() == []


def test_the_router_exposes_prometheus_metrics(router):
    client, metrics_url = router
    worker = FakeOpenAiWorker("m", "a")
    with worker.serve() as url:
        client.add(GatewayWorker(url=url, model_id="m"))
        httpx.post(f"{client.base_url}/v1/completions", json={"model": "m", "prompt": "x"})
        client.remove(url)
    text = httpx.get(metrics_url).text
    assert parse_metrics(text).get("vllm_router_requests", 0) >= 1


def test_the_pinned_router_opens_a_workers_circuit_on_its_500s(router):
    """vllm-router 0.1.17 retries a replica's 500 five times and counts each against the replica's circuit
    breaker (its --cb-* and --disable-circuit-breaker flags do not reach workers added through the API),
    so one failing request makes the model 503 for everyone. docs/replicas.md says so; if this fails,
    the router changed: update the docs."""
    client, _ = router
    worker = FailingWorker("m", "a")
    with worker.serve() as url:
        client.add(GatewayWorker(url=url, model_id="m"))
        try:
            failed = httpx.post(f"{client.base_url}/v1/completions", json={"model": "m", "prompt": "fail"}, timeout=30)
            tries = sum(1 for r in worker.requests if r.path == "/v1/completions")
            after = httpx.post(f"{client.base_url}/v1/completions", json={"model": "m", "prompt": "ok"}, timeout=30)
        finally:
            client.remove(url)
    assert (failed.status_code, tries) == (500, 5)
    assert after.status_code == 503 and "circuits open" in after.text


class FailingWorker(FakeOpenAiWorker):
    """A fake worker whose completions of the prompt "fail" are 500s, as vLLM's internal errors are."""

    def handle(self, request):
        if request.path == "/v1/completions" and b'"fail"' in request.get_data():
            return json_response({"error": {"message": "internal", "type": "InternalServerError", "code": 500}}, 500)
        return super().handle(request)
