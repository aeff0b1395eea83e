r"""Roofline-style performance model of one vLLM replica: prefill time, decode step time, KV room.

Why a model and not a table: the planner prices every (model, GPU type, GPU count) it can
rent, but public measurements cover a handful of GPUs and two models. The model turns
datasheet numbers (`catalog.gpus`) and config.json shapes (`profiles.architectures`) into
times, with six efficiency constants fitted once on published measurements
(`profiles.calibrate` -> `data/calibration.json`, see docs/capacity.md for the fit error).

Notation (one replica, tensor parallel over t GPUs of one type):

    P, P_a   total / active parameters          L, h     layers, hidden size
    b_w      bytes per weight (2 bf16/fp16, 1 fp8/int8, 0.5 int4)
    H, d     attention heads, head dim          kv       KV bytes per token = 2*L*kv_heads*d*2
    F        peak dense TFLOPS per GPU (fp8 peak for fp8 weights where the GPU has fp8)
    BW       peak memory bandwidth per GPU      M        memory per GPU
    MFU, MBU, c_layer, a_ic, B_ic   calibrated constants (a_ic, B_ic per interconnect class)

A forward pass over n new tokens that reads the weights once and k cached tokens' KV costs

    T(n, k, A) = (W(n) + k*kv) / (t*BW*MBU)                    memory: weights + KV read
               + (2*P_a*n + A) / (t*F*MFU)                     compute: GEMMs + attention
               + L*c_layer                                     per-layer launch/norm overhead
               + 2*L*[t>1]*(a_ic*log2(t) + 2(t-1)/t * n*h*2 / B_ic)   two all-reduces per layer

    W(n) = b_w * P * (1 - (1 - P_a/P)^n)     weight bytes touched: P_a for one token, -> P for
                                             a batch (MoE experts fill in; = b_w*P when dense)

Sums, not max(): measured step times rise smoothly through the memory/compute crossover and
the sum fits them better than a hard roofline. Then

    prefill of m prompts of s tokens:  T(m*s, 0, m*2*L*H*d*s^2)       (causal attention)
    decode step, batch B, context c:   T(B, B*c, 4*L*H*d*B*c)
    KV room, tokens:  (t*M*u - b_w*P - t*R) / kv   with u = 0.9 (vLLM's gpu_memory_utilization)
                                             and R = 1.5 GB per GPU for activations and CUDA graphs

GPUs without measurements (A10G, L40S, H200, B200, MI300X, ...) use the same constants with
their own datasheet numbers; the leave-one-GPU-out error in docs/capacity.md is the honest
error bar for them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.gpus import Dtype, GpuSpec
from orchestrator.profiles.architectures import Architecture

logger = logging.getLogger(__name__)

GPU_MEMORY_UTILIZATION = 0.9  # vLLM's default share of each GPU's memory it may use
ACTIVATION_RESERVE_GB = 1.5  # per GPU: activations at max_num_batched_tokens, CUDA graphs, NCCL buffers
KV_BYTES = 2.0  # KV cache stays 16-bit even for fp8 weights (vLLM's default kv_cache_dtype=auto)


def weight_bytes_per_param(dtype: Dtype) -> float:
    """Bytes one weight takes in GPU memory."""
    return {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}[dtype]


class Calibration(BaseModel):
    """The fitted efficiency constants (see the module docstring for where each enters)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mfu: float = Field(gt=0, le=1, description="Achieved share of peak tensor FLOPS.")
    mbu: float = Field(gt=0, le=1, description="Achieved share of peak memory bandwidth.")
    layer_overhead_ms: float = Field(ge=0, description="Fixed cost per layer per forward pass.")
    allreduce_latency_ms: dict[str, float] = Field(description="Per all-reduce per log2(t), by interconnect.")
    allreduce_gb_s: dict[str, float] = Field(description="Effective all-reduce bandwidth, by interconnect.")


def calibration_path() -> Path:
    """The bundled calibration file written by `python -m orchestrator.profiles.calibrate`."""
    return Path(__file__).resolve().parent / "data" / "calibration.json"


@functools.cache
def bundled_calibration() -> Calibration:
    """The constants shipped with the package."""
    data = json.loads(calibration_path().read_text(encoding="utf-8"))
    return Calibration.model_validate(data["constants"])


class ReplicaModel:
    """Times and memory of one replica of `arch` on `tp` GPUs of type `gpu` (see module docstring)."""

    def __init__(self, arch: Architecture, gpu: GpuSpec, tp: int, dtype: Dtype, cal: Calibration):
        self.arch, self.gpu, self.tp, self.dtype = arch, gpu, tp, dtype
        self._weight_bytes = arch.params_b * 1e9 * weight_bytes_per_param(dtype)
        self._active_share = arch.active_params_b / arch.params_b
        self._kv_per_token = arch.kv_bytes_per_token(KV_BYTES)
        self._mem_bytes_per_ms = tp * gpu.mem_bw_gb_s * 1e9 * cal.mbu / 1e3
        self._flops_per_ms = tp * gpu.peak_tflops(dtype) * 1e12 * cal.mfu / 1e3
        self._attn_unit = arch.layers * arch.heads * arch.head_dim  # L*H*d
        self._overhead_ms = arch.layers * cal.layer_overhead_ms
        if tp > 1:
            ic = gpu.interconnect
            self._allreduce_fixed_ms = 2 * arch.layers * cal.allreduce_latency_ms[ic] * math.log2(tp)
            # two all-reduces per layer, ring traffic 2(t-1)/t of n*h 16-bit activations each
            self._allreduce_ms_per_token = (
                2 * arch.layers * 2 * (tp - 1) / tp * arch.hidden * 2 / (cal.allreduce_gb_s[ic] * 1e9 / 1e3)
            )
        else:
            self._allreduce_fixed_ms = self._allreduce_ms_per_token = 0.0

    def forward_ms(self, new_tokens: float, kv_tokens_read: float, attention_flops: float) -> float:
        """T(n, k, A): one forward pass over `new_tokens` reading `kv_tokens_read` cached tokens."""
        weights_read = self._weight_bytes * (1.0 - (1.0 - self._active_share) ** new_tokens)
        memory = (weights_read + kv_tokens_read * self._kv_per_token) / self._mem_bytes_per_ms
        compute = (2e9 * self.arch.active_params_b * new_tokens + attention_flops) / self._flops_per_ms
        comm = self._allreduce_fixed_ms + self._allreduce_ms_per_token * new_tokens
        return memory + compute + self._overhead_ms + comm

    def prefill_ms(self, prompt_tokens: float, prompts: float = 1.0) -> float:
        """Time to prefill `prompts` prompts of `prompt_tokens` tokens each in one pass."""
        attention = prompts * 2 * self._attn_unit * prompt_tokens**2
        return self.forward_ms(prompts * prompt_tokens, 0.0, attention)

    def decode_step_ms(self, batch: float, context: float) -> float:
        """Time of one decode step for `batch` sequences holding `context` tokens each on average."""
        kv_tokens = batch * context
        return self.forward_ms(batch, kv_tokens, 4 * self._attn_unit * kv_tokens)

    def kv_capacity_tokens(self) -> float:
        """Tokens the KV cache holds once weights and the activation reserve are placed (<0: no fit)."""
        budget = self.tp * (self.gpu.memory_gb * GPU_MEMORY_UTILIZATION - ACTIVATION_RESERVE_GB) * 1e9
        return (budget - self._weight_bytes) / self._kv_per_token
