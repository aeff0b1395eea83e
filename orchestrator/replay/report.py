"""A replay's report: attainment against each model's SLO, beside what the latest plan promised.

A request is within the SLO when it succeeded with TTFT <= the model's `ttft_p95_ms` and TPOT
<= its `tpot_p95_ms`; attainment is the share of requests within. A model meets its SLO when
its p95 TTFT and p95 TPOT (nearest rank, a failed request counting as over both) are within it.
The gateway does not say which pool answered, so results are per model and user region, for
the environment as a whole. The plan's promise: the demand it was planned for (req/s x peak
factor) and the capacity it placed (replicas x req/s per replica).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from orchestrator.contracts import Document
from orchestrator.planner.placement import Placement
from orchestrator.replay.runner import RequestResult
from orchestrator.replay.schedule import Schedule
from orchestrator.spec import FleetSpec

ATTAINMENT_TARGET = 0.95  # the SLO is a p95


class PlanPromise(Document):
    planned_rps: float = Field(description="Σ demand rps x peak_factor: what the plan carries within the SLO.")
    capacity_rps: float = Field(description="Σ replicas x rps_per_replica.")
    replicas: int
    capacity_source: str


class ModelReport(Document):
    model: str
    region: str | None = Field(description="null: every region of the model.")
    requests: int
    errors: int
    within_slo: int
    attainment: float
    offered_rps: float
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tpot_p50_ms: float | None
    tpot_p95_ms: float | None
    e2e_p95_ms: float | None
    slo_ttft_p95_ms: float
    slo_tpot_p95_ms: float
    meets_slo: bool
    plan: PlanPromise | None = None


class ReplayReport(Document):
    """The replay report contract (`replay --format json`, and what the state database keeps)."""

    schema_version: Literal[1] = Field(1, description="Changes only with an incompatible change (docs/contracts.md).")
    environment: str
    gateway_url: str
    trace: str
    format: str
    window_start_s: float
    window_end_s: float
    speed: float
    scale: float
    seed: int
    duration_s: float
    requests: int
    errors: int
    clipped: int
    length_mismatches: int = Field(description="Answered requests whose served prompt or output tokens differ from what was asked.")
    max_model_len: dict[str, int]
    scope: str
    models: list[ModelReport]
    regions: list[ModelReport] = Field(default_factory=list)
    plan_cost_per_hour: float | None = None

    def to_json(self) -> dict:
        return self.model_dump(mode="json")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (inf counts as a value); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def plan_promise(placement: Placement | None, model: str) -> PlanPromise | None:
    if placement is None:
        return None
    planned = sum(d.rps * d.peak_factor for d in placement.demand if d.model == model)
    per_replica = {c.pool: c for c in placement.capacity if c.model == model}
    running = [r for r in placement.replicas if r.model == model and r.count > 0]
    capacity = sum(r.count * per_replica[r.pool].rps_per_replica for r in running if r.pool in per_replica)
    sources = sorted({per_replica[r.pool].source for r in running if r.pool in per_replica})
    return PlanPromise(planned_rps=planned, capacity_rps=capacity, replicas=sum(r.count for r in running),
                       capacity_source=", ".join(sources) or "none")


def _summarize(spec: FleetSpec, model: str, region: str | None, results: list[RequestResult], duration_s: float,
               placement: Placement | None) -> ModelReport:
    slo = next(m.slo for m in spec.models if m.name == model)
    ok = [r for r in results if r.ok]
    within = sum(1 for r in ok if r.ttft_ms <= slo.ttft_p95_ms and r.tpot_ms <= slo.tpot_p95_ms)
    ttft, tpot = [r.ttft_ms for r in ok], [r.tpot_ms for r in ok]
    failed = [math.inf] * (len(results) - len(ok))
    ttft_all, tpot_all = percentile(ttft + failed, 95), percentile(tpot + failed, 95)
    meets = ttft_all is not None and ttft_all <= slo.ttft_p95_ms and tpot_all <= slo.tpot_p95_ms
    return ModelReport(
        model=model, region=region, requests=len(results), errors=len(results) - len(ok), within_slo=within,
        attainment=within / len(results) if results else 0.0,
        offered_rps=len(results) / duration_s if duration_s > 0 else 0.0,
        ttft_p50_ms=percentile(ttft, 50), ttft_p95_ms=percentile(ttft, 95), tpot_p50_ms=percentile(tpot, 50),
        tpot_p95_ms=percentile(tpot, 95), e2e_p95_ms=percentile([r.e2e_ms for r in ok], 95),
        slo_ttft_p95_ms=slo.ttft_p95_ms, slo_tpot_p95_ms=slo.tpot_p95_ms, meets_slo=meets,
        plan=plan_promise(placement, model) if region is None else None)


def build_report(spec: FleetSpec, environment: str, gateway_url: str, schedule: Schedule,
                 results: list[RequestResult], placement: Placement | None) -> ReplayReport:
    """Per model (and per model and region when the trace names regions), beside the plan's promise."""
    duration = schedule.duration_s or max((r.at_s for r in results), default=0.0)
    by_model: dict[str, list[RequestResult]] = {}
    by_region: dict[tuple[str, str], list[RequestResult]] = {}
    for r in results:
        by_model.setdefault(r.model, []).append(r)
        if r.region is not None:
            by_region.setdefault((r.model, r.region), []).append(r)
    return ReplayReport(
        environment=environment, gateway_url=gateway_url, trace=schedule.source, format=schedule.format.value,
        window_start_s=schedule.window.start_s, window_end_s=schedule.window.end_s, speed=schedule.speed,
        scale=schedule.scale, seed=schedule.seed, duration_s=duration, requests=len(results),
        errors=sum(not r.ok for r in results), clipped=schedule.clipped,
        length_mismatches=sum(r.ok and (r.input_tokens_served, r.output_tokens_served) != (r.input_tokens, r.output_tokens)
                              for r in results), max_model_len=dict(schedule.limits),
        scope="environment",  # the gateway does not say which pool answered
        models=[_summarize(spec, m, None, rs, duration, placement) for m, rs in sorted(by_model.items())],
        regions=[_summarize(spec, m, g, rs, duration, placement) for (m, g), rs in sorted(by_region.items())],
        plan_cost_per_hour=placement.cost_per_hour if placement else None)
