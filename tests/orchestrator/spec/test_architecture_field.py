"""`models[].architecture` as a config.json or an inline shape: what the spec accepts, and how
`orchestrator validate` reports one it cannot use (file:line: path: what; allowed: ..., exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.profiles.architectures import CONFIG_MAX_BYTES
from orchestrator.spec import parse_spec
from orchestrator.spec.models import CustomArchitecture
from tests.conftest import run_cli
from tests.orchestrator.profiles.test_architecture_config import PRESET_CONFIGS
from tests.orchestrator.spec.test_loader import VALID

CUSTOM_MODEL = """\
  - name: custom
    architecture:
      ARCH
    source: s3://bucket/custom/
    slo: {ttft_p95_ms: 1500, tpot_p95_ms: 80, max_rtt_ms: 100}
"""
SPEC = (VALID.replace("demand:\n", CUSTOM_MODEL + "demand:\n")
        + "  - {model: custom, region: frankfurt, requests_per_second: 1, input_tokens: 500, output_tokens: 100}\n")
ARCH_LINE = SPEC.splitlines().index("      ARCH") + 1  # where `config:` or the first inline field sits
# (an issue about the whole mapping is at the line of its `architecture:` key, ARCH_LINE - 1)

LLAMA_8B = PRESET_CONFIGS["llama-3.1-8b"]


def spec_with(tmp_path: Path, arch: str, config: bytes | None = None) -> Path:
    """A spec whose second model's architecture is `arch` (YAML under `architecture:`), with `config` at model/config.json."""
    if config is not None:
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "config.json").write_bytes(config)
    path = tmp_path / "env.yaml"
    path.write_text(SPEC.replace("ARCH", arch.replace("\n", "\n      ")))
    assert path.read_text().splitlines()[ARCH_LINE - 1].startswith("      ")
    return path


def validate(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    code, _, err = run_cli(capsys, "validate", "--spec", str(path))
    assert "Traceback" not in err
    return code, err


def test_preset_name_and_object_forms_load() -> None:
    spec = parse_spec(SPEC.replace("ARCH", "config: model/config.json"), "env.yaml")
    assert spec.models[0].architecture == "llama-3.1-8b"
    assert spec.models[1].architecture == CustomArchitecture(config="model/config.json")


@pytest.mark.parametrize("arch", [
    "config: model/config.json",
    "name: my-8b\nconfig: model/config.json",
    "{layers: 32, hidden: 4096, heads: 32, kv_heads: 8, vocab: 128256, max_context: 131072, intermediate_size: 14336}",
    "{params_b: 8, layers: 32, hidden: 4096, heads: 32, kv_heads: 8, vocab: 128256, max_context: 8192}",
])
def test_good_architectures_validate(capsys: pytest.CaptureFixture[str], tmp_path: Path, arch: str) -> None:
    code, err = validate(capsys, spec_with(tmp_path, arch, json.dumps(LLAMA_8B).encode()))
    assert code == 0, err


@pytest.mark.parametrize(("config", "message"), [
    (None, "no such file; allowed: a config.json path, relative to the spec's directory or absolute"),
    (b"{oops", "not JSON"),
    (b"[]", "a JSON list, not an object; allowed: a Hugging Face config.json"),
    (b"{}" + b" " * CONFIG_MAX_BYTES, "too large for a config.json; allowed:"),
    (json.dumps({**LLAMA_8B, "architectures": ["BertModel"]}).encode(),
     "architectures ['BertModel'] is not a decoder-only language model; allowed: *ForCausalLM"),
    (json.dumps({**LLAMA_8B, "architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True}).encode(),
     "an encoder-decoder model's config; allowed: a decoder-only text model"),
    (json.dumps({k: v for k, v in LLAMA_8B.items() if k != "num_hidden_layers"}).encode(),
     "missing num_hidden_layers; allowed:"),
    (json.dumps({**LLAMA_8B, "num_key_value_heads": 5}).encode(),
     "num_attention_heads 32 is not a multiple of num_key_value_heads 5; allowed:"),
])
def test_bad_config_file_is_located_at_its_key(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               config: bytes | None, message: str) -> None:
    path = spec_with(tmp_path, "config: model/config.json", config)
    code, err = validate(capsys, path)
    assert code == 2
    assert f"{path}:{ARCH_LINE}: models[1].architecture.config: " in err, err
    assert message in err, err


@pytest.mark.parametrize(("arch", "where", "message"), [
    ("{layerz: 32}", f"{ARCH_LINE}: models[1].architecture.layerz", "unknown key 'layerz'. Did you mean 'layers'?"),
    ("layers: many", f"{ARCH_LINE}: models[1].architecture.layers", "Input should be a valid integer"),
    ("{config: model/config.json, layers: 32}", f"{ARCH_LINE - 1}: models[1].architecture",
     "config given with layers; allowed: `config` (and `name`) alone"),
    ("{layers: 32, hidden: 4096}", f"{ARCH_LINE - 1}: models[1].architecture",
     "missing heads, vocab, max_context; allowed:"),
    ("{layers: 2, hidden: 64, heads: 2, kv_heads: 4, vocab: 10, max_context: 10, params_b: 1}",
     f"{ARCH_LINE}: models[1].architecture.kv_heads", "heads 2 is not a multiple of kv_heads 4"),
])
def test_bad_inline_architecture_is_located(capsys: pytest.CaptureFixture[str], tmp_path: Path, arch: str,
                                            where: str, message: str) -> None:
    path = spec_with(tmp_path, arch)
    code, err = validate(capsys, path)
    assert code == 2
    assert f"{path}:{where}: " in err and message in err, err
    assert "CustomArchitecture" not in err and ".str" not in err


def test_architecture_of_the_wrong_type(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(SPEC.replace("architecture:\n      ARCH", "architecture: 5"))
    code, err = validate(capsys, path)
    assert code == 2
    assert f"{path}:{ARCH_LINE - 1}: models[1].architecture: neither a name nor a mapping; allowed: a known architecture name" in err, err
