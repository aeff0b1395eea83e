r"""One vLLM replica at a request rate, in closed form: its mean batch and the share of requests past each p95 target.

Why: a plan promises p95 TTFT and TPOT, so capacity is the highest rate at which at most 5 % of
requests miss; means are not enough (the simulator in `profiles.simulate` showed a
mean-based model promising up to 2x what one replica serves). Everything here is priced on
`perf_model.ReplicaModel`'s step times and vLLM 0.32's scheduler (chunked prefill, a token budget
per step shared by decodes and prefill chunks, `max_num_seqs`, KV blocks), as the simulator is.

For a mix of sizes b (I_b input, O_b output tokens, share p_b) at λ requests/ms, with B the mean
number of decoding sequences and s = decode_step(B, mean context):

    chunk     = budget - B                        prefill tokens per step beside the decodes
    T_b       = Σ forward(chunk_j)                prefill compute over the prompt's chunks
    S_b       = T_b + (I_b/chunk) * s             prefill service: its share of the steps it rides
    L_b       = T_b + ceil(I_b/chunk) * s         its own prefill's latency: every chunk waits a step
    ρ = λ E[T],  u = λ E[S]                       share of time prefilling; prefill-queue load

TTFT (M/G/1 queue of prompts; exponential tail of the Pollaczek-Khinchine wait):
    E[Wq] = λ E[S²] / (2(1-u)),  P(Wq > t) = u exp(-t u / E[Wq])
    TTFT_b = Wq + L_b + s                         wait, own prefill, the step in flight
TPOT (a request's O_b - 1 decode steps are stretched by every prefill that runs meanwhile: the
prefill work V queued behind it when it starts and what arrives during its window, an M/G/1
busy period started by (O_b - 1) s + V):
    E[V] = λ E[T²] / (2(1-ρ)),  Var V = E[V]² + λ E[T³] / (3(1-ρ))
    D_b = ((O_b-1) s + E[V]) / (1-ρ)              mean decode time
    Var D_b = ((O_b-1) s + E[V]) λ E[T²] / (1-ρ)³ + Var V / (1-ρ)²
    TPOT_b = D_b / (O_b - 1), tail by a gamma with that mean and variance (Wilson-Hilferty)
KV and sequences (M/G/∞: each decoding request holds I_b + O_b/2 tokens on average):
    K = λ Σ p_b D_b (I_b + O_b/2) + λ Σ p_b S_b I_b / 2,  Var K = λ Σ p_b D_b (I_b + O_b/2)²
    N = B + λ E[S],  B = λ Σ p_b D_b              (solved for B by fixed-point iteration)

A rate is within the SLO when Σ p_b P(TTFT_b > SLO) <= 5 %, Σ p_b P(TPOT_b > SLO) <= 5 %,
K <= KV room and N <= max_num_seqs at a burst: at λ(1 + 3/sqrt(λ·stay)), the rate a request sees over its
stay (N/λ) one time in 700, extrapolated along dK/dλ and dN/dλ at λ. Near the rate where B diverges
(every added sequence slows the step that finishes them) the slope is steep and a short burst fills the
cache; vLLM then preempts, each preemption recomputes a whole prompt, and the simulator shows the
queue not draining. Far from it this is the Poisson spread of the running set. and N + 1.645 sqrt(N) <= max_num_seqs.
docs/capacity.md compares the result with the simulator.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

from orchestrator.catalog.gpus import GpuSpec
from orchestrator.profiles.perf_model import ReplicaModel

MAX_NUM_SEQS = 256  # vLLM's default cap on running sequences per replica
TAIL = 0.05  # the SLOs are p95s
Z_BURST = 3.0  # KV and sequences must fit at the arrival rate a request's stay sees 0.13 % of the time
_SLOPE_STEP = 0.01  # relative rate step for the slope of KV use and running sequences
GIB = 2**30
_FIXED_POINT_STEPS = 60
_QUANTILE_STEPS = 40
_RATE_STEPS = 22  # geometric bisection over 6 decades of rate: within 0.1 %

Binding = Literal["tpot", "ttft", "kv_memory", "max_num_seqs"]


def default_max_num_batched_tokens(gpu: GpuSpec) -> int:
    """vLLM 0.32's default token budget per step for the OpenAI API server on this GPU.

    `EngineArgs.get_batch_defaults` (vllm/engine/arg_utils.py): 16384 on GPUs with >= 160 GiB,
    8192 on >= 70 GiB except A100s (H100, H200), else 2048 (`SchedulerConfig.
    DEFAULT_MAX_NUM_BATCHED_TOKENS`, vllm/config/scheduler.py); chunked prefill stays on.
    """
    memory_gib = gpu.memory_gb * 1e9 / GIB
    if memory_gib >= 160:
        return 16384
    if memory_gib >= 70 and "a100" not in gpu.name.lower():
        return 8192
    return 2048


class Size(NamedTuple):
    """One request size of a mix and its share of the requests."""

    input_tokens: float
    output_tokens: float
    share: float


class OperatingPoint(NamedTuple):
    """The replica at one rate (see the module docstring for each quantity)."""

    rate_per_ms: float
    batch: float  # B, mean decoding sequences
    ttft_miss: float  # share of requests with TTFT over the SLO
    tpot_miss: float
    kv_tokens: float  # mean KV tokens held
    seqs: float  # mean running sequences (decoding and prefilling)
    ttft_p95_ms: float
    tpot_p95_ms: float

    def stay_ms(self) -> float:
        """Mean time a request holds a running slot (Little's law: running sequences / rate)."""
        return self.seqs / self.rate_per_ms


def gamma_tail(mean: float, variance: float, x: float) -> float:
    """P(X > x) for a gamma-distributed X of this mean and variance (Wilson-Hilferty's cube-root
    normal approximation; a point mass when the variance is 0)."""
    if variance <= 0 or mean <= 0:
        return 1.0 if x < mean else 0.0
    if x <= 0:
        return 1.0
    k = mean * mean / variance
    z = ((x / mean) ** (1 / 3) - (1 - 1 / (9 * k))) / math.sqrt(1 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


def _quantile(tail: Callable[[float], float], high: float) -> float:
    """The smallest x with tail(x) <= 5 % (tail decreasing), by bisection on [0, high]."""
    low = 0.0
    while tail(high) > TAIL:
        low, high = high, high * 2
    for _ in range(_QUANTILE_STEPS):
        mid = (low + high) / 2
        if tail(mid) > TAIL:
            low = mid
        else:
            high = mid
    return high


class ReplicaQueue:
    """The closed-form model of one replica serving a size mix (module docstring)."""

    def __init__(self, model: ReplicaModel, mix: Sequence[Size], ttft_slo_ms: float, tpot_slo_ms: float, *,
                 max_num_batched_tokens: int | None = None, max_num_seqs: int = MAX_NUM_SEQS) -> None:
        total = sum(b.share for b in mix)
        if not mix or total <= 0:
            raise ValueError("a size mix needs at least one bucket with a positive share")
        self.model = model
        self.ttft_slo_ms, self.tpot_slo_ms = ttft_slo_ms, tpot_slo_ms
        self.mix = tuple(Size(float(b.input_tokens), float(b.output_tokens), b.share / total) for b in mix)
        self.budget = max_num_batched_tokens or default_max_num_batched_tokens(model.gpu)
        self.max_num_seqs = max_num_seqs
        self.kv_room = model.kv_capacity_tokens()
        self._attn2 = 2.0 * model.arch.layers * model.arch.heads * model.arch.head_dim

    def prefill_work_ms(self, input_tokens: float, chunk: int) -> float:
        """Compute time of a prompt prefilled in chunks of `chunk` tokens (each chunk reads the KV before it)."""
        return _chunked_prefill_ms(self.model, self._attn2, round(input_tokens), chunk)

    def chunk(self, batch: float) -> int:
        return max(16, self.budget - min(math.ceil(batch), self.max_num_seqs))

    def at(self, rate_per_ms: float, *, percentiles: bool = False) -> OperatingPoint | None:
        """The operating point at `rate_per_ms`, or None when the replica cannot keep up (ρ or u >= 1,
        or the decode batch grows without bound). `percentiles`: also compute the p95s (slower)."""
        lam, mix = rate_per_ms, self.mix
        batch = 0.0
        for _ in range(_FIXED_POINT_STEPS):
            chunk = self.chunk(batch)
            work = [self.prefill_work_ms(b.input_tokens, chunk) for b in mix]
            rho = lam * sum(b.share * t for b, t in zip(mix, work))
            if rho >= 1:
                return None
            context = _mean_context(mix, batch)
            step = self.model.decode_step_ms(max(batch, 1.0), context)
            served = [t + b.input_tokens / chunk * step for b, t in zip(mix, work)]  # prompts share a step's decodes
            own = [t + math.ceil(b.input_tokens / chunk) * step for b, t in zip(mix, work)]  # a prompt's own steps
            u = lam * sum(b.share * s for b, s in zip(mix, served))
            if u >= 1:
                return None
            t2 = sum(b.share * t * t for b, t in zip(mix, work))
            queued = lam * t2 / (2 * (1 - rho))  # E[V]
            decode = [((b.output_tokens - 1) * step + queued) / (1 - rho) for b in mix]
            new_batch = lam * sum(b.share * d for b, d in zip(mix, decode))
            if new_batch > 16 * self.max_num_seqs:
                return None
            if abs(new_batch - batch) <= 1e-6 * max(1.0, new_batch):
                batch = new_batch
                break
            batch = 0.5 * (batch + new_batch) if new_batch > 2 * batch + 1 else new_batch
        else:
            return None
        t3 = sum(b.share * t**3 for b, t in zip(mix, work))
        queued_var = queued**2 + lam * t3 / (3 * (1 - rho))
        s2 = sum(b.share * s * s for b, s in zip(mix, served))
        wait_mean = lam * s2 / (2 * (1 - u))

        def wait_tail(t: float) -> float:
            if t <= 0:
                return 1.0
            return u * math.exp(-t * u / wait_mean) if wait_mean > 0 else 0.0

        def ttft_tail(limit: float) -> float:
            return sum(b.share * wait_tail(limit - o - step) for b, o in zip(mix, own))

        def tpot_tail(limit: float) -> float:
            miss = 0.0
            for b, d in zip(mix, decode):
                if b.output_tokens < 2:
                    continue
                start = (b.output_tokens - 1) * step + queued
                var = start * lam * t2 / (1 - rho) ** 3 + queued_var / (1 - rho) ** 2
                miss += b.share * gamma_tail(d, var, limit * (b.output_tokens - 1))
            return miss

        held = [b.input_tokens + b.output_tokens / 2 for b in mix]
        kv_mean = lam * sum(b.share * (d * h + s * b.input_tokens / 2) for b, d, h, s in zip(mix, decode, held, served))
        seqs = batch + u
        ttft95 = _quantile(ttft_tail, max(own) + step + 1.0) if percentiles else math.nan
        tpot95 = _quantile(tpot_tail, max(d / max(b.output_tokens - 1, 1) for b, d in zip(mix, decode)) + 1.0) \
            if percentiles else math.nan
        return OperatingPoint(
            rate_per_ms=lam, batch=batch, ttft_miss=ttft_tail(self.ttft_slo_ms), tpot_miss=tpot_tail(self.tpot_slo_ms),
            kv_tokens=kv_mean, seqs=seqs,
            ttft_p95_ms=ttft95, tpot_p95_ms=tpot95,
        )

    def max_rate(self) -> tuple[OperatingPoint | None, Binding]:
        """The highest rate (requests/ms) within the SLO, its operating point (with p95s) and what
        stops a higher one; (None, binding) when even an idle replica misses (`unservable`)."""
        blocked = self.unservable()
        if blocked is not None:
            return None, blocked
        mean_work = sum(b.share * self.prefill_work_ms(b.input_tokens, self.budget) for b in self.mix)
        high = 1.0 / mean_work  # ρ = 1
        low = high * 1e-6
        binding: Binding | None = None
        for _ in range(_RATE_STEPS):
            mid = math.sqrt(low * high)
            broken = self.violated(mid)
            if broken is None:
                low = mid
            else:
                high, binding = mid, broken
        return self.at(low, percentiles=True), binding or "tpot"

    def violated(self, rate_per_ms: float) -> Binding | None:
        """The first limit the replica breaks at this rate, or None when it is within the SLO.

        KV and running sequences are checked at a burst: the rate a request sees over its stay
        (Poisson: λ + Z_BURST·sqrt(λ/stay)), extrapolated along their slope at λ. Near the rate where
        the decode batch diverges (each added sequence slows the step that finishes them) that slope
        is steep, a short burst fills the cache, and preemptions (each recomputing a prompt) do not
        drain; far from it this is the Poisson spread of the running set."""
        point = self.at(rate_per_ms)
        if point is None or point.tpot_miss > TAIL:
            return "tpot"
        if point.ttft_miss > TAIL:
            return "ttft"
        nearby = self.at(rate_per_ms * (1 + _SLOPE_STEP))
        if nearby is None:
            return "tpot"  # the decode batch diverges just above: no headroom at all
        burst = Z_BURST / math.sqrt(rate_per_ms * point.stay_ms()) / _SLOPE_STEP  # the burst, in slope steps
        if point.kv_tokens + burst * (nearby.kv_tokens - point.kv_tokens) > self.kv_room:
            return "kv_memory"
        if point.seqs + burst * (nearby.seqs - point.seqs) > self.max_num_seqs:
            return "max_num_seqs"
        return None

    def unservable(self) -> Binding | None:
        """Why an idle replica misses the SLO for more than 5 % of the mix, or None."""
        if any(b.input_tokens + b.output_tokens > self.kv_room for b in self.mix):
            return "kv_memory"
        idle = self.at(self.mix_rate_floor())
        if idle is None or idle.tpot_miss > TAIL:
            return "tpot"
        if idle.ttft_miss > TAIL:
            return "ttft"
        return None

    def mix_rate_floor(self) -> float:
        """A rate low enough to count as idle (one request per 10^6 prefill times)."""
        return 1e-6 / sum(b.share * self.prefill_work_ms(b.input_tokens, self.budget) for b in self.mix)


def _mean_context(mix: Sequence[Size], batch: float) -> float:
    """Mean tokens a decoding sequence holds, weighted by the time each size spends decoding."""
    weights = [b.share * max(b.output_tokens - 1, 0.0) for b in mix]
    total = sum(weights)
    if total <= 0:
        return sum(b.share * b.input_tokens for b in mix)
    return sum(w * (b.input_tokens + b.output_tokens / 2) for w, b in zip(weights, mix)) / total


@functools.lru_cache(maxsize=65536)
def _chunked_prefill_ms(model: ReplicaModel, attn2: float, input_tokens: int, chunk: int) -> float:
    done, total = 0, 0.0
    while done < input_tokens:
        n = min(chunk, input_tokens - done)
        total += model.forward_ms(n, done, attn2 * ((done + n) ** 2 - done**2))
        done += n
    return total
