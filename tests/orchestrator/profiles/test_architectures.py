"""Known model architectures: lookups, suggestions, MoE counts, KV sizes."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.profiles import architecture, known_architectures

REQUIRED = ("llama-3.1-8b", "llama-3.1-70b", "llama-3.3-70b", "llama-2-7b", "llama-2-70b", "mistral-7b",
            "mixtral-8x7b", "qwen2.5-32b", "qwen2.5-72b", "gemma-2-27b", "phi-2", "tiny-llama")


def test_required_architectures_are_known():
    assert set(REQUIRED) <= set(known_architectures())


def test_lookup_is_case_insensitive():
    assert architecture("Llama-3.1-8B") is architecture("llama-3.1-8b")


def test_unknown_model_suggests_close_names_and_a_fix():
    with pytest.raises(InputError) as err:
        architecture("llama-3.1-7b")
    message = str(err.value)
    assert "Did you mean" in message and "llama-3.1-8b" in message.split("To fix")[0]
    assert "To fix:" in message


def test_mixtral_is_moe_dense_models_are_not():
    mixtral = architecture("mixtral-8x7b")
    assert mixtral.active_params_b < mixtral.params_b / 3
    assert architecture("llama-3.1-70b").active_params_b == architecture("llama-3.1-70b").params_b


def test_kv_bytes_per_token_follows_gqa():
    # Llama-3.1-8B: 32 layers x 8 KV heads x 128 dims x (K+V) x 2 bytes = 128 KiB
    assert architecture("llama-3.1-8b").kv_bytes_per_token() == 131072
    # Llama-2-7B has no GQA: 4x the KV of Llama-3.1-8B per token
    assert architecture("llama-2-7b").kv_bytes_per_token() == 4 * 131072


def test_tiny_llama_is_tiny():
    tiny = architecture("tiny-llama")
    assert tiny.layers == 2 and tiny.hidden == 64 and tiny.params_b < 0.01
