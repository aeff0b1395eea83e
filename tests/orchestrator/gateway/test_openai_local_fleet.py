"""The gateway speaks the OpenAI API: the official `openai` client, sync and async, streaming and not,
against the real local fleet (a CPU vLLM replica of the tiny model behind the gateway: its OpenAI front and
vllm-router), and the key asked path by path on the gateway and on the replica.

One fleet serves the module (a start costs about a minute). Its replica runs with a tool-call
parser (`--enable-auto-tool-choice --tool-call-parser pythonic`): vLLM refuses `tools` without
one. Sampled with a `seed`, the tiny model's answers are the same on every run. The last test
kills the replica to see the gateway answer 503.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.orchestrator.providers.local.test_local_fleet import Fleet, running_fleet

pytestmark = pytest.mark.slow

MODEL = "tiny-llama"
MAX_MODEL_LEN = 512  # environments/local.yaml
VLLM_ARGS = "--enable-auto-tool-choice --tool-call-parser pythonic"
SEED = 3
VOTE = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
        "required": ["answer"], "additionalProperties": False}
# What the gateway must refuse without the key: its own routes, what vllm-router serves (worker API included)
# and what a replica serves (added from its OpenAPI document in the test).
GATEWAY_PATHS = {"/v1/models", "/v1/models/tiny-llama", "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                 "/workers", "/add_worker", "/remove_worker", "/list_workers", "/flush_cache", "/get_loads",
                 "/get_server_info", "/get_model_info", "/generate", "/v1/rerank", "/rerank", "/v1/responses",
                 "/liveness", "/readiness", "/health_generate", "/metrics", "/"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GPUFLEET_REPLICA_VLLM_ARGS", VLLM_ARGS)  # `up` passes it on to the supervisor and replicas
        with running_fleet(tmp_path_factory.mktemp("openai-home"), demo=False) as fleet:
            yield fleet


@pytest.fixture(scope="module")
def urls(fleet) -> tuple[str, str]:
    status = fleet.status()
    return status["gateway"]["url"], status["replicas"][0]["url"]


@pytest.fixture(scope="module")
def client(fleet) -> openai.OpenAI:
    return fleet.openai()


def chat(client: openai.OpenAI, **kwargs):
    return client.chat.completions.create(model=kwargs.pop("model", MODEL), messages=[{"role": "user", "content": "hi"}],
                                          **{"max_tokens": 8, **kwargs})


def test_models_are_the_openai_list_with_the_replicas_max_model_len(fleet, urls, client):
    gateway, replica = urls
    listed = client.models.list()
    assert [(m.id, m.object, m.max_model_len) for m in listed.data] == [(MODEL, "model", MAX_MODEL_LEN)]
    raw = httpx.get(f"{gateway}/v1/models", headers={"Authorization": f"Bearer {fleet.key}"}).json()
    own = httpx.get(f"{replica}/v1/models", headers={"Authorization": f"Bearer {fleet.key}"}).json()
    assert raw["object"] == "list" and raw["data"][0]["max_model_len"] == own["data"][0]["max_model_len"]
    assert client.models.retrieve(MODEL).max_model_len == MAX_MODEL_LEN
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_chat_and_text_completions_with_n_and_logprobs(client):
    reply = chat(client, n=2, logprobs=True, top_logprobs=2, extra_body={"ignore_eos": True})
    assert len(reply.choices) == 2 and reply.usage.completion_tokens == 2 * 8
    assert all(len(c.logprobs.content) == 8 and len(c.logprobs.content[0].top_logprobs) == 2 for c in reply.choices)
    text = client.completions.create(model=MODEL, prompt="The cheapest GPU is", max_tokens=6, n=2, logprobs=2,
                                     extra_body={"ignore_eos": True})
    assert len(text.choices) == 2 and all(len(c.logprobs.tokens) == 6 for c in text.choices)
    assert all(len(c.logprobs.top_logprobs[0]) >= 2 for c in text.choices)  # vLLM adds the sampled token


def test_streams_end_with_usage_when_asked(client):
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8
    assert all(c.usage is None for c in chunks[:-1]) and any(c.choices[0].delta.content for c in chunks[:-1])
    text = list(client.completions.create(model=MODEL, prompt="Stream me", max_tokens=5, stream=True,
                                          stream_options={"include_usage": True}, extra_body={"ignore_eos": True}))
    assert text[-1].usage.completion_tokens == 5 and "".join(c.choices[0].text for c in text if c.choices)


def test_the_async_client_streams_and_not_concurrently(fleet, urls):
    async def run() -> tuple[list[int], list[int]]:
        async with openai.AsyncOpenAI(base_url=f"{urls[0]}/v1", api_key=fleet.key, max_retries=0) as aclient:
            async def whole(i: int) -> int:
                reply = await aclient.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"q{i}"}], max_tokens=6,
                    extra_body={"ignore_eos": True})
                return reply.usage.completion_tokens

            async def streamed(i: int) -> int:
                stream = await aclient.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"s{i}"}], max_tokens=6, stream=True,
                    stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
                return [c async for c in stream][-1].usage.completion_tokens

            return (await asyncio.gather(*(whole(i) for i in range(8))),
                    await asyncio.gather(*(streamed(i) for i in range(8))))

    assert asyncio.run(run()) == ([6] * 8, [6] * 8)


def test_structured_output_follows_the_json_schema(client):
    reply = chat(client, max_tokens=200, seed=SEED,
                 response_format={"type": "json_schema", "json_schema": {"name": "vote", "schema": VOTE}})
    assert reply.choices[0].finish_reason == "stop"
    assert json.loads(reply.choices[0].message.content)["answer"] in ("yes", "no")


def test_a_named_function_call_returns_arguments_that_fit_its_parameters(client):
    tools = [{"type": "function", "function": {"name": "vote", "parameters": VOTE}}]
    reply = chat(client, max_tokens=200, seed=SEED, tools=tools,
                 tool_choice={"type": "function", "function": {"name": "vote"}})
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "vote" and json.loads(call.function.arguments)["answer"] in ("yes", "no")


def test_errors_are_openai_errors_with_the_right_status(fleet, urls, client):
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(openai.OpenAI(base_url=f"{urls[0]}/v1", api_key="wrong-key", max_retries=0))
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    for ask in (lambda: chat(client, model="no-such-model"),
                lambda: client.completions.create(model="no-such-model", prompt="x", max_tokens=2)):
        with pytest.raises(openai.NotFoundError) as unknown:
            ask()
        assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model=MODEL, prompt="tokens " * 3000, max_tokens=4)
    with pytest.raises(openai.NotFoundError) as no_embeddings:  # tiny-llama generates; vLLM has no such route for it
        client.embeddings.create(model=MODEL, input="x")
    assert no_embeddings.value.body["message"]  # OpenAI-shaped, though vLLM answered FastAPI's {"detail": ...}


def replica_paths(replica: str, key: str) -> set[tuple[str, str]]:
    """(method, path) of every route the replica's vLLM serves, from its own OpenAPI document."""
    document = httpx.get(f"{replica}/openapi.json", headers={"Authorization": f"Bearer {key}"}).json()
    return {(method.upper(), path.replace("{", "").replace("}", ""))
            for path, methods in document["paths"].items() for method in methods}


def test_every_replica_path_but_health_and_metrics_needs_the_key(fleet, urls):
    replica = urls[1]
    routes = replica_paths(replica, fleet.key) | {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/redoc")}
    assert {("POST", "/invocations"), ("POST", "/tokenize"), ("GET", "/v1/models")} <= routes
    with httpx.Client(base_url=replica, timeout=30) as http:
        for key in (None, "wrong-key"):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            answers = {(method, path): http.request(method, path, headers=headers, json={}).status_code
                       for method, path in routes}
            assert {route for route, status in answers.items() if status != 401} == {("GET", "/health"), ("GET", "/metrics")}
        authorized = {"Authorization": f"Bearer {fleet.key}"}
        assert http.post("/tokenize", headers=authorized, json={"model": MODEL, "prompt": "hi"}).json()["count"] > 0


def test_every_gateway_path_but_health_needs_the_key(fleet, urls):
    gateway, replica = urls
    paths = (GATEWAY_PATHS | {path for _, path in replica_paths(replica, fleet.key)}) - {"/health"}
    with httpx.Client(base_url=gateway, timeout=30) as http:
        for key in (None, "wrong-key"):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            answers = {(method, path): http.request(method, path, headers=headers, json={}).status_code
                       for path in paths for method in ("GET", "POST", "DELETE")}
            assert {route for route, status in answers.items() if status != 401} == set()
            assert http.get("/health", headers=headers).status_code == 200
        authorized = {"Authorization": f"Bearer {fleet.key}"}
        assert http.post("/workers", headers=authorized, json={"url": "http://127.0.0.1:9", "model_id": MODEL}).status_code == 405
        assert [w["url"] for w in http.get("/workers", headers=authorized).json()["workers"]] == [replica]


def test_with_no_replica_the_gateway_answers_503_with_retry_after(fleet, urls, client):
    """Last: it kills the replica (the supervisor restarts it; the module's `down` stops everything)."""
    os.kill(fleet.status()["replicas"][0]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        try:
            chat(client, max_tokens=1)
        except openai.InternalServerError as exc:
            unavailable = exc
            break
        assert time.monotonic() < deadline, "the gateway kept answering with its replica dead"
        time.sleep(0.2)
    assert unavailable.status_code == 503 and unavailable.response.headers["retry-after"] == "5"
    assert unavailable.code == "no_replica"
    deadline = time.monotonic() + 10
    while client.models.list().data:  # served models only: none now
        assert time.monotonic() < deadline
        time.sleep(0.2)
