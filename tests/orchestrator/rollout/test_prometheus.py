"""The rollout's figures from a real Prometheus (Debian's `prometheus`) scraping exposition text the test writes.

One Prometheus for the module scrapes local targets every 200 ms. Pods are scraped by the
scrape job of docs/rollouts-kubernetes.md as written, its relabelling included; only its
Kubernetes discovery (which Debian's build leaves out) becomes static targets carrying the
`__meta_kubernetes_*` labels that discovery would give each pod:

    a  version v1  model m        b  version v2  model m     c  (no version label)  model m
    d  version v1  model other    f  not managed by gpufleet  g  a port not named http

A second job scrapes plain targets: e (version v2, environment eu-west.staging) and h
(version v2, no environment). The documented job names its environment `prod`.

Each target's text is vLLM's (HTTP counter, TTFT and TPOT histograms); the expected figures
are computed from the same text by a second route, `parse_serving` and plain sums. These tests
are marked slow: Prometheus first scrapes ~5 s after it starts.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from orchestrator.dashboard.vllm_serving import parse_serving
from orchestrator.errors import InputError, ProviderError
from orchestrator.rollout.gate import VersionFigures
from orchestrator.rollout.prometheus import prometheus_figures, queries

PROMETHEUS = shutil.which("prometheus")

TTFT_BOUNDS = ("0.01", "0.1", "1.0", "+Inf")
TPOT_BOUNDS = ("0.005", "0.05", "+Inf")
DOCS = Path(__file__).parents[3] / "docs" / "rollouts-kubernetes.md"


def vllm_text(model: str, http: dict[tuple[str, str], int], ttft: tuple[int, ...], tpot: tuple[int, ...]) -> str:
    """What a vLLM replica serves: `http` maps (handler, status class) to a count; ttft/tpot are cumulative
    bucket counts (one engine, plus an idle second engine with zero counts)."""
    lines = ["# HELP http_requests_total Total number of requests by method, status and handler.",
             "# TYPE http_requests_total counter"]
    lines += [f'http_requests_total{{handler="{h}",method="POST",status="{s}"}} {n}' for (h, s), n in http.items()]
    for name, bounds, counts in (("vllm:time_to_first_token_seconds", TTFT_BOUNDS, ttft),
                                 ("vllm:request_time_per_output_token_seconds", TPOT_BOUNDS, tpot)):
        lines += [f"# HELP {name} histogram", f"# TYPE {name} histogram"]
        for engine, engine_counts in (("0", counts), ("1", (0,) * len(counts))):
            labels = f'engine="{engine}",model_name="{model}"'
            lines += [f'{name}_bucket{{{labels},le="{b}"}} {c}' for b, c in zip(bounds, engine_counts, strict=True)]
            lines += [f"{name}_count{{{labels}}} {engine_counts[-1]}", f"{name}_sum{{{labels}}} 1.0"]
    return "\n".join(lines) + "\n"


def pod(version: str | None, model: str = "m", managed_by: str = "gpufleet", port: str = "http") -> dict[str, str]:
    """The labels Kubernetes pod discovery gives a replica pod's container port."""
    labels = {"__meta_kubernetes_pod_label_app_kubernetes_io_managed_by": managed_by,
              "__meta_kubernetes_pod_label_gpufleet_io_model": model,
              "__meta_kubernetes_pod_label_gpufleet_io_pool": "p1",
              "__meta_kubernetes_pod_container_port_name": port,
              "__meta_kubernetes_namespace": "gpufleet-p1", "__meta_kubernetes_pod_name": f"{model}-{version}"}
    return labels | ({"__meta_kubernetes_pod_label_gpufleet_io_version": version} if version else {})


PODS = {"a": pod("v1"), "b": pod("v2"), "c": pod(None), "d": pod("v1", model="other"),
        "f": pod("v1", managed_by="someone-else"), "g": pod("v1", port="grpc")}
PLAIN = {"e": {"version": "v2", "environment": "eu-west.staging"}, "h": {"version": "v2"}}
VERSION = {"a": "v1", "b": "v2", "c": None, "d": "v1", "e": "v2", "h": "v2"}  # those the queries may count
NOISE = vllm_text("m", {("/v1/completions", "5xx"): 10**6}, (0, 0, 0, 10**6), (0, 0, 10**6))  # f and g: dropped
FIRST = {
    "a": vllm_text("m", {("/v1/completions", "2xx"): 90, ("/v1/completions", "4xx"): 4,
                         ("/v1/chat/completions", "5xx"): 6, ("/v1/chat/completions", "2xx"): 10,
                         ("/v1/models", "2xx"): 500, ("/v1/models", "5xx"): 50},
                   (10, 60, 100, 110), (50, 100, 110)),
    "b": vllm_text("m", {("/v1/completions", "2xx"): 18, ("/v1/completions", "5xx"): 2},
                   (1, 5, 19, 20), (2, 19, 20)),
    "c": vllm_text("m", {("/v1/chat/completions", "2xx"): 30, ("/v1/chat/completions", "4xx"): 3},
                   (20, 30, 33, 33), (30, 33, 33)),
    "d": vllm_text("other", {("/v1/completions", "2xx"): 1000, ("/v1/completions", "5xx"): 1000},
                   (0, 0, 2000, 2000), (0, 0, 2000)),
    "e": vllm_text("m", {("/v1/completions", "2xx"): 7}, (7, 7, 7, 7), (7, 7, 7)),
    "f": NOISE,
    "g": NOISE,
    "h": vllm_text("m", {("/v1/chat/completions", "2xx"): 5}, (0, 5, 5, 5), (0, 5, 5)),
}


def expected(*names: str, unversioned: str = "v1", version_of: Callable[[str], str | None] | None = None
             ) -> dict[str, VersionFigures]:
    """The figures of targets `names` by a second route: parse_serving's histograms, the counts summed in Python."""
    result: dict[str, VersionFigures] = {}
    for name in names:
        model = "other" if name == "d" else "m"
        version = (version_of(name) if version_of else VERSION[name]) or unversioned
        text = texts[name]
        requests = failures = 0
        for line in text.splitlines():
            if line.startswith("http_requests_total{") and '"/v1/models"' not in line:
                n = int(line.rsplit(" ", 1)[1])
                requests += n
                failures += n if 'status="4xx"' in line or 'status="5xx"' in line else 0
        serving = parse_serving(text, model)
        before = result.get(version, VersionFigures())
        result[version] = VersionFigures(before.requests + requests, before.failures + failures,
                                         before.ttft + serving.ttft, before.tpot + serving.tpot)
    return result


texts: dict[str, str] = dict(FIRST)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = texts[name].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def documented_job(static_configs: str) -> str:
    """The scrape job of docs/rollouts-kubernetes.md, its pod discovery replaced by `static_configs`."""
    text = DOCS.read_text()
    job = text[text.index("```yaml\nscrape_configs:\n") + len("```yaml\nscrape_configs:\n"):]
    job = job[:job.index("```")]
    assert "    kubernetes_sd_configs: [{role: pod}]\n" in job
    return job.replace("    kubernetes_sd_configs: [{role: pod}]\n", f"    static_configs:\n{static_configs}")


def static_configs(servers: dict[str, ThreadingHTTPServer], labels: dict[str, dict[str, str]]) -> str:
    return "".join(f"      - targets: ['127.0.0.1:{servers[name].server_address[1]}']\n"
                   f"        labels: {json.dumps(target_labels)}\n" for name, target_labels in labels.items())


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[str]:
    """A real Prometheus scraping the targets; its URL. Slow: Prometheus hands discovered targets to its
    scrapers every 5 s, so the first scrape comes ~5 s after it starts."""
    if PROMETHEUS is None:
        pytest.skip("no `prometheus` binary on PATH (Debian 12: apt-get install prometheus; .ci/run installs it)")
    directory = tmp_path_factory.mktemp("prometheus")
    servers = {name: serve(name) for name in FIRST}
    config = directory / "prometheus.yml"
    config.write_text("global: {scrape_interval: 200ms, scrape_timeout: 150ms}\nscrape_configs:\n"
                      + documented_job(static_configs(servers, PODS))
                      + f"  - job_name: plain\n    static_configs:\n{static_configs(servers, PLAIN)}")
    port = free_port()
    log = (directory / "log").open("w")
    process = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:  # ready, and every kept target scraped once
                answer = httpx.get(f"{url}/api/v1/query", params={"query": "count(up == 1)"}, timeout=1)
                if [r["value"][1] for r in answer.json()["data"]["result"]] == [str(len(VERSION))]:
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start: {(directory / 'log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        for server in servers.values():
            server.shutdown()


def until(read: Callable[[], dict[str, VersionFigures]], want: dict[str, VersionFigures]) -> dict[str, VersionFigures]:
    """What `read` gives once it equals `want` (Prometheus scrapes every 200 ms), else its last answer."""
    deadline = time.monotonic() + 4
    while (got := read()) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


@pytest.mark.slow
def test_each_version_gets_its_requests_failures_and_histograms(prometheus):
    want = expected("a", "b", "c", "h")
    assert want["v1"].requests == 110 + 33 and want["v1"].failures == 10 + 3  # the second route's own sums
    assert until(prometheus_figures(prometheus, "prod", "m", "v1"), want) == want


@pytest.mark.slow
def test_two_reads_make_a_window_of_what_happened_between(prometheus):
    figures = prometheus_figures(prometheus, "prod", "m", "v1")
    start = until(figures, expected("a", "b", "c", "h"))
    texts["b"] = vllm_text("m", {("/v1/completions", "2xx"): 18 + 40, ("/v1/completions", "5xx"): 2 + 10},
                           (1, 25, 69, 70), (2, 60, 70))
    try:
        window = until(figures, expected("a", "b", "c", "h"))["v2"].since(start["v2"])
    finally:
        texts["b"] = FIRST["b"]
    assert (window.requests, window.failures) == (50, 10)
    assert window.ttft.counts == (0, 20, 50, 50) and window.tpot.counts == (0, 41, 50)
    assert round(window.ttft.quantile(0.95), 3) == round(0.1 + 0.9 * (47.5 - 20) / 30, 3)


@pytest.mark.slow
def test_the_relabelled_pods_carry_the_documented_labels(prometheus):
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": 'up{job="gpufleet-replicas"}'}).json()
    labels = sorted((r["metric"].get("version", "(none)"), r["metric"]["pod"]) for r in answer["data"]["result"])
    assert labels == [("(none)", "m-None"), ("v1", "m-v1"), ("v1", "other-v1"), ("v2", "m-v2")]  # not f, g
    assert {(r["metric"]["environment"], r["metric"]["namespace"], r["metric"]["pool"])
            for r in answer["data"]["result"]} == {("prod", "gpufleet-p1", "p1")}


@pytest.mark.slow
def test_an_environment_label_scopes_and_series_without_one_count_everywhere(prometheus):
    staging = until(prometheus_figures(prometheus, "eu-west.staging", "m", "v1"), expected("e", "h"))
    assert staging == expected("e", "h")
    assert staging["v2"].requests == 7 + 5


@pytest.mark.slow
def test_the_version_label_is_the_one_named(prometheus):
    figures = prometheus_figures(prometheus, "prod", "m", "v0", version_label="release")
    want = expected("a", "b", "c", "h", unversioned="v0", version_of=lambda name: None)
    assert until(figures, want) == want


@pytest.mark.slow
def test_a_model_without_series_is_refused_before_anything_changes(prometheus):
    with pytest.raises(InputError, match=r"no series of absent.*docs/rollouts-kubernetes.md"):
        prometheus_figures(prometheus, "prod", "absent", "v1")


@pytest.mark.slow
def test_a_prometheus_that_is_not_there_or_not_prometheus_is_a_provider_error(prometheus):
    with pytest.raises(ProviderError, match=r"did not answer.*GPUFLEET_ROLLOUT_PROMETHEUS_URL"):
        prometheus_figures(f"http://127.0.0.1:{free_port()}", "prod", "m", "v1")
    with pytest.raises(ProviderError, match=r"HTTP 404, not Prometheus' query API") as raised:
        prometheus_figures(f"http://user:secret@{prometheus.removeprefix('http://')}/elsewhere", "prod", "m", "v1")
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize("url", ["prometheus:9090", "ftp://host/", "http://", "http://[::1"])
def test_a_url_that_is_no_http_url_is_bad_input(url):
    with pytest.raises(InputError, match="GPUFLEET_ROLLOUT_PROMETHEUS_URL=.*is not an http"):
        prometheus_figures(url, "prod", "m", "v1")


def test_a_label_name_prometheus_cannot_hold_is_bad_input():
    with pytest.raises(InputError, match="'gpufleet.io/version' is not a Prometheus label name"):
        queries("prod", "m", version_label="gpufleet.io/version")


def test_the_documented_queries_are_the_ones_run():
    text = DOCS.read_text()
    for query in queries("prod", "llama-8b"):
        assert query in text
