"""Any decoder model: architectures derived from a Hugging Face config.json or from fields inline.

The configs below are rebuilt from the public shapes of the bundled presets (hidden size, MLP width,
layers, heads, KV heads, vocabulary, context, tied embeddings), so the derivation is checked against
the preset table's own parameter counts, which came from the models' cards and checkpoints.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.errors import SpecError
from orchestrator.inputs import load_inputs, resolve_inputs
from orchestrator.planner.plan import plan_fleet
from orchestrator.profiles import architecture
from orchestrator.profiles.architectures import (
    CONFIG_MAX_BYTES,
    ArchitectureError,
    architecture_from_config,
    resolve_architecture,
)
from orchestrator.spec import parse_spec
from orchestrator.spec.models import CustomArchitecture
from tests.conftest import ENVIRONMENTS

EXAMPLE = ENVIRONMENTS / "models" / "qwen2.5-14b.json"


def decoder(model_type: str, hidden: int, mlp: int, layers: int, heads: int, kv_heads: int, vocab: int,
            context: int, tied: bool = False, **extra: object) -> dict[str, object]:
    """A config.json as Hugging Face writes one for a decoder-only model."""
    return {
        "architectures": [f"{model_type.title().replace('_', '')}ForCausalLM"], "model_type": model_type,
        "hidden_size": hidden, "intermediate_size": mlp, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": vocab,
        "max_position_embeddings": context, "tie_word_embeddings": tied, **extra,
    }


PRESET_CONFIGS = {
    "llama-3.1-8b": decoder("llama", 4096, 14336, 32, 32, 8, 128256, 131072),
    "llama-3.1-70b": decoder("llama", 8192, 28672, 80, 64, 8, 128256, 131072),
    "llama-3.1-405b": decoder("llama", 16384, 53248, 126, 128, 8, 128256, 131072),
    "llama-3.3-70b": decoder("llama", 8192, 28672, 80, 64, 8, 128256, 131072),
    "llama-2-7b": decoder("llama", 4096, 11008, 32, 32, 32, 32000, 4096),
    "llama-2-70b": decoder("llama", 8192, 28672, 80, 64, 8, 32000, 4096),
    "mistral-7b": decoder("mistral", 4096, 14336, 32, 32, 8, 32768, 32768),
    "mixtral-8x7b": decoder("mixtral", 4096, 14336, 32, 32, 8, 32000, 32768, num_local_experts=8, num_experts_per_tok=2),
    "qwen2.5-32b": decoder("qwen2", 5120, 27648, 64, 40, 8, 152064, 32768),
    "qwen2.5-72b": decoder("qwen2", 8192, 29568, 80, 64, 8, 152064, 32768),
    "gemma-2-27b": decoder("gemma2", 4608, 36864, 46, 32, 16, 256000, 8192, tied=True, head_dim=128),
    "phi-2": decoder("phi", 2560, 10240, 32, 32, 32, 51200, 2048),
    "llama-1-30b": decoder("llama", 6656, 17920, 60, 52, 52, 32000, 2048),
    "tiny-llama": decoder("llama", 64, 256, 2, 2, 2, 32000, 2048),
}

DEEPSEEK_V3 = decoder(
    "deepseek_v3", 7168, 18432, 61, 128, 128, 129280, 163840, n_routed_experts=256, n_shared_experts=1,
    num_experts_per_tok=8, moe_intermediate_size=2048, first_k_dense_replace=3, moe_layer_freq=1,
    q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
)
QWEN15_MOE = decoder(  # Qwen1.5-MoE-A2.7B: 60 experts top-4 and one gated shared expert
    "qwen2_moe", 2048, 5632, 24, 16, 16, 151936, 8192, num_experts=60, num_experts_per_tok=4,
    moe_intermediate_size=1408, shared_expert_intermediate_size=5632,
)


def derive(config: dict[str, object], name: str = "m"):
    return architecture_from_config(config, name, "test")


def test_presets_resolve_unchanged() -> None:
    llama = resolve_architecture("llama-3.1-8b")
    assert llama is architecture("llama-3.1-8b")
    assert (llama.params_b, llama.active_params_b, llama.layers, llama.kv_heads) == (8.03, 8.03, 32, 8)
    with pytest.raises(ArchitectureError) as err:
        resolve_architecture("qwen2.5-14b")
    assert err.value.at == "" and "Unknown model architecture 'qwen2.5-14b'" in str(err.value)


@pytest.mark.parametrize("name", sorted(PRESET_CONFIGS))
def test_derived_counts_match_the_preset_table(name: str) -> None:
    derived, preset = derive(PRESET_CONFIGS[name], name), architecture(name)
    assert derived.params_b == pytest.approx(preset.params_b, rel=0.01)
    assert derived.active_params_b == pytest.approx(preset.active_params_b, rel=0.01)
    shape = ("layers", "hidden", "heads", "kv_heads", "head_dim", "vocab", "max_context")
    assert {f: getattr(derived, f) for f in shape} == {f: getattr(preset, f) for f in shape}
    assert derived.kv_bytes_per_token() == preset.kv_bytes_per_token()


def test_tied_embeddings_count_the_vocabulary_once() -> None:
    untied = derive(PRESET_CONFIGS["llama-3.1-8b"])
    tied = derive({**PRESET_CONFIGS["llama-3.1-8b"], "tie_word_embeddings": True})
    assert (untied.params_b - tied.params_b) * 1e9 == pytest.approx(128256 * 4096)


@pytest.mark.parametrize(("config", "total_b", "active_b"), [
    (PRESET_CONFIGS["mixtral-8x7b"], 46.7, 12.9),
    (DEEPSEEK_V3, 671.0, 37.0),  # DeepSeek-V3's card: 671B total, 37B activated (MTP module excluded)
    (QWEN15_MOE, 14.3, 2.7),  # Qwen1.5-MoE-A2.7B's card: 14.3B total, 2.7B activated
])
def test_moe_active_is_a_fraction_of_total(config: dict[str, object], total_b: float, active_b: float) -> None:
    arch = derive(config)
    assert arch.params_b == pytest.approx(total_b, rel=0.01)
    assert arch.active_params_b == pytest.approx(active_b, rel=0.03)
    assert arch.active_params_b < arch.params_b / 3


def test_deepseek_keeps_its_first_layers_dense() -> None:
    all_moe = derive({**DEEPSEEK_V3, "first_k_dense_replace": 0})
    # three dense MLPs (3 x 7168 x 18432) replaced by 256 routed + 1 shared expert and a router, per layer
    per_layer = 257 * 3 * 7168 * 2048 + 7168 * 256 - 3 * 7168 * 18432
    assert (all_moe.params_b - derive(DEEPSEEK_V3).params_b) * 1e9 == pytest.approx(3 * per_layer)


def test_bundled_example_is_qwen25_14b() -> None:
    arch = resolve_architecture(CustomArchitecture(config=str(EXAMPLE)))
    assert arch.name == "qwen2.5-14b"
    assert arch.params_b == pytest.approx(14.77, rel=0.01)  # Qwen2.5-14B's card: 14.7B
    assert (arch.layers, arch.heads, arch.kv_heads, arch.head_dim, arch.max_context) == (48, 40, 8, 128, 32768)


def test_relative_config_is_read_from_the_spec_directory_and_kept_for_copies(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps(PRESET_CONFIGS["mistral-7b"]))
    value = CustomArchitecture(config="cfg/config.json")
    arch = resolve_architecture(value, tmp_path)
    assert arch.name == "cfg" and arch.params_b == pytest.approx(7.25, rel=0.01)
    assert resolve_architecture(value, None) is arch  # a spec copy resolved without its file
    with pytest.raises(ArchitectureError, match="no such file"):
        resolve_architecture(CustomArchitecture(config="cfg/config.json"), tmp_path / "elsewhere")


def test_inline_shape_derives_counts_like_its_config() -> None:
    inline = CustomArchitecture(name="my-8b", layers=32, hidden=4096, heads=32, kv_heads=8, vocab=128256,
                                max_context=131072, intermediate_size=14336)
    arch = resolve_architecture(inline)
    assert arch.name == "my-8b" and arch.head_dim == 128
    assert arch.params_b == pytest.approx(derive(PRESET_CONFIGS["llama-3.1-8b"]).params_b)


def test_inline_counts_win_and_inline_moe_derives_active() -> None:
    given = resolve_architecture(CustomArchitecture(params_b=9.5, layers=32, hidden=4096, heads=32, vocab=32000,
                                                    max_context=8192))
    assert (given.params_b, given.active_params_b, given.kv_heads, given.name) == (9.5, 9.5, 32, "custom")
    moe = resolve_architecture(CustomArchitecture(layers=32, hidden=4096, heads=32, kv_heads=8, vocab=32000,
                                                  max_context=32768, intermediate_size=14336, experts=8,
                                                  experts_per_token=2))
    assert moe.params_b == pytest.approx(46.7, rel=0.01) and moe.active_params_b == pytest.approx(12.88, rel=0.01)


@pytest.mark.parametrize(("change", "at", "message"), [
    ({"num_hidden_layers": None}, ".config", "missing num_hidden_layers; allowed:"),
    ({"num_attention_heads": 30}, ".config", "hidden_size 4096 is not divisible by num_attention_heads 30"),
    ({"num_key_value_heads": 5}, ".config", "num_attention_heads 32 is not a multiple of num_key_value_heads 5"),
    ({"num_hidden_layers": "32"}, ".config", "num_hidden_layers is '32'; allowed: a positive integer"),
    ({"num_hidden_layers": 0}, ".config", "num_hidden_layers is 0; allowed: a positive integer"),
    ({"architectures": ["BertModel"]}, ".config", "not a decoder-only language model; allowed: *ForCausalLM"),
    ({"architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True}, ".config", "an encoder-decoder model's config"),
    ({"text_config": {}, "architectures": ["LlavaForConditionalGeneration"]}, ".config", "a multimodal model's config"),
    ({"intermediate_size": None}, ".config", "intermediate_size missing; allowed:"),
    ({"num_local_experts": 8}, ".config", "num_experts_per_tok missing with 8 num_local_experts"),
    ({"kv_lora_rank": 512}, ".config", "latent attention without qk_nope_head_dim"),
])
def test_bad_config_says_what_and_what_is_allowed(change: dict[str, object], at: str, message: str) -> None:
    config = {k: v for k, v in {**PRESET_CONFIGS["llama-3.1-8b"], **change}.items() if v is not None}
    with pytest.raises(ArchitectureError) as err:
        derive(config)
    assert err.value.at == at
    assert message in str(err.value)


@pytest.mark.parametrize(("fields", "at", "message"), [
    ({"layers": 32, "hidden": 4096}, "", "missing heads, vocab, max_context"),
    ({"layers": 2, "hidden": 64, "heads": 2, "kv_heads": 4, "vocab": 10, "max_context": 10, "params_b": 1}, ".kv_heads",
     "heads 2 is not a multiple of kv_heads 4"),
    ({"layers": 2, "hidden": 64, "heads": 2, "vocab": 10, "max_context": 10, "params_b": 1, "active_params_b": 2},
     ".active_params_b", "active_params_b 2.0 exceeds params_b 1.0"),
    ({"layers": 2, "hidden": 64, "heads": 2, "vocab": 10, "max_context": 10, "experts": 4, "experts_per_token": 2,
      "params_b": 1}, "", "moe_intermediate_size for experts"),
])
def test_bad_inline_shape_is_located_at_its_field(fields: dict[str, object], at: str, message: str) -> None:
    with pytest.raises(ArchitectureError) as err:
        resolve_architecture(CustomArchitecture(**fields))
    assert (err.value.at, message in str(err.value)) == (at, True), str(err.value)


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "a JSON list, not an object"),
    (b"\xff\xfe\x00", "not JSON"),
    (b" " * (CONFIG_MAX_BYTES + 1), "too large for a config.json"),
])
def test_unreadable_config_files(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(ArchitectureError) as err:
        resolve_architecture(CustomArchitecture(config="config.json"), tmp_path)
    assert err.value.at == ".config" and message in str(err.value)


SPEC = textwrap.dedent("""\
    pools:
      - {name: h100, provider: gcp, region: us-central1, zone: us-central1-a, instance_type: a3-highgpu-8g, max_nodes: 2}
    models:
      - name: qwen14b
        architecture: {config: models/qwen2.5-14b.json}
        source: hf:Qwen/Qwen2.5-14B-Instruct
        slo: {ttft_p95_ms: 1500, tpot_p95_ms: 80, max_rtt_ms: 120}
    demand:
      - {model: qwen14b, region: us-central1, requests_per_second: 4, input_tokens: 1000, output_tokens: 200}
""")


def test_spec_with_the_example_config_validates_and_plans(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / EXAMPLE.name).write_bytes(EXAMPLE.read_bytes())  # beside the spec, as in environments/
    spec_file = tmp_path / "env.yaml"
    spec_file.write_text(SPEC)
    spec, inputs = load_inputs(spec_file, load_price_catalog())
    placement = plan_fleet(spec, inputs)
    assert {c.model for c in inputs.capacity} == {"qwen14b"}
    assert sum(r.count for r in placement.replicas if r.model == "qwen14b") >= 1
    assert not placement.unserved


def test_spec_that_cannot_find_its_config_is_a_located_spec_error(tmp_path: Path) -> None:
    spec_file = tmp_path / "env.yaml"
    spec_file.write_text(SPEC)
    with pytest.raises(SpecError) as err:
        resolve_inputs(parse_spec(SPEC, str(spec_file)), load_price_catalog(), str(spec_file))
    (issue,) = err.value.issues
    assert issue.path == "models[0].architecture.config" and "no such file" in issue.message
