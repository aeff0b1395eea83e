"""The tiny random-weight model: built offline, the shape the capacity model assumes, a real tokenizer."""

from __future__ import annotations

import json

import pytest

from orchestrator.profiles.architectures import architecture
from orchestrator.replica.tiny_model import ensure_tiny_model, is_built


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny-llama"
    assert ensure_tiny_model(path) is True
    return path


def test_it_is_built_once_and_then_found(tiny):
    assert is_built(tiny)
    assert ensure_tiny_model(tiny) is False


def test_its_shape_is_the_tiny_llama_architecture_row(tiny):
    config = json.loads((tiny / "config.json").read_text())
    arch = architecture("tiny-llama")
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"],
            config["num_key_value_heads"], config["head_dim"], config["vocab_size"]) == (
        arch.layers, arch.hidden, arch.heads, arch.kv_heads, arch.head_dim, arch.vocab)
    assert config["head_dim"] >= 32  # vLLM's CPU attention runs head sizes 32, 64, 80, ...


def test_its_tokenizer_round_trips_text_and_has_a_chat_template(tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    assert len(tokenizer) == 32000
    text = "Serve tokens where they are cheapest — ünïcode too."
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<s><|user|>\nhi</s>\n<|assistant|>\n"
    assert tokenizer.decode(list(range(31990, 32000)))  # every id decodes
