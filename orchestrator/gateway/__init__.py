"""The gateway: vllm-router behind an OpenAI front, its worker list, and the clients' API key."""

from orchestrator.gateway.api_key import ApiKey, gateway_api_key
from orchestrator.gateway.router import GatewayWorker, RouterClient, RouterError, router_command
from orchestrator.gateway.serve import gateway_command

__all__ = ["ApiKey", "GatewayWorker", "RouterClient", "RouterError", "gateway_api_key", "gateway_command",
           "router_command"]
