"""The gateway process (`python -m orchestrator.gateway`): vllm-router and its OpenAI front, as one unit.

It starts vllm-router as its child on `--router-port` of 127.0.0.1 (the worker API is
reached there only), waits for it, then serves the front (front.py) on `--host:--port` with
uvicorn (httptools, uvloop). Both share one process group: whoever stops the gateway
stops both. If the router exits, the front stops too and the process exits 1, so a
supervisor restarts the pair. On SIGTERM the front finishes in-flight requests (up to
`GRACEFUL_S`), then the router is stopped. The API key is `GPUFLEET_API_KEY` (required).
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from orchestrator.gateway.router import RouterClient, router_command
from orchestrator.settings import load_settings

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
ROUTER_START_TIMEOUT_S = 20.0
GRACEFUL_S = 30
MODULE = "orchestrator.gateway"


def gateway_command(host: str, port: int, router_port: int, metrics_port: int, policy: str,
                    traffic_file: Path | None = None) -> list[str]:
    """The gateway's command line: clients use `host:port`; the router's own port stays on 127.0.0.1."""
    command = [sys.executable, "-m", MODULE, "--host", host, "--port", str(port), "--router-port", str(router_port),
               "--metrics-port", str(metrics_port), "--policy", policy]
    return command + (["--traffic-file", str(traffic_file)] if traffic_file else [])


def _start_router(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    router = subprocess.Popen(router_command(LOOPBACK, args.router_port, args.metrics_port, args.policy))
    client = RouterClient(f"http://{LOOPBACK}:{args.router_port}")
    deadline = time.monotonic() + ROUTER_START_TIMEOUT_S
    try:
        while not client.healthy():
            if router.poll() is not None or time.monotonic() > deadline:
                router.kill()
                raise SystemExit(f"vllm-router did not start on {LOOPBACK}:{args.router_port} (exit {router.wait()})")
            time.sleep(0.1)
    finally:
        client.close()
    return router


def _stop(router: subprocess.Popen[bytes]) -> None:
    if router.poll() is None:
        router.terminate()
        try:
            router.wait(timeout=5)
        except subprocess.TimeoutExpired:
            router.kill()


def main(argv: list[str] | None = None) -> None:
    import uvicorn  # here, not above: `gateway_command` is imported by every CLI command through the supervisor

    from orchestrator.gateway.front import GatewayFront

    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--router-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True, help="the router's Prometheus metrics (127.0.0.1)")
    parser.add_argument("--policy", default="round_robin", help="vllm-router's load-balancing policy")
    parser.add_argument("--traffic-file", type=Path, help="JSON of each model's weight per version (lanes.py), re-read every second")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    key = load_settings().api_key
    if key is None or not key.get_secret_value():
        logger.error("GPUFLEET_API_KEY is not set. To fix: set it to the key clients must send "
                     "(`orchestrator up` does, from the environment's key file)")
        sys.exit(2)
    router = _start_router(args)
    front = GatewayFront(f"http://{LOOPBACK}:{args.router_port}", key.get_secret_value(), traffic_file=args.traffic_file)
    server = uvicorn.Server(uvicorn.Config(
        front.app, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="on",
        log_level="warning", access_log=False, timeout_graceful_shutdown=GRACEFUL_S))
    router_lost = threading.Event()

    def watch_router() -> None:
        code = router.wait()
        if not server.should_exit:
            logger.error("vllm-router exited with %d: stopping the gateway", code)
            router_lost.set()
            server.should_exit = True

    threading.Thread(target=watch_router, daemon=True).start()
    # uvicorn stops on SIGTERM/SIGINT, then raises the signal again to die of it; this no-op
    # handler (not inherited by the router) lets the router be stopped first.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda _signum, _frame: None)
    logger.info("gateway on %s:%d, vllm-router on %s:%d", args.host, args.port, LOOPBACK, args.router_port)
    try:
        server.run()
    finally:
        _stop(router)
    sys.exit(1 if router_lost.is_set() or not server.started else 0)
