"""Known model architectures: the shape numbers the capacity model needs, by model name.

Replica sizing and the performance model need parameter counts (total for memory, active for
FLOPs and bytes read per token) and the attention shape (KV-cache bytes per token); they
never need the weights, so a small table of config.json facts is enough.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.catalog.gpus import unknown_name_message
from orchestrator.errors import InputError

if TYPE_CHECKING:
    from orchestrator.spec.models import CustomArchitecture

_CSV = Path(__file__).resolve().parent / "data" / "architectures.csv"


class Architecture(BaseModel):
    """A transformer's size and attention shape, from its Hugging Face config.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    params_b: float = Field(gt=0, description="Total parameters, billions: what must sit in GPU memory.")
    active_params_b: float = Field(gt=0, description="Parameters used per token (MoE < total), billions.")
    layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0, description="Key/value heads (GQA < heads).")
    head_dim: int = Field(gt=0)
    vocab: int = Field(gt=0)
    max_context: int = Field(gt=0, description="Longest sequence the model supports, tokens.")
    source: str

    @model_validator(mode="after")
    def _active_within_total(self) -> Architecture:
        if self.active_params_b > self.params_b:
            raise ValueError(f"{self.name}: active_params_b > params_b")
        return self

    def kv_bytes_per_token(self, kv_bytes: float = 2.0) -> float:
        """KV-cache bytes one token occupies across all layers (K and V, 16-bit by default)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * kv_bytes


@functools.cache
def _table() -> dict[str, Architecture]:
    with _CSV.open(newline="", encoding="utf-8") as f:
        return {row["name"]: Architecture.model_validate(row) for row in csv.DictReader(f)}


def known_architectures() -> tuple[str, ...]:
    """Every model name `architecture` accepts."""
    return tuple(_table())


def architecture(name: str) -> Architecture:
    """The architecture of a known model name (case-insensitive); InputError with suggestions if unknown."""
    table = _table()
    found = table.get(name.lower())
    if found is None:
        raise InputError(
            unknown_name_message(
                "model architecture",
                name,
                list(table),
                "name a known architecture (or measure the model with `orchestrator profile`)",
            )
        )
    return found



# --- Any decoder model: an architecture from a Hugging Face config.json, or from its fields inline ---------

CONFIG_MAX_BYTES = 1_000_000
"""The most of a config.json read: real ones are a few KB; anything larger is not a config."""

CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "layers": ("num_hidden_layers",),
    "hidden": ("hidden_size",),
    "heads": ("num_attention_heads",),
    "kv_heads": ("num_key_value_heads",),
    "head_dim": ("head_dim",),
    "vocab": ("vocab_size",),
    "max_context": ("max_position_embeddings",),
    "intermediate_size": ("intermediate_size",),
    "experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "experts_per_token": ("num_experts_per_tok",),
    "moe_intermediate_size": ("moe_intermediate_size",),
    "shared_experts": ("n_shared_experts",),
    "shared_expert_intermediate_size": ("shared_expert_intermediate_size",),
}
"""Inline field -> the config.json keys that carry it, first present wins (MoE families name experts differently)."""

_REQUIRED = ("layers", "hidden", "heads", "vocab", "max_context")
_PLAIN_MLP = frozenset({"phi", "gpt_neox", "starcoder2"})  # up/down MLP with biases; every other family is gated
_QKV_BIAS = frozenset({"qwen2", "qwen2_moe"})  # always carry q/k/v biases
_TIED_BY_DEFAULT = frozenset({"gemma", "gemma2"})  # tie_word_embeddings absent: tied here, untied elsewhere
_MLA_KEYS = ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
_DECODER_SUFFIX = "ForCausalLM"


class ArchitectureError(InputError):
    """An architecture that cannot be resolved; `at` is where under `architecture`: ".config", ".layers" or ""."""

    def __init__(self, message: str, at: str = ""):
        super().__init__(message)
        self.at = at


@dataclass(frozen=True)
class _Shape:
    """What parameter counting needs, family quirks already applied."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_context: int
    intermediate: int  # dense MLP width (0: unknown)
    experts: int = 0  # routed experts per MoE layer; 0: dense
    experts_per_token: int = 0
    expert_intermediate: int = 0
    shared_intermediate: int = 0  # total width of the always-on shared experts
    shared_gate: bool = False  # Qwen-MoE gates its shared expert (hidden -> 1)
    moe_layers: int = 0
    tied: bool = False
    gated: bool = True
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    mla: tuple[int, ...] | None = None  # q_lora_rank (0: none), kv_lora_rank, qk_nope, qk_rope, v_head_dim

    def attention(self) -> int:
        h, n = self.hidden, self.heads
        if self.mla is not None:  # DeepSeek latent attention: low-rank q and kv projections with their norms
            q_lora, kv_lora, nope, rope, v_dim = self.mla
            q = h * q_lora + q_lora + q_lora * n * (nope + rope) if q_lora else h * n * (nope + rope)
            return q + h * (kv_lora + rope) + kv_lora + kv_lora * n * (nope + v_dim) + n * v_dim * h
        q, kv = n * self.head_dim, self.kv_heads * self.head_dim
        return 2 * h * q + 2 * h * kv + (q + 2 * kv if self.qkv_bias else 0) + (h if self.o_bias else 0)

    def mlp(self, width: int) -> int:
        matrices = 3 if self.gated else 2
        return matrices * self.hidden * width + ((matrices - 1) * width + self.hidden if self.mlp_bias else 0)

    def counts(self) -> tuple[int, int]:
        """(total, active per token): embeddings and LM head, layers (attention, MLP or experts, 2 norms), final norm."""
        h = self.hidden
        outside = self.vocab * h * (1 if self.tied else 2) + h + (self.vocab if not self.gated and self.mlp_bias else 0)
        layer = self.attention() + 2 * h
        dense = (self.layers - self.moe_layers) * (layer + self.mlp(self.intermediate))
        moe = layer + h * self.experts + (self.mlp(self.shared_intermediate) if self.shared_intermediate else 0) \
            + (h if self.shared_gate else 0)
        expert = self.mlp(self.expert_intermediate)
        return (outside + dense + self.moe_layers * (moe + self.experts * expert),
                outside + dense + self.moe_layers * (moe + self.experts_per_token * expert))


@dataclass(frozen=True)
class _Fields:
    """Shape fields under their inline names, and how messages name and locate them."""

    values: dict[str, object]
    family: dict[str, object]  # a config.json's own keys: model_type, MoE layout, latent attention; {} inline
    keys: dict[str, str] | None = None  # inline name -> the config.json key read; None: the fields are inline

    def say(self, field: str) -> str:
        return self.keys[field] if self.keys else field

    def at(self, field: str = "") -> str:
        return ".config" if self.keys is not None else (f".{field}" if field else "")

    def integer(self, field: str, value: object = None, zero: bool = False) -> int | None:
        """A positive (or, with `zero`, non-negative) integer field, None when absent."""
        value = self.values.get(field) if value is None else value
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
            raise ArchitectureError(f"{self.say(field) if field in CONFIG_KEYS else field} is {value!r}; allowed: "
                                    f"a {'non-negative' if zero else 'positive'} integer", self.at(field))
        return value

    def family_int(self, key: str, default: int) -> int:
        found = self.integer(key, self.family.get(key), zero=True)
        return default if found is None else found


def _shape(fields: _Fields) -> _Shape:
    ints = {field: fields.integer(field, zero=field == "shared_experts") for field in CONFIG_KEYS}
    missing = [fields.say(field) for field in _REQUIRED if ints[field] is None]
    if missing:
        raise ArchitectureError(f"missing {', '.join(missing)}; allowed: a decoder's shape with "
                                f"{', '.join(map(fields.say, _REQUIRED))}, and {fields.say('intermediate_size')} "
                                f"or the parameter counts", fields.at())
    layers, hidden, heads = ints["layers"], ints["hidden"], ints["heads"]
    kv_heads = ints["kv_heads"] or heads
    if ints["head_dim"] is None and hidden % heads:
        raise ArchitectureError(f"{fields.say('hidden')} {hidden} is not divisible by {fields.say('heads')} {heads}; "
                                f"allowed: a hidden size that is a multiple of the heads, or {fields.say('head_dim')}",
                                fields.at("heads"))
    if heads % kv_heads:
        raise ArchitectureError(f"{fields.say('heads')} {heads} is not a multiple of {fields.say('kv_heads')} "
                                f"{kv_heads}; allowed: KV heads that each serve a whole number of query heads",
                                fields.at("kv_heads"))
    experts, per_token = ints["experts"] or 0, ints["experts_per_token"] or 0
    if (experts or per_token) and not 1 <= per_token <= experts:
        raise ArchitectureError(f"{fields.say('experts_per_token')} {per_token or 'missing'} with {experts} "
                                f"{fields.say('experts')}; allowed: routed experts and 1 to that many per token",
                                fields.at("experts_per_token"))
    family, model_type = fields.family, str(fields.family.get("model_type", ""))
    head_dim, mla = ints["head_dim"] or hidden // heads, None
    if family.get("kv_lora_rank"):
        dims = [fields.integer(key, family.get(key)) for key in _MLA_KEYS]
        if None in dims:
            absent = [key for key, dim in zip(_MLA_KEYS, dims) if dim is None]
            raise ArchitectureError(f"latent attention without {', '.join(absent)}; allowed: DeepSeek-V2/V3's "
                                    f"{', '.join(_MLA_KEYS)} together", fields.at())
        mla = (fields.family_int("q_lora_rank", 0), *dims)
        head_dim = dims[1] + dims[2]  # the KV cache counted uncompressed, as multi-head keys (docs/capacity.md)
    expert_width = ints["moe_intermediate_size"] or ints["intermediate_size"] or 0
    shared = ints["shared_expert_intermediate_size"] or (ints["shared_experts"] or 0) * expert_width
    tied = fields.values.get("tie_embeddings", family.get("tie_word_embeddings"))
    bias = bool(family.get("attention_bias"))
    return _Shape(
        layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim, vocab=ints["vocab"],
        max_context=ints["max_context"], intermediate=ints["intermediate_size"] or 0, experts=experts,
        experts_per_token=per_token, expert_intermediate=expert_width, shared_intermediate=shared,
        shared_gate=ints["shared_expert_intermediate_size"] is not None,
        moe_layers=_moe_layers(layers, fields) if experts else 0,
        tied=bool(tied) if tied is not None else model_type in _TIED_BY_DEFAULT, gated=model_type not in _PLAIN_MLP,
        qkv_bias=bias or model_type in _QKV_BIAS | _PLAIN_MLP, o_bias=bias or model_type in _PLAIN_MLP,
        mlp_bias=bool(family.get("mlp_bias")) or model_type in _PLAIN_MLP, mla=mla,
    )


def _moe_layers(layers: int, fields: _Fields) -> int:
    """How many layers route to experts: DeepSeek keeps its first k dense, Qwen-MoE may skip some."""
    first_dense = fields.family_int("first_k_dense_replace", 0)
    every = max(1, fields.family_int("moe_layer_freq", 1))
    step = max(1, fields.family_int("decoder_sparse_step", 1))
    dense_only = fields.family.get("mlp_only_layers") or []
    dense_only = set(dense_only) if isinstance(dense_only, list) else set()
    return sum(1 for i in range(layers) if i >= first_dense and i % every == 0 and (i + 1) % step == 0 and i not in dense_only)


def _architecture(name: str, source: str, fields: _Fields) -> Architecture:
    """The perf model's input: counts given inline win; derived ones fill in (derivation needs the MLP widths)."""
    shape = _shape(fields)
    params_b, active_params_b = fields.values.get("params_b"), fields.values.get("active_params_b")
    widths = shape.expert_intermediate if shape.experts else 1
    if shape.moe_layers < shape.layers:
        widths = widths and shape.intermediate
    if (params_b is None or shape.experts and active_params_b is None) and not widths:
        raise ArchitectureError(f"{fields.say('intermediate_size')} missing; allowed: the MLP width(s) "
                                f"({fields.say('intermediate_size')}, and {fields.say('moe_intermediate_size')} for "
                                "experts) to derive the parameter counts, or params_b (and active_params_b for MoE)",
                                fields.at())
    total, active = shape.counts()
    params = float(params_b) if params_b is not None else total / 1e9
    if active_params_b is None:
        active_params_b = min(params, active / 1e9) if shape.experts else params
    if active_params_b > params:
        raise ArchitectureError(f"active_params_b {active_params_b} exceeds params_b {params}; allowed: active "
                                "parameters at most the total", fields.at("active_params_b"))
    return Architecture(
        name=name, params_b=params, active_params_b=active_params_b, layers=shape.layers, hidden=shape.hidden,
        heads=shape.heads, kv_heads=shape.kv_heads, head_dim=shape.head_dim, vocab=shape.vocab,
        max_context=shape.max_context, source=source,
    )


def architecture_from_config(config: dict[str, object], name: str, source: str) -> Architecture:
    """An architecture from a parsed Hugging Face config.json of a decoder-only text model."""
    if config.get("is_encoder_decoder") or "text_config" in config or "vision_config" in config:
        kind = "an encoder-decoder" if config.get("is_encoder_decoder") else "a multimodal"
        raise ArchitectureError(f"{kind} model's config; allowed: a decoder-only text model (architectures ending "
                                f"in {_DECODER_SUFFIX}), or the language model's shape inline", ".config")
    declared = config.get("architectures")
    if declared is not None and not (isinstance(declared, list) and declared
                                     and all(isinstance(a, str) and a.endswith(_DECODER_SUFFIX) for a in declared)):
        raise ArchitectureError(f"architectures {declared!r} is not a decoder-only language model; allowed: "
                                f"*{_DECODER_SUFFIX} (LlamaForCausalLM, Qwen2ForCausalLM, MixtralForCausalLM, "
                                "DeepseekV3ForCausalLM, ...)", ".config")
    values = {field: next((config[k] for k in keys if config.get(k) is not None), None) for field, keys in CONFIG_KEYS.items()}
    keys = {field: next((k for k in keys if config.get(k) is not None), keys[0]) for field, keys in CONFIG_KEYS.items()}
    return _architecture(name, source, _Fields(values, config, keys))


def read_config(path: Path) -> dict[str, object]:
    """A config.json's mapping, or ArchitectureError (at `.config`) saying why it cannot be one."""
    try:
        with path.open("rb") as f:
            data = f.read(CONFIG_MAX_BYTES + 1)
    except FileNotFoundError:
        raise ArchitectureError(f"{path}: no such file; allowed: a config.json path, relative to the spec's "
                                "directory or absolute", ".config") from None
    except OSError as exc:
        raise ArchitectureError(f"{path}: cannot be read ({exc.strerror or exc}); allowed: a readable config.json file",
                                ".config") from None
    if len(data) > CONFIG_MAX_BYTES:
        raise ArchitectureError(f"{path}: over {CONFIG_MAX_BYTES // 1000} KB, too large for a config.json; allowed: "
                                "a model's config.json (a few KB), not its weights or tokenizer", ".config")
    try:
        config = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError is one
        raise ArchitectureError(f"{path}: not JSON ({exc}); allowed: a Hugging Face config.json", ".config") from None
    if not isinstance(config, dict):
        raise ArchitectureError(f"{path}: a JSON {type(config).__name__}, not an object; allowed: a Hugging Face "
                                "config.json", ".config")
    return config


def resolve_architecture(value: str | CustomArchitecture, base_dir: Path | None = None) -> Architecture:
    """A spec's `architecture`: a preset name, a config.json (a relative path is under `base_dir`, the spec's
    directory; without one, the working directory) or the shape inline. ArchitectureError says what is wrong
    and where under `architecture`.

    The first resolution of an object is kept on it, so copies of the spec that are resolved without its file
    (the planner's baselines) still read a relative config.json from the spec's directory.
    """
    if isinstance(value, str):
        try:
            return architecture(value)
        except InputError as exc:
            raise ArchitectureError(str(exc)) from None
    if value._resolved is not None:  # the cache CustomArchitecture keeps for this function
        return value._resolved
    if value.config is not None:
        path = Path(value.config).expanduser()
        path = path if path.is_absolute() or base_dir is None else base_dir / path
        name = value.name or (path.parent.name if path.stem == "config" else path.stem) or "custom"
        resolved = architecture_from_config(read_config(path), name, f"{value.config} (config.json, derived counts)")
    else:
        values = value.model_dump(exclude_none=True, exclude={"name", "config"})
        resolved = _architecture(value.name or "custom", "inline shape in the fleet spec", _Fields(values, {}))
    value._resolved = resolved
    return resolved
