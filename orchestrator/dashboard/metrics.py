"""Prometheus metrics of spend and of the serving promise, read from the state at each scrape (for teams that run Grafana).

    gpufleet_pool_cost_usd_per_hour{environment,pool,provider,region,capacity,gpu}   nodes x price in force
    gpufleet_pool_nodes, gpufleet_pool_gpus, gpufleet_pool_gpus_used                   size and what replicas hold
    gpufleet_model_cost_usd_per_hour{environment,model,pool,provider}                 a pool's cost split by GPUs held
    gpufleet_placement_cost_usd_per_hour, gpufleet_baseline_cost_usd_per_hour         planned vs single cloud (a)
    gpufleet_tokens_total{environment,model,pool,provider,kind}                       prompt / generation tokens

    gpufleet_model_slo_ttft_p95_seconds, gpufleet_model_slo_tpot_p95_seconds{environment,model}   the plan's SLO
    gpufleet_planned_requests_per_second, gpufleet_capacity_requests_per_second{environment,model,pool}
                                                                                     routed by the plan; what its replicas sustain
    gpufleet_replay_ttft_seconds, gpufleet_replay_tpot_seconds{environment,model,quantile}   the latest replay (0.5, 0.95)
    gpufleet_replay_attainment_ratio, gpufleet_replay_offered_requests_per_second{environment,model}
    gpufleet_replay_timestamp_seconds{environment}                                    when it started

Latency, queue, KV cache and request rate per replica come from the replicas' own vLLM
`/metrics`, which Prometheus scrapes directly (docs/dashboards.md); these give their panels the
SLO lines and the plan's rate to compare with.
Dividing `model_cost_usd_per_hour` by `rate(tokens_total[1h]) * 3600` gives $/token in
PromQL; docs/grafana-dashboard.json does exactly that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.dashboard.serving import pool_promises, recent_replays, slo_targets
from orchestrator.ledger.rates import current_rates
from orchestrator.ledger.record import latest_apply
from orchestrator.ledger.tables import UNALLOCATED
from orchestrator.ledger.tokens import token_totals
from orchestrator.planner.placement import Placement
from orchestrator.state import StateStore

POOL_LABELS = ["environment", "pool", "provider", "region", "capacity", "gpu"]


class SpendCollector(Collector):
    """Reads current rates, the latest apply and token totals from the ledger whenever Prometheus scrapes."""

    def __init__(self, store: StateStore, environment: str, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.store = store
        self.environment = environment
        self.now = now

    def collect(self) -> Iterator[Metric]:
        env = self.environment
        cost = GaugeMetricFamily("gpufleet_pool_cost_usd_per_hour", "Pool cost now: nodes x price in force, USD/h.", labels=POOL_LABELS)
        nodes = GaugeMetricFamily("gpufleet_pool_nodes", "Nodes the pool runs.", labels=POOL_LABELS)
        gpus = GaugeMetricFamily("gpufleet_pool_gpus", "GPUs the pool's nodes have.", labels=POOL_LABELS)
        used = GaugeMetricFamily("gpufleet_pool_gpus_used", "GPUs the pool's replicas hold.", labels=POOL_LABELS)
        model = GaugeMetricFamily("gpufleet_model_cost_usd_per_hour", "A pool's cost attributed to a model by GPUs held, USD/h "
                                  "(model '' while the pool hosts none).", labels=["environment", "model", "pool", "provider"])
        for rate in current_rates(self.store, env, self.now()):
            labels = [env, rate.pool, rate.provider, rate.region, rate.capacity, rate.gpu]
            cost.add_metric(labels, rate.cost_per_hour)
            nodes.add_metric(labels, rate.nodes)
            gpus.add_metric(labels, rate.gpus)
            used.add_metric(labels, rate.used_gpus)
            for name, share in rate.model_cost_per_hour.items():
                model.add_metric([env, name if name != UNALLOCATED else "", rate.pool, rate.provider], share)
        yield from (cost, nodes, gpus, used, model)

        apply = latest_apply(self.store, env)
        if apply is not None:
            planned = GaugeMetricFamily("gpufleet_placement_cost_usd_per_hour", "The applied placement's planned cost, USD/h.",
                                        labels=["environment"])
            planned.add_metric([env], apply.cost_per_hour)
            yield planned
            if apply.baseline_cost_per_hour is not None:
                baseline = GaugeMetricFamily("gpufleet_baseline_cost_usd_per_hour", "Baseline (a), one cloud on-demand, USD/h.",
                                             labels=["environment"])
                baseline.add_metric([env], apply.baseline_cost_per_hour)
                yield baseline

        tokens = CounterMetricFamily("gpufleet_tokens", "Tokens served (vLLM counters, as the ledger recorded them).",
                                     labels=["environment", "model", "pool", "provider", "kind"])
        for name, pool, provider, prompt, generation in token_totals(self.store, env):
            tokens.add_metric([env, name, pool, provider, "prompt"], prompt)
            tokens.add_metric([env, name, pool, provider, "generation"], generation)
        yield tokens


class PromiseCollector(Collector):
    """The latest plan's SLO targets and routed rates, and the latest replay's measurements, at each scrape."""

    def __init__(self, store: StateStore, environment: str, placement: Callable[[], Placement | None]) -> None:
        self.store = store
        self.environment = environment
        self.placement = placement

    def collect(self) -> Iterator[Metric]:
        env = self.environment
        placement = self.placement()
        model_labels, pool_labels = ["environment", "model"], ["environment", "model", "pool"]
        ttft = GaugeMetricFamily("gpufleet_model_slo_ttft_p95_seconds", "The model's TTFT p95 SLO in the plan, s.", labels=model_labels)
        tpot = GaugeMetricFamily("gpufleet_model_slo_tpot_p95_seconds", "The model's TPOT p95 SLO in the plan, s.", labels=model_labels)
        for target in slo_targets(placement):
            ttft.add_metric([env, target.model], target.ttft_p95_ms / 1000)
            tpot.add_metric([env, target.model], target.tpot_p95_ms / 1000)
        planned = GaugeMetricFamily("gpufleet_planned_requests_per_second", "Requests/s the plan routes to the model's replicas "
                                    "in the pool (peak factor included).", labels=pool_labels)
        capacity = GaugeMetricFamily("gpufleet_capacity_requests_per_second", "Requests/s the model's replicas in the pool "
                                     "sustain within the SLO, by the plan.", labels=pool_labels)
        for promise in pool_promises(placement):
            planned.add_metric([env, promise.model, promise.pool], promise.planned_rps)
            capacity.add_metric([env, promise.model, promise.pool], promise.capacity_rps)
        yield from (ttft, tpot, planned, capacity)

        replays = recent_replays(self.store, env, limit=1)
        if not replays:
            return
        latest = replays[0]
        when = GaugeMetricFamily("gpufleet_replay_timestamp_seconds", "When the latest replay started, Unix time.", labels=["environment"])
        when.add_metric([env], latest.started_at.timestamp())
        quantiles = ["environment", "model", "quantile"]
        r_ttft = GaugeMetricFamily("gpufleet_replay_ttft_seconds", "TTFT the latest replay measured, s.", labels=quantiles)
        r_tpot = GaugeMetricFamily("gpufleet_replay_tpot_seconds", "TPOT the latest replay measured, s.", labels=quantiles)
        attained = GaugeMetricFamily("gpufleet_replay_attainment_ratio", "Share of the latest replay's requests within the SLO.",
                                     labels=model_labels)
        offered = GaugeMetricFamily("gpufleet_replay_offered_requests_per_second", "Requests/s the latest replay sent.",
                                    labels=model_labels)
        for m in latest.report.models:
            for quantile, t, p in (("0.5", m.ttft_p50_ms, m.tpot_p50_ms), ("0.95", m.ttft_p95_ms, m.tpot_p95_ms)):
                if t is not None:
                    r_ttft.add_metric([env, m.model, quantile], t / 1000)
                if p is not None:
                    r_tpot.add_metric([env, m.model, quantile], p / 1000)
            attained.add_metric([env, m.model], m.attainment)
            offered.add_metric([env, m.model], m.offered_rps)
        yield from (when, r_ttft, r_tpot, attained, offered)


def dashboard_registry(store: StateStore, environment: str,
                       placement: Callable[[], Placement | None] | None = None) -> CollectorRegistry:
    """A registry of one environment's spend and serving-promise metrics (no process metrics); `placement` gives
    the latest plan (None: no plan metrics, the replays' still)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SpendCollector(store, environment))
    registry.register(PromiseCollector(store, environment, placement or (lambda: None)))
    return registry
