"""The local provider: supervised CPU (or GPU) vLLM processes on this machine behind vllm-router."""

from orchestrator.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
