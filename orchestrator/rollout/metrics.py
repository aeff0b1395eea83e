"""A model's figures per version, read from the running fleet: the gateway's counts and the replicas' histograms.

The gateway's `/gateway/lanes` counts each version's requests and failures since it
started; each replica's `/metrics` holds vLLM's TTFT and TPOT histograms since it started.
A scrape is cumulative; a window is the difference of two (`VersionFigures.since`).
Replicas that do not answer are left out of that scrape (their requests still count at
the gateway).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import httpx

from orchestrator.dashboard.vllm_serving import Histogram, parse_serving
from orchestrator.gateway.lanes import read_lanes
from orchestrator.providers.base import FleetState
from orchestrator.rollout.gate import VersionFigures

logger = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 5.0


def scrape(state: FleetState, api_key: str, model: str, unversioned: str) -> dict[str, VersionFigures]:
    """Version -> its cumulative figures now (`unversioned` names the replicas that predate versions)."""
    counts: dict[str, tuple[int, int]] = {}
    latency: dict[str, tuple[Histogram, Histogram]] = {}
    replicas = [r for r in state.replicas if r.model == model and r.healthy]
    with httpx.Client(timeout=SCRAPE_TIMEOUT_S) as http, ThreadPoolExecutor(max_workers=8) as pool:
        if state.gateway is not None:
            try:
                for lane in read_lanes(http, state.gateway.url, api_key)["lanes"]:
                    if lane["model"] == model:
                        version = lane["version"] or unversioned
                        before = counts.get(version, (0, 0))
                        counts[version] = (before[0] + lane["requests"], before[1] + lane["failures"])
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                logger.warning("the gateway's per-version counts could not be read: %s", exc)
        texts = pool.map(lambda url: _metrics(http, url), [r.url for r in replicas])
        for replica, text in zip(replicas, texts, strict=True):
            if text is None:
                continue
            try:
                serving = parse_serving(text, model)
            except ValueError as exc:
                logger.warning("%s: %s", replica.url, exc)
                continue
            version = replica.version or unversioned
            ttft, tpot = latency.get(version, (Histogram(), Histogram()))
            latency[version] = (ttft + serving.ttft, tpot + serving.tpot)
    return {v: VersionFigures(*counts.get(v, (0, 0)), *latency.get(v, (Histogram(), Histogram())))
            for v in counts.keys() | latency.keys()}


def _metrics(http: httpx.Client, url: str) -> str | None:
    try:
        answer = http.get(f"{url}/metrics")
        answer.raise_for_status()
        return answer.text
    except httpx.HTTPError as exc:
        logger.warning("%s/metrics: %s", url, exc)
        return None
