"""A model's versions as the local gateway routes them: one lane per version.

vllm-router (multi-model mode) routes by the request's `model` only, so each version's
workers are registered as `<model>@<version>` (a replica answers to that name too: the
entrypoint serves both) and the front rewrites the `model` of each request to the lane it
picks. Responses still carry the model's own name. The split is a weight per version
(`SetTraffic`, written to the gateway's traffic file); a model without weights is split by
healthy workers, as one plain router would. A lane without a healthy worker gets nothing.

A lane is named by its version, and `UNNAMED` ("") is the lane of replicas started before
versions existed (registered under the model's own name). A rollout names their version
as the spec does (`v1`), so the one weighted version that has no lane of its own is
carried by the unnamed lane.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SEPARATOR = "@"
UNNAMED = ""
LANES_PATH = "/gateway/lanes"


def lane_name(model: str, version: str | None) -> str:
    """The name the router knows a version's workers by (the model's own name for the unnamed lane)."""
    return f"{model}{SEPARATOR}{version}" if version else model


def parse_lane(name: str) -> tuple[str, str]:
    """(model, lane) of a router model id; model names never hold the separator."""
    model, _, version = name.partition(SEPARATOR)
    return model, version


def lane_weights(weights: dict[str, float] | None, healthy: dict[str, int]) -> dict[str, float]:
    """Each lane's weight: its version's, and for the unnamed lane the one weighted version without a lane."""
    weights = weights or {}
    out = {lane: w for lane, w in weights.items() if lane in healthy}
    unmatched = [v for v in weights if v not in healthy]
    if UNNAMED in healthy and UNNAMED not in weights and len(unmatched) == 1:
        out[UNNAMED] = weights[unmatched[0]]
    return out


def pick_lane(weights: dict[str, float] | None, healthy: dict[str, int], rng: random.Random) -> str | None:
    """The lane a request goes to: by weight among the weighted lanes that have a healthy worker, else (no
    weights, or none of them healthy) by healthy workers. None: no healthy worker at all."""
    lanes = {v: w for v, w in lane_weights(weights, healthy).items() if w > 0 and healthy[v] > 0}
    if not lanes:
        lanes = {v: float(n) for v, n in healthy.items() if n > 0}
    if not lanes:
        return None
    names = sorted(lanes)
    return rng.choices(names, weights=[lanes[v] for v in names])[0]


def primary_lane(weights: dict[str, float] | None, healthy: dict[str, int], avoid: str) -> str | None:
    """Where a request another lane failed is sent again: the heaviest healthy lane other than `avoid`; None if none."""
    candidates = [v for v, n in healthy.items() if n > 0 and v != avoid]
    if not candidates:
        return None
    by_weight = lane_weights(weights, healthy)
    return max(candidates, key=lambda v: (by_weight.get(v, 0.0), healthy[v], v))


def read_lanes(http: httpx.Client, gateway_url: str, key: str) -> dict:
    """The front's `GET /gateway/lanes` (its lanes, weights and hold times, each model's last request and held
    requests); raises httpx.HTTPError or ValueError when the gateway does not say."""
    answer = http.get(f"{gateway_url}{LANES_PATH}", headers={"Authorization": f"Bearer {key}"})
    answer.raise_for_status()
    return answer.json()


@dataclass(frozen=True)
class Traffic:
    """The gateway's traffic file: each model's weight per version, and how long a request for a model that
    scales to zero waits for it to wake (the supervisor writes it; the front re-reads it every second)."""

    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    hold: dict[str, float] = field(default_factory=dict)

    def text(self) -> str:
        return json.dumps({"schema_version": 1, "models": self.weights, "hold": self.hold}, sort_keys=True)


def read_traffic_file(path: Path) -> Traffic:
    """The traffic file; empty when it is missing."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return Traffic()
    if not isinstance(document, dict):
        return Traffic()
    models = document.get("models", {})
    return Traffic({str(m): {str(v): float(w) for v, w in weights.items()} for m, weights in models.items()
                    if isinstance(weights, dict)},
                   {str(m): float(s) for m, s in document.get("hold", {}).items()})
