"""A model's figures per version, read from a Prometheus that scrapes its replicas (the CLI cannot reach pods).

Three instant queries (`queries`; docs/rollouts-kubernetes.md has the scrape config they
assume) give what `metrics.scrape` gives for local pools, cumulative at query time, so that
two calls make a window (`VersionFigures.since`):

- requests and failures: vLLM's HTTP counter (prometheus-fastapi-instrumentator's
  `http_requests_total`, its `status` grouped as `2xx`, `4xx`, `5xx`) on the completion
  handlers, of the targets that serve the model (they have its TTFT series). A failure is a
  `4xx` or `5xx` answer, as the gateway counts any answer >= 400. Unlike the gateway, a replica
  cannot count a request it never answered (a refused connection, a pod killed mid-request);
- TTFT and TPOT: vLLM's histograms of the model, summed per version and bucket.

A series without the version label (a pod from before versions) is `unversioned`'s. A query
that finds nothing for a version leaves it out, and the gate waits or fails on too few requests;
a Prometheus that does not answer, or answers with an error, raises.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable

import httpx

from orchestrator.dashboard.vllm_serving import TPOT, TTFT, Histogram
from orchestrator.errors import InputError, ProviderError
from orchestrator.rollout.gate import VersionFigures

logger = logging.getLogger(__name__)

QUERY_TIMEOUT_S = 10.0
VERSION_LABEL = "version"  # the scrape config's target label for the pods' gpufleet.io/version
ENVIRONMENT_LABEL = "environment"  # optional: series without it count for every environment
REQUESTS = "http_requests_total"
HANDLERS = ("/v1/completions", "/v1/chat/completions")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def queries(environment: str, model: str, version_label: str = VERSION_LABEL,
            environment_label: str = ENVIRONMENT_LABEL) -> tuple[str, str, str]:
    """The PromQL of requests by version and status, then TTFT and TPOT buckets by version and `le`."""
    for name in (version_label, environment_label):
        if not _LABEL_NAME.match(name):
            raise InputError(f"'{name}' is not a Prometheus label name. To fix: use letters, digits and '_', "
                             "not starting with a digit")
    scope = f'{environment_label}=~{json.dumps(re.escape(environment) + "|")}'
    serving = f"{{model_name={json.dumps(model)},{scope}}}"
    handlers = json.dumps("|".join(re.escape(h) for h in HANDLERS))
    requests = (f"sum by ({version_label}, status) ({REQUESTS}{{handler=~{handlers},{scope}}} "
                f"and on (instance) {TTFT}_count{serving})")
    return requests, *(f"sum by ({version_label}, le) ({name}_bucket{serving})" for name in (TTFT, TPOT))


def prometheus_figures(url: str, environment: str, model: str, unversioned: str, *,
                       version_label: str = VERSION_LABEL, environment_label: str = ENVIRONMENT_LABEL,
                       timeout_s: float = QUERY_TIMEOUT_S) -> Callable[[], dict[str, VersionFigures]]:
    """Version -> its cumulative figures, read at each call. Asks once before it returns, so a Prometheus that
    does not answer, or has no series of `model`, refuses the rollout before anything changes."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        parsed, problem = None, str(exc)
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(f"GPUFLEET_ROLLOUT_PROMETHEUS_URL={url!r} is not an http(s) URL"
                         f"{f' ({problem})' if parsed is None else ''}. To fix: set it to the Prometheus server's "
                         "address, e.g. http://prometheus.monitoring:9090")
    endpoint = f"{str(parsed).rstrip('/')}/api/v1/query"
    shown = str(parsed.copy_with(userinfo=b""))  # messages never carry a password in the URL
    requests, ttft, tpot = queries(environment, model, version_label, environment_label)

    def figures() -> dict[str, VersionFigures]:
        with httpx.Client(timeout=timeout_s) as http:
            counted, ttft_rows, tpot_rows = (_query(http, endpoint, shown, q) for q in (requests, ttft, tpot))
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for labels, value in counted:
            tally = counts[labels.get(version_label) or unversioned]
            tally[0] += round(value)
            if labels.get("status", "").startswith(("4", "5")):
                tally[1] += round(value)
        ttft_of, tpot_of = (_histograms(rows, version_label, unversioned) for rows in (ttft_rows, tpot_rows))
        return {v: VersionFigures(*counts.get(v, (0, 0)), ttft_of.get(v, Histogram()), tpot_of.get(v, Histogram()))
                for v in counts.keys() | ttft_of.keys() | tpot_of.keys()}

    if not figures():
        raise InputError(f"the Prometheus at {shown} has no series of {model}'s replicas ({TTFT}_bucket"
                         f"{{model_name=\"{model}\"}}). To fix: scrape them as docs/rollouts-kubernetes.md shows")
    return figures


def _histograms(rows: list[tuple[dict[str, str], float]], version_label: str,
                unversioned: str) -> dict[str, Histogram]:
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for labels, value in rows:
        buckets[labels.get(version_label) or unversioned][float(labels["le"])] += value
    return {v: Histogram.of(b) for v, b in buckets.items()}


def _query(http: httpx.Client, endpoint: str, shown: str, query: str) -> list[tuple[dict[str, str], float]]:
    """An instant query's vector as (labels, value) pairs; ProviderError when Prometheus does not give one."""
    fix = ("To fix: check GPUFLEET_ROLLOUT_PROMETHEUS_URL and the Prometheus server, then run the same "
           "`orchestrator rollout` again (one under way resumes at the step it was watching)")
    try:
        answer = http.get(endpoint, params={"query": query})
    except httpx.TransportError as exc:
        raise ProviderError(f"the Prometheus at {shown} did not answer ({exc.__class__.__name__}: {exc}). {fix}") from exc
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") != "success":
        why = (f"{body.get('errorType')}: {body.get('error')}" if isinstance(body, dict)
               else f"HTTP {answer.status_code}, not Prometheus' query API")
        raise ProviderError(f"the Prometheus at {shown} refused `{query}` ({why}). {fix}")
    for warning in body.get("warnings", []):
        logger.warning("Prometheus at %s: %s", shown, warning)
    data = body.get("data", {})
    if data.get("resultType") != "vector":
        raise ProviderError(f"the Prometheus at {shown} answered `{query}` with a {data.get('resultType')}, "
                            f"not a vector. {fix}")
    return [(row["metric"], float(row["value"][1])) for row in data["result"]]
