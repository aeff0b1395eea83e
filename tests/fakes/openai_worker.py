"""A fake vLLM worker for gateway tests that need no model: `/health`, `/v1/models`, `/metrics`, and a
non-streaming `/v1/completions` that echoes which worker answered. Not a model server."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from tests.fakes.http_fake import FakeHttpApi, json_response


class FakeOpenAiWorker(FakeHttpApi):
    def __init__(self, model: str = "fake-model", name: str = "worker") -> None:
        super().__init__()
        self.model = model
        self.name = name

    def handle(self, request: Request) -> Response:
        if request.path == "/health":
            return Response("", 200)
        if request.path == "/v1/models":
            return json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})
        if request.path == "/metrics":
            return Response(f'vllm:request_success_total{{model_name="{self.model}"}} 1.0\n', 200, content_type="text/plain")
        if request.path == "/v1/completions":
            return json_response({"object": "text_completion", "model": self.model,
                                  "choices": [{"index": 0, "text": self.name, "finish_reason": "length"}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        return json_response({"error": {"message": "not found", "type": "NotFoundError", "code": 404}}, 404)
