"""A tiny random-weight Llama with a real tokenizer and chat template, built offline.

No model can be downloaded where gpufleet is developed and tested, yet the local
environment and the end-to-end tests must run the real vLLM paths (weights loading,
tokenizing, chat templating, sampling, detokenizing, metrics). This builds such a model in
a second or two, with the shape of the `tiny-llama` architecture row in
`orchestrator/profiles/data/architectures.csv` (2 layers, hidden 64, MLP 256, 2 heads of
32, 32000-token vocab), so capacity estimates and the served model agree. Outputs are gibberish.

The tokenizer is byte-level BPE: 3 special tokens, the 256 byte symbols, and merges of
byte pairs (most common ASCII first) up to exactly the model's vocab, so every sampled id
decodes and any text encodes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from orchestrator.replica.file_lock import file_lock

logger = logging.getLogger(__name__)

VOCAB_SIZE = 32000
HIDDEN = 64
INTERMEDIATE = 256
LAYERS = 2
HEADS = 2  # head_dim 32: the smallest head size vLLM's CPU attention runs
KV_HEADS = 2
MAX_POSITIONS = 2048
SEED = 20261123
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
COMPLETE_MARKER = "config.json"  # written last: its presence means the build finished


def is_built(path: Path) -> bool:
    """Whether a finished tiny model is at `path`."""
    return (path / COMPLETE_MARKER).is_file() and (path / "model.safetensors").is_file()


def ensure_tiny_model(path: Path) -> bool:
    """Build the tiny model at `path` unless it is there already; True when it was built now.

    Concurrent callers (two replicas starting at once) wait on a lock; the model appears at
    `path` atomically, so a reader never sees half of it.
    """
    path = Path(path)
    if is_built(path):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.parent / f".{path.name}.lock"):
        if is_built(path):
            return False
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            _write_tokenizer(staging)
            _write_weights(staging)
            _write_config(staging)
            staging.chmod(0o755)
            if path.exists():
                shutil.rmtree(path)
            os.replace(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    logger.info("built the tiny random-weight model at %s", path)
    return True


def _byte_pair_merges(alphabet: list[str], count: int) -> list[tuple[str, str]]:
    """`count` merges of two byte symbols, pairs of common ASCII symbols first."""
    common = "etaoinshrdlucmfwypvbgkjqxzĠETAOINSHRDLUCMFWYPVBGKJQXZ0123456789.,!?'\"-:;()"  # Ġ: the space byte
    rank = {c: i for i, c in enumerate(common)}
    ordered = sorted(alphabet, key=lambda c: (rank.get(c, len(common)), c))
    pairs = ((a, b) for a in ordered for b in ordered)
    return [next(pairs) for _ in range(count)]


def _write_tokenizer(directory: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for symbol in alphabet:
        vocab[symbol] = len(vocab)
    merges = _byte_pair_merges(alphabet, VOCAB_SIZE - len(vocab))
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        model_max_length=MAX_POSITIONS, chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(directory)


def _write_weights(directory: Path) -> None:
    """Random Llama weights (bfloat16, as vLLM's CPU backend runs; small normal init, norms at 1)."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(SEED)
    head_dim = HIDDEN // HEADS

    def normal(*shape: int) -> torch.Tensor:
        return (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16)

    def ones(size: int) -> torch.Tensor:
        return torch.ones(size, dtype=torch.bfloat16)

    tensors = {"model.embed_tokens.weight": normal(VOCAB_SIZE, HIDDEN), "model.norm.weight": ones(HIDDEN),
               "lm_head.weight": normal(VOCAB_SIZE, HIDDEN)}
    for i in range(LAYERS):
        layer = f"model.layers.{i}"
        tensors |= {
            f"{layer}.self_attn.q_proj.weight": normal(HEADS * head_dim, HIDDEN),
            f"{layer}.self_attn.k_proj.weight": normal(KV_HEADS * head_dim, HIDDEN),
            f"{layer}.self_attn.v_proj.weight": normal(KV_HEADS * head_dim, HIDDEN),
            f"{layer}.self_attn.o_proj.weight": normal(HIDDEN, HEADS * head_dim),
            f"{layer}.mlp.gate_proj.weight": normal(INTERMEDIATE, HIDDEN),
            f"{layer}.mlp.up_proj.weight": normal(INTERMEDIATE, HIDDEN),
            f"{layer}.mlp.down_proj.weight": normal(HIDDEN, INTERMEDIATE),
            f"{layer}.input_layernorm.weight": ones(HIDDEN),
            f"{layer}.post_attention_layernorm.weight": ones(HIDDEN),
        }
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})


def _write_config(directory: Path) -> None:
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": VOCAB_SIZE, "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "head_dim": HIDDEN // HEADS, "max_position_embeddings": MAX_POSITIONS, "hidden_act": "silu",
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    }
    (directory / COMPLETE_MARKER).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
