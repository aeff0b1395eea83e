"""The gateway: vllm-router in front of a site's replicas, its worker list, and the clients' API key."""

from orchestrator.gateway.api_key import ApiKey, gateway_api_key
from orchestrator.gateway.router import GatewayWorker, RouterClient, RouterError, router_command

__all__ = ["ApiKey", "GatewayWorker", "RouterClient", "RouterError", "gateway_api_key", "router_command"]
