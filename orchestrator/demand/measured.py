"""Demand measured from what the fleet's replicas served over a recent window.

Every scrape of the replicas' vLLM counters (`status`, `spend record`, a running dashboard,
and the fresh one `demand_for` takes) is kept in the ledger as samples: each replica's
`vllm:request_success_total`, `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`
and `vllm:num_requests_waiting` at the scrape's time (`ledger_counter_samples`). Over a
window of `window_s` seconds ending now, a model's demand is the increase of its replicas'
counters between two samples, divided by the time between them:

- the window's end is the model's latest sample, which must lie inside the window
  (`now - window_s` or later);
- its start is the model's earlier sample time nearest `window_s` before that end, and no
  earlier than `now - 2 x window_s`; scrapes on a schedule seldom land `window_s` apart, so
  the window covered is reported, and may be shorter or longer than asked;
- each replica counts from its first sample at or after the start to its last; a counter that
  went back (a restart) counts its whole new value, as the ledger does;
- requests/s = finished requests / seconds covered; mean prompt and generated tokens =
  tokens / finished requests.

Metrics carry no user region: a model's measured rate is split over the spec's demand
regions for that model in the spec's proportions (all to it when there is one). A model the
spec gives no demand is split like the spec's whole demand. Samples minutes apart show no
bursts, so a measured row keeps the spec's `peak_factor` for its (model, region) (1 when the
spec states none). See docs/demand.md.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass

from orchestrator.errors import InputError
from orchestrator.ledger.tokens import SAMPLE_RETENTION, ReplicaSample, counter_samples
from orchestrator.spec.models import Demand, FleetSpec
from orchestrator.state import StateStore

MAX_WINDOW_S = SAMPLE_RETENTION.total_seconds() / 2  # the start may be looked for up to two windows back


@dataclass(frozen=True)
class MeasuredRates:
    """What one model's replicas served between two samples."""

    model: str
    requests: float
    prompt_tokens: float
    generation_tokens: float
    start: dt.datetime
    end: dt.datetime
    replicas: int
    max_waiting: float | None = None  # most requests queued on one replica at a sample in the window

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def input_tokens_mean(self) -> float:
        return self.prompt_tokens / self.requests if self.requests else 0.0

    @property
    def output_tokens_mean(self) -> float:
        return self.generation_tokens / self.requests if self.requests else 0.0


def check_window(window_s: float) -> None:
    """A measured window must be a positive number of seconds within what the ledger keeps."""
    if not (isinstance(window_s, int | float) and math.isfinite(window_s) and window_s > 0):
        raise InputError(f"the measured window must be a positive number of seconds, not {window_s}. "
                         "To fix: pass --measured-window 300 (the last 5 minutes), for example.")
    if window_s > MAX_WINDOW_S:
        raise InputError(f"the measured window of {window_s:g} s is longer than the {MAX_WINDOW_S:g} s the ledger's "
                         f"counter samples allow (kept {SAMPLE_RETENTION.days} days). To fix: pass a shorter window.")


def measure_rates(store: StateStore, environment: str, window_s: float, now: dt.datetime) -> dict[str, MeasuredRates]:
    """Each model's requests and tokens over the window ending at `now`, from the recorded samples.

    Models without two samples at different times, the later one inside the window, are left out.
    Samples without a request counter (a replica not exposing `vllm:request_success`) are not used.
    """
    check_window(window_s)
    if now.tzinfo is None:
        raise InputError(f"naive time {now!r}: measured demand takes aware UTC times")
    window_start = now - dt.timedelta(seconds=window_s)
    samples = [s for s in counter_samples(store, environment, now - dt.timedelta(seconds=2 * window_s), now)
               if s.requests_total is not None]
    by_model: dict[str, dict[str, list[ReplicaSample]]] = defaultdict(lambda: defaultdict(list))
    for s in samples:  # ordered by replica, then time
        by_model[s.model][s.replica].append(s)
    measured = {}
    for model, replicas in by_model.items():
        times = sorted({s.at for seq in replicas.values() for s in seq})
        end = times[-1]
        if end < window_start or len(times) < 2:
            continue
        target = end - dt.timedelta(seconds=window_s)
        start = min(times[:-1], key=lambda t: (abs((t - target).total_seconds()), t))
        requests = prompt = generation = 0.0
        counted = 0
        waiting: list[float] = []
        for seq in replicas.values():
            seq = [s for s in seq if s.at >= start]
            waiting += [s.requests_waiting for s in seq if s.requests_waiting is not None]
            if len(seq) < 2:
                continue
            counted += 1
            for before, after in zip(seq, seq[1:], strict=False):
                requests += _increase(before.requests_total, after.requests_total)  # type: ignore[arg-type]
                prompt += _increase(before.prompt_tokens_total, after.prompt_tokens_total)
                generation += _increase(before.generation_tokens_total, after.generation_tokens_total)
        if counted:
            measured[model] = MeasuredRates(model=model, requests=requests, prompt_tokens=prompt, generation_tokens=generation,
                                            start=start, end=end, replicas=counted, max_waiting=max(waiting, default=None))
    return measured


def with_measured_demand(spec: FleetSpec, measured: dict[str, MeasuredRates], *, window_s: float,
                         scale: float = 1.0) -> tuple[FleetSpec, list[str]]:
    """The spec with each measured model's demand replaced, and one note per model saying what was done.

    A model with no measurement, or one that finished no request in the window, keeps the
    spec's demand. Token means apply to every region of the model (metrics cannot tell them apart).
    """
    notes: list[str] = []
    replaced: dict[str, list[Demand]] = {}
    for model in (m.name for m in spec.models):
        spec_rps = sum(d.requests_per_second for d in spec.demand if d.model == model)
        keeping = f"keeping the spec's demand ({spec_rps:g} req/s)" if spec_rps else "keeping the spec's (none)"
        rates = measured.get(model)
        if rates is None:
            notes.append(f"{model}: no counter samples in the last {window_s:g} s to measure from; {keeping}. "
                         "(Samples are recorded by `orchestrator status`, `spend record` and a running dashboard.)")
            continue
        if rates.requests <= 0:
            notes.append(f"{model}: no request finished in {_span(rates)}; {keeping}.")
            continue
        shares = _region_shares(spec, model)
        if not shares:
            notes.append(f"{model}: measured {rates.requests_per_second:.4g} req/s but the spec has no demand region "
                         f"to put it in; {keeping}. To fix: add a demand entry for {model} with its users' region.")
            continue
        rps = rates.requests_per_second * scale
        peaks = _spec_peaks(spec, model)
        replaced[model] = [Demand(model=model, region=region, requests_per_second=rps * share,
                                  input_tokens=max(1, round(rates.input_tokens_mean)),
                                  output_tokens=max(1, round(rates.output_tokens_mean)),
                                  **peaks.get(region, {}))
                           for region, share in shares.items()]
        note = (f"{model}: measured {rates.requests_per_second:.4g} req/s ({rates.requests:.0f} requests in {_span(rates)}, "
                f"{rates.replicas} replica{'s' if rates.replicas != 1 else ''}), mean {rates.input_tokens_mean:.0f} prompt / "
                f"{rates.output_tokens_mean:.0f} generated tokens")
        if scale != 1:
            note += f"; x{scale:g} = {rps:.4g} req/s"
        basis = "" if any(d.model == model for d in spec.demand) else " (as the whole spec's demand)"
        if len(shares) == 1:
            note += f"; all from {next(iter(shares))}{basis}"
        else:
            note += f"; split by the spec's shares{basis}: " + ", ".join(f"{r} {s:.0%}" for r, s in shares.items())
        kept = [f"{region} x{peaks[region]['peak_factor']:g}" for region in shares if region in peaks]
        if kept:
            note += f"; the spec's peak factor kept ({', '.join(kept)})"
        if rates.max_waiting:
            note += (f". Requests were queued (up to {rates.max_waiting:.0f} on a replica): this is what was served, "
                     "demand may be higher (--scale adds headroom)")
        notes.append(note + ".")
    for model in sorted(set(measured) - {m.name for m in spec.models}):
        notes.append(f"{model}: served by replicas but not a model of the spec; ignored.")
    if not replaced:
        return spec, notes
    demand = [d for d in spec.demand if d.model not in replaced] + [d for entries in replaced.values() for d in entries]
    return spec.model_copy(update={"demand": demand}), notes


def _spec_peaks(spec: FleetSpec, model: str) -> dict[str, dict[str, object]]:
    """User region -> the spec's peak_factor and peak_source for the model there, where above 1 (the
    largest of a region's rows). Counters sampled minutes apart show no bursts, so measured demand
    keeps the factor the spec states rather than dropping it to 1."""
    peaks: dict[str, dict[str, object]] = {}
    for d in spec.demand:
        if d.model == model and d.peak_factor > peaks.get(d.region, {}).get("peak_factor", 1.0):  # type: ignore[operator]
            peaks[d.region] = {"peak_factor": d.peak_factor, "peak_source": d.peak_source}
    return peaks


def _region_shares(spec: FleetSpec, model: str) -> dict[str, float]:
    """User region -> share of the model's traffic: the spec's own split for the model, else the whole spec's."""
    rows = [d for d in spec.demand if d.model == model] or spec.demand
    by_region: dict[str, float] = defaultdict(float)
    for d in rows:
        by_region[d.region] += d.requests_per_second
    total = sum(by_region.values())
    return {region: rps / total for region, rps in by_region.items()} if total > 0 else {}


def _span(rates: MeasuredRates) -> str:
    return (f"{rates.seconds:.0f} s, {rates.start:%Y-%m-%d %H:%M:%S}-{rates.end:%H:%M:%S} UTC")


def _increase(before: float, after: float) -> float:
    """What a counter gained between two samples; all of `after` when it went back (the replica restarted)."""
    return after if after < before else after - before
