"""GPU spec table: lookups, suggestions, and that it covers the names the price catalog uses."""

from __future__ import annotations

import importlib.util

import pytest
from pydantic import ValidationError

from orchestrator.catalog.gpus import bundled_gpus_path, gpu_spec, known_gpus
from orchestrator.errors import InputError

CANONICAL = ("T4", "L4", "A10", "A10G", "L40", "L40S", "V100", "V100-32GB",
             "A100", "A100-80GB", "H100", "H200", "B200", "MI300X")


def test_every_canonical_gpu_and_cpu_is_known():
    assert set(known_gpus()) == set(CANONICAL) | {"CPU"}


@pytest.mark.skipif(importlib.util.find_spec("orchestrator.catalog.gpu_names") is None,
                    reason="catalog.gpu_names not in this checkout")
def test_matches_the_price_catalogs_canonical_names():
    from orchestrator.catalog.gpu_names import CANONICAL_GPUS

    assert set(CANONICAL_GPUS) <= set(known_gpus())


def test_lookup_returns_datasheet_numbers():
    h100 = gpu_spec("H100")
    assert (h100.memory_gb, h100.mem_bw_gb_s, h100.interconnect) == (80.0, 3350.0, "nvlink")
    assert gpu_spec("A100").memory_gb == 40.0  # canonical A100 is the 40 GB part
    assert gpu_spec("A100-80GB").memory_gb == 80.0
    assert gpu_spec("L4").interconnect == "pcie"


def test_lookup_is_case_insensitive():
    assert gpu_spec("a100-80gb") is gpu_spec("A100-80GB")


def test_unknown_gpu_suggests_close_names_and_a_fix():
    with pytest.raises(InputError) as err:
        gpu_spec("H1000")
    message = str(err.value)
    assert "Did you mean" in message and "H100" in message.split("To fix")[0]
    assert "To fix:" in message


def test_unknown_gpu_without_close_names_still_says_how_to_fix():
    with pytest.raises(InputError, match="To fix: use a canonical GPU name") as err:
        gpu_spec("zzzz")
    assert "Did you mean" not in str(err.value)


def test_every_row_names_its_source_and_hand_fills_cite_a_datasheet():
    for name in known_gpus():
        assert gpu_spec(name).source
    assert "datasheet" in gpu_spec("L40S").source
    assert "datasheet" in gpu_spec("H200").source  # Epoch lacks H200 memory
    assert "notional" in gpu_spec("CPU").source


def test_fp8_peak_used_only_where_the_gpu_has_fp8():
    assert gpu_spec("H100").peak_tflops("fp8") == gpu_spec("H100").fp8_tflops
    assert gpu_spec("A100").fp8_tflops is None
    assert gpu_spec("A100").peak_tflops("fp8") == gpu_spec("A100").bf16_tflops


def test_cpu_is_small_and_cannot_tensor_parallel():
    cpu = gpu_spec("CPU")
    assert cpu.max_tensor_parallel == 1 and gpu_spec("H100").max_tensor_parallel == 8
    assert cpu.mem_bw_gb_s <= 60 and cpu.bf16_tflops <= 2


def test_specs_are_frozen():
    with pytest.raises(ValidationError):
        gpu_spec("L4").memory_gb = 1.0  # type: ignore[misc]


def test_bundled_csv_has_no_absolute_or_missing_values():
    text = bundled_gpus_path().read_text(encoding="utf-8")
    assert "/work/" not in text and "/home/" not in text
    for name in known_gpus():
        spec = gpu_spec(name)
        assert spec.memory_gb > 0 and spec.mem_bw_gb_s > 0 and spec.bf16_tflops > 0


def test_build_reproduces_the_bundled_csv(tmp_path):
    from orchestrator.catalog import build_gpus
    from orchestrator.settings import load_settings

    source = load_settings().shared_data
    if not (source / build_gpus.EPOCH_FILE).exists():
        pytest.skip(f"shared data not present at {source}")
    out = tmp_path / "gpus.csv"
    build_gpus.write_csv(build_gpus.build_rows(source), out)
    assert out.read_text(encoding="utf-8") == bundled_gpus_path().read_text(encoding="utf-8")
