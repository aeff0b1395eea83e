"""Prometheus metrics of spend, read from the ledger at each scrape (for teams that run Grafana).

    gpufleet_pool_cost_usd_per_hour{environment,pool,provider,region,capacity,gpu}   nodes x price in force
    gpufleet_pool_nodes, gpufleet_pool_gpus, gpufleet_pool_gpus_used                   size and what replicas hold
    gpufleet_model_cost_usd_per_hour{environment,model,pool,provider}                 a pool's cost split by GPUs held
    gpufleet_placement_cost_usd_per_hour, gpufleet_baseline_cost_usd_per_hour         planned vs single cloud (a)
    gpufleet_tokens_total{environment,model,pool,provider,kind}                       prompt / generation tokens

Dividing `model_cost_usd_per_hour` by `rate(tokens_total[1h]) * 3600` gives $/token in
PromQL; docs/grafana-dashboard.json does exactly that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.ledger.rates import current_rates
from orchestrator.ledger.record import latest_apply
from orchestrator.ledger.tables import UNALLOCATED
from orchestrator.ledger.tokens import token_totals
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


def spend_registry(store: StateStore, environment: str) -> CollectorRegistry:
    """A registry holding only the spend metrics of one environment (no process metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SpendCollector(store, environment))
    return registry
