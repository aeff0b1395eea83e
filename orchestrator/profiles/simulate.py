r"""Discrete-event simulation of one vLLM replica: an independent check of `capacity`'s closed form.

`closed_form.ReplicaQueue` turns step times into requests/s with queueing formulas (an M/G/1
prefill queue, M/G/1 busy periods for a request's decode window, M/G/∞ for KV use). This module
runs the scheduler instead, step by step, on the same `perf_model.ReplicaModel` times, and
measures TTFT and TPOT per request: a second method, sharing only the step times.

The scheduler, after vLLM v1 (`vllm/v1/core/sched/scheduler.py`, release 0.32, the pinned one):

* Each engine step has a token budget of `max_num_batched_tokens`. RUNNING requests are
  scheduled first, in admission order: a decoding request takes 1 token, a request whose
  prefill is not finished takes min(tokens left, budget) (chunked prefill, on by default).
  Then WAITING requests, first come first served, while budget is left, fewer than
  `max_num_seqs` run and the KV cache holds the chunk: each takes min(prompt, budget) tokens.
  A waiting request that does not fit the KV cache stops admission (FCFS, no skipping).
* KV is allocated as tokens are computed (no block rounding here: vLLM rounds up to 16-token
  blocks). When the running requests' next tokens do not fit, the most recently admitted
  running request is preempted: its KV is freed and it goes back to the front of the waiting
  queue, to be prefilled again over its prompt and the tokens it had generated (vLLM's
  recompute preemption). No waiting request is admitted in a step that preempted.
* A request whose prefill completes in a step gets its first token at the end of that step
  (the prefill pass samples it); each later token takes one step. Requests arriving during a
  step wait for its end (the step boundary).
* Step time, from the replica model: decode_step(D, mean context) for the D decoding requests
  plus one forward pass over the scheduled prefill chunks,
  forward(n = sum n_j, k = sum k_j, A = sum 2*L*H*d*((k_j + n_j)^2 - k_j^2)) for chunks of n_j
  tokens after k_j already computed (a whole prompt alone: exactly `prefill_ms`). vLLM runs
  decodes and chunks as one fused pass, reading the weights once; the sum, like the closed
  form's interleaving, pays for them twice in a mixed step (conservative by at most one
  weight read and the per-layer overhead per such step).

Per request: TTFT = first token - arrival, TPOT = (finish - first token) / (output - 1)
(undefined for one output token). Pure Python + numpy; aggregate bookkeeping keeps a step
O(1) apart from the requests it starts or finishes (~20k requests in a few seconds).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.profiles.capacity import SloTargets
from orchestrator.profiles.closed_form import MAX_NUM_SEQS, default_max_num_batched_tokens
from orchestrator.profiles.perf_model import ReplicaModel

_FAST_FORWARD_MIN_STEPS = 8  # fewer pure-decode steps than this are stepped one by one


class SizeBucketLike(Protocol):
    """One bucket of a request-size mix (the spec's `SizeBucket` fits)."""

    input_tokens: float
    output_tokens: float
    share: float


def poisson_arrivals(rate_rps: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` Poisson arrival times in ms at `rate_rps` requests/s, starting at 0."""
    gaps = rng.exponential(1e3 / rate_rps, size=n)
    return np.cumsum(gaps) - gaps[0]


def sample_sizes(mix: Sequence[SizeBucketLike], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(input tokens, output tokens) of `n` requests drawn from a size mix: each request gets
    its bucket's mean tokens, rounded (as the capacity model prices a bucket at its means)."""
    shares = np.array([b.share for b in mix], dtype=float)
    picks = rng.choice(len(mix), size=n, p=shares / shares.sum())
    ins = np.array([max(1, round(b.input_tokens)) for b in mix], dtype=np.int64)
    outs = np.array([max(1, round(b.output_tokens)) for b in mix], dtype=np.int64)
    return ins[picks], outs[picks]


class SimResult(BaseModel):
    """What one simulation recorded: per request (in arrival order) and per engine step."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    arrival_ms: np.ndarray
    admitted_ms: np.ndarray = Field(description="First scheduled (start of its first prefill step).")
    first_token_ms: np.ndarray
    finish_ms: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    step_start_ms: np.ndarray = Field(description="Engine steps' starts (a run of pure-decode steps between events is one entry).")
    step_ms: np.ndarray
    step_running: np.ndarray = Field(description="Requests in the running set during each entry.")
    steps: int = Field(description="Engine steps taken.")
    preemptions: int

    @property
    def ttft_ms(self) -> np.ndarray:
        return self.first_token_ms - self.arrival_ms

    @property
    def tpot_ms(self) -> np.ndarray:
        """(finish - first token) / (output - 1); NaN for one-token outputs."""
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = (self.finish_ms - self.first_token_ms) / (self.output_tokens - 1)
        return np.where(self.output_tokens > 1, tpot, np.nan)


class SimSummary(BaseModel):
    """Latency percentiles and SLO attainment over the measured requests."""

    model_config = ConfigDict(frozen=True)

    requests: int = Field(description="Requests measured (after the warm-up and cool-down are dropped).")
    offered_rps: float
    throughput_rps: float = Field(description="Measured requests finished / the span of their arrivals.")
    ttft_p50_ms: float
    ttft_p95_ms: float
    tpot_p50_ms: float
    tpot_p95_ms: float
    tpot_mean_ms: float
    within_slo: float = Field(description="Share of requests with TTFT and TPOT both within the SLO.")
    meets_slo: bool = Field(description="TTFT p95 and TPOT p95 both within the SLO (what the SLO asks).")
    meets_slo_mean_tpot: bool = Field(description="TTFT p95 and the mean TPOT within the SLO (what the closed form models: "
                                      "its TPOT is a mean).")
    mean_running: float = Field(description="Time-averaged running set over the measured span.")
    preemptions: int


def simulate(
    model: ReplicaModel,
    arrival_ms: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    *,
    max_num_seqs: int = MAX_NUM_SEQS,
    max_num_batched_tokens: int | None = None,
    kv_capacity_tokens: float | None = None,
) -> SimResult:
    """Serve the requests (arrival times in ms, sorted) on one replica; see the module docstring.

    `max_num_batched_tokens` defaults to vLLM's for the model's GPU, `kv_capacity_tokens` to the
    replica model's KV room. A request whose prompt + output exceed the KV room is refused
    (ValueError): vLLM rejects it at admission.
    """
    arrival = np.asarray(arrival_ms, dtype=float)
    inp = np.asarray(input_tokens, dtype=np.int64)
    out = np.asarray(output_tokens, dtype=np.int64)
    n = len(arrival)
    if not (len(inp) == len(out) == n):
        raise ValueError("arrivals, input_tokens and output_tokens must have the same length")
    if n and (np.any(np.diff(arrival) < 0) or inp.min() < 1 or out.min() < 1):
        raise ValueError("arrivals must be sorted and every request needs >= 1 input and output token")
    budget_max = max_num_batched_tokens or default_max_num_batched_tokens(model.gpu)
    kv_cap = model.kv_capacity_tokens() if kv_capacity_tokens is None else kv_capacity_tokens
    if n and (inp + out).max() > kv_cap:
        raise ValueError(f"a request of {(inp + out).max()} tokens does not fit the KV room ({kv_cap:.0f} tokens)")
    attn2 = 2.0 * model.arch.layers * model.arch.heads * model.arch.head_dim  # 2*L*H*d

    admitted = np.full(n, np.nan)
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    computed = np.zeros(n, dtype=np.int64)  # tokens with KV, while prefilling
    generated = np.zeros(n, dtype=np.int64)  # output tokens sampled so far
    # decoding requests, aggregated: at global step g a decoder holds base_kv + g tokens of KV
    base_kv = np.zeros(n, dtype=np.int64)
    version = np.zeros(n, dtype=np.int64)  # bumps on preemption: invalidates finish-heap entries

    waiting: deque[int] = deque()
    running: dict[int, None] = {}  # admission order (dicts keep insertion order)
    prefilling: dict[int, None] = {}  # the running requests whose prefill is not done, in order
    decoding: set[int] = set()
    finish_heap: list[tuple[int, int, int]] = []  # (global step it finishes at, version, request)
    dec_kv = 0  # sum over decoders of KV held, excluding the g-dependent part (+ len(decoding)*g)
    used = 0  # KV tokens held by prefilling requests
    g = 0  # decode steps done
    t = 0.0
    nxt = 0
    preemptions = 0
    steps = 0
    steps_t: list[float] = []
    steps_dt: list[float] = []
    steps_run: list[int] = []

    def decoder_kv() -> int:
        return dec_kv + len(decoding) * g

    def preempt_last() -> int:
        nonlocal dec_kv, used, preemptions
        victim = next(reversed(running))
        del running[victim]
        if victim in decoding:
            decoding.discard(victim)
            dec_kv -= int(base_kv[victim])
            version[victim] += 1
        else:
            del prefilling[victim]
            used -= int(computed[victim])
        computed[victim] = 0
        waiting.appendleft(victim)
        preemptions += 1
        return victim

    def start_decoding(r: int, now: float) -> None:
        """Prefill of `r` done at `now`: it samples a token, then decodes or finishes."""
        nonlocal dec_kv, used
        generated[r] += 1
        if generated[r] == 1:
            first[r] = now
        del prefilling[r]
        used -= int(computed[r])
        if generated[r] >= out[r]:
            finish[r] = now
            del running[r]
            computed[r] = 0
            return
        decoding.add(r)
        base_kv[r] = computed[r] - g
        dec_kv += int(base_kv[r])
        heapq.heappush(finish_heap, (g + int(out[r] - generated[r]), int(version[r]), r))

    def finish_decoders() -> None:
        nonlocal dec_kv
        while finish_heap and finish_heap[0][0] <= g:
            _, ver, r = heapq.heappop(finish_heap)
            if ver != version[r] or r not in decoding:
                continue
            decoding.discard(r)
            dec_kv -= int(base_kv[r])
            finish[r] = t
            del running[r]

    while nxt < n or running or waiting:
        while nxt < n and arrival[nxt] <= t:
            waiting.append(nxt)
            nxt += 1
        if not running and not waiting:
            t = float(arrival[nxt])
            continue
        # 1. the running requests' tokens must fit the KV cache; preempt from the back until they do
        preempted = False
        while True:
            need = decoder_kv() + len(decoding) + used
            need += sum(min(int(inp[r] + generated[r] - computed[r]), budget_max) for r in prefilling)
            if need <= kv_cap or not running:
                break
            preempt_last()
            preempted = True
        budget = budget_max - len(decoding)
        chunks: list[tuple[int, int]] = []  # (request, new tokens)
        kv_free = kv_cap - decoder_kv() - len(decoding) - used
        for r in prefilling:  # running requests mid-prefill, in admission order
            if budget <= 0:
                break
            c = min(int(inp[r] + generated[r] - computed[r]), budget)
            chunks.append((r, c))
            budget -= c
            kv_free -= c
        # 2. waiting requests, FCFS
        while not preempted and budget > 0 and waiting and len(running) < max_num_seqs:
            r = waiting[0]
            c = min(int(inp[r] + generated[r]), budget)
            if c > kv_free:
                break
            waiting.popleft()
            running[r] = None
            prefilling[r] = None
            if math.isnan(admitted[r]):
                admitted[r] = t
            chunks.append((r, c))
            budget -= c
            kv_free -= c
        d = len(decoding)
        if d == 0 and not chunks:  # cannot happen: with nothing running the head request fits
            raise RuntimeError("simulation stalled: nothing schedulable")
        # pure decode: run the steps up to the next finish, arrival or full KV at once
        k_max = 0 if chunks else min(finish_heap[0][0] - g, int((kv_cap - decoder_kv()) // d))
        if k_max >= _FAST_FORWARD_MIN_STEPS:
            dts = model.decode_step_ms(d, (decoder_kv() + d * np.arange(1, k_max + 1)) / d)
            ends = t + np.cumsum(dts)
            k = k_max if nxt >= n else min(k_max, int(np.searchsorted(ends, arrival[nxt])) + 1)
            steps_t.append(t)
            steps_dt.append(float(ends[k - 1] - t))
            steps_run.append(len(running))
            steps += k
            t = float(ends[k - 1])
            g += k
            finish_decoders()
            continue
        # 3. the step's time
        dt = model.decode_step_ms(d, (decoder_kv() + d) / d) if d else 0.0
        if chunks:
            new = sum(c for _, c in chunks)
            read = sum(int(computed[r]) for r, _ in chunks)
            attn = attn2 * sum((int(computed[r]) + c) ** 2 - int(computed[r]) ** 2 for r, c in chunks)
            dt += model.forward_ms(new, read, attn)
        steps_t.append(t)
        steps_dt.append(dt)
        steps_run.append(len(running))
        steps += 1
        t += dt
        # 4. apply: decoders advance one token; chunks land; completed prefills sample a token
        g += 1
        finish_decoders()
        for r, c in chunks:
            computed[r] += c
            used += c
            if computed[r] >= inp[r] + generated[r]:
                start_decoding(r, t)
    return SimResult(
        arrival_ms=arrival, admitted_ms=admitted, first_token_ms=first, finish_ms=finish,
        input_tokens=inp, output_tokens=out, step_start_ms=np.array(steps_t), step_ms=np.array(steps_dt),
        step_running=np.array(steps_run, dtype=np.int64), steps=steps, preemptions=preemptions,
    )


def summarize(result: SimResult, slo: SloTargets, *, warmup: float = 0.1, cooldown: float = 0.05) -> SimSummary:
    """Percentiles and SLO attainment over the requests between the first `warmup` and the last
    `cooldown` shares (by arrival), so an empty start and a draining end do not flatter them."""
    n = len(result.arrival_ms)
    lo, hi = int(n * warmup), max(int(n * warmup) + 1, n - int(n * cooldown))
    sel = slice(lo, hi)
    arrival = result.arrival_ms[sel]
    ttft, tpot = result.ttft_ms[sel], result.tpot_ms[sel]
    span = float(arrival[-1] - arrival[0]) if len(arrival) > 1 else 0.0
    tpot_known = tpot[~np.isnan(tpot)]
    tpot_p50, tpot_p95 = (np.percentile(tpot_known, [50, 95]) if len(tpot_known) else (0.0, 0.0))
    tpot_mean = float(tpot_known.mean()) if len(tpot_known) else 0.0
    ttft_p50, ttft_p95 = np.percentile(ttft, [50, 95])
    within = (ttft <= slo.ttft_p95_ms) & (np.isnan(tpot) | (tpot <= slo.tpot_p95_ms))
    finished_in = np.count_nonzero((result.finish_ms[sel] >= arrival[0]) & (result.finish_ms[sel] <= arrival[-1]))
    # time-averaged running set over [first, last measured arrival]
    starts, lengths, runs = result.step_start_ms, result.step_ms, result.step_running
    ends = starts + lengths
    overlap = np.clip(np.minimum(ends, arrival[-1]) - np.maximum(starts, arrival[0]), 0, None)
    mean_running = float((overlap * runs).sum() / span) if span > 0 else 0.0
    return SimSummary(
        requests=len(arrival),
        offered_rps=(len(arrival) - 1) / span * 1e3 if span > 0 else 0.0,
        throughput_rps=finished_in / span * 1e3 if span > 0 else 0.0,
        ttft_p50_ms=float(ttft_p50), ttft_p95_ms=float(ttft_p95),
        tpot_p50_ms=float(tpot_p50), tpot_p95_ms=float(tpot_p95), tpot_mean_ms=tpot_mean,
        within_slo=float(within.mean()),
        meets_slo=bool(ttft_p95 <= slo.ttft_p95_ms and tpot_p95 <= slo.tpot_p95_ms),
        meets_slo_mean_tpot=bool(ttft_p95 <= slo.ttft_p95_ms and tpot_mean <= slo.tpot_p95_ms),
        mean_running=mean_running, preemptions=result.preemptions,
    )


def simulate_rate(
    model: ReplicaModel,
    rate_rps: float,
    mix: Sequence[SizeBucketLike],
    slo: SloTargets,
    *,
    requests: int = 20000,
    seed: int = 0,
    **options: object,
) -> SimSummary:
    """Poisson arrivals at `rate_rps`, sizes drawn from `mix`, one replica; the summary.

    The same seed gives the same sizes and the same unit-rate arrival pattern at every rate
    (common random numbers), so results at different rates differ by the rate alone."""
    rng = np.random.default_rng(seed)
    unit = poisson_arrivals(1.0, requests, rng)
    ins, outs = sample_sizes(mix, requests, rng)
    result = simulate(model, unit / rate_rps, ins, outs, **options)  # type: ignore[arg-type]
    return summarize(result, slo)


def max_rate_within_slo(
    model: ReplicaModel,
    mix: Sequence[SizeBucketLike],
    slo: SloTargets,
    *,
    start_rps: float,
    rel_tol: float = 0.03,
    requests: int = 5000,
    seed: int = 0,
    mean_tpot: bool = False,
    **options: object,
) -> float:
    """The highest Poisson rate (req/s) at which the simulated replica's TTFT p95 and TPOT p95
    (the mean TPOT with `mean_tpot`) meet `slo`: bracket from `start_rps` by factors of 2, then
    bisect (geometrically) to `rel_tol`. 0 when even a rate of start/1024 misses."""

    def ok(rate: float) -> bool:
        summary = simulate_rate(model, rate, mix, slo, requests=requests, seed=seed, **options)
        return summary.meets_slo_mean_tpot if mean_tpot else summary.meets_slo

    low, high = start_rps, start_rps
    if ok(start_rps):
        high = start_rps * 2
        while ok(high):
            low, high = high, high * 2
    else:
        low = start_rps / 2
        while not ok(low):
            high, low = low, low / 2
            if low < start_rps / 1024:
                return 0.0
    while high / low > 1 + rel_tol:
        mid = math.sqrt(low * high)
        if ok(mid):
            low = mid
        else:
            high = mid
    return low
