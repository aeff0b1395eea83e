"""Known model architectures: the shape numbers the capacity model needs, by model name.

Replica sizing and the performance model need parameter counts (total for memory, active for
FLOPs and bytes read per token) and the attention shape (KV-cache bytes per token); they
never need the weights, so a small table of config.json facts is enough.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.catalog.gpus import unknown_name_message
from orchestrator.errors import InputError

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
