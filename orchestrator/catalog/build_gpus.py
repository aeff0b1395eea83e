"""Rebuild the bundled GPU spec table (`catalog/data/gpus.csv`) from the public data sets.

Maintainers run `python -m orchestrator.catalog.build_gpus [--source DIR]` after the shared
data changes; users never need it. Values come from Epoch AI's ML hardware table first,
llm-analysis' GPU configs second, and only then from the vendor datasheets cited below, so
every number in the CSV names where it came from in the `source` column.
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

from orchestrator.catalog.gpus import GPU_CSV_COLUMNS, bundled_gpus_path
from orchestrator.settings import load_settings

logger = logging.getLogger(__name__)

EPOCH_FILE = "gpu_specs/epoch_ml_hardware_key_columns.csv"
LLM_ANALYSIS_FILE = "gpu_specs/llm_analysis_gpu_configs.csv"

# canonical name -> (Epoch "Hardware name", llm-analysis name or None, interconnect).
# Interconnect is the one of the instance types gpufleet prices: SXM parts with NVLink
# (AWS p3/p4/p5/p6, GCP a2/a3), PCIe cards (g4dn/g5/g6/g6e, GCP g2). MI300X's Infinity
# Fabric is a switched GPU fabric like NVLink, so it is filed as "nvlink".
_ROWS: dict[str, tuple[str, str | None, str]] = {
    "T4": ("NVIDIA Tesla T4", None, "pcie"),
    "L4": ("NVIDIA L4", None, "pcie"),
    "A10": ("NVIDIA A10 PCIe", "a10-pcie-28gb", "pcie"),
    "A10G": ("NVIDIA A10G", "a10g-pcie-24gb", "pcie"),
    "L40": ("NVIDIA L40", None, "pcie"),
    "L40S": ("", None, "pcie"),
    "V100": ("NVIDIA Tesla V100 SXM2", "v100-sxm-16gb", "nvlink"),
    "V100-32GB": ("NVIDIA Tesla V100 SXM2 32 GB", "v100-sxm-32gb", "nvlink"),
    "A100": ("NVIDIA A100 SXM4 40 GB", "a100-sxm-40gb", "nvlink"),
    "A100-80GB": ("NVIDIA A100 SXM4 80 GB", "a100-sxm-80gb", "nvlink"),
    "H100": ("NVIDIA H100 SXM5 80GB", "h100-sxm-80gb", "nvlink"),
    "H200": ("NVIDIA H200 SXM", None, "nvlink"),
    "B200": ("NVIDIA B200", None, "nvlink"),
    "MI300X": ("AMD Instinct MI300X", None, "nvlink"),
}

# Gaps in both data sets, filled by hand: canonical -> {column: value}, with the citation.
# Dense tensor peaks are the datasheets' "with sparsity" figures halved.
_HAND_FILLED: dict[str, tuple[dict[str, float], str]] = {
    "T4": ({"bf16_tflops": 65.0}, "NVIDIA T4 datasheet (65 TFLOPS FP16 tensor; no bf16, vLLM serves fp16)"),
    "L4": ({"fp8_tflops": 242.0}, "NVIDIA L4 datasheet (fp8 485 sparse)"),
    "L40": ({"fp8_tflops": 362.0}, "NVIDIA L40 datasheet (fp8 724 sparse)"),
    "L40S": (
        {"memory_gb": 48.0, "mem_bw_gb_s": 864.0, "bf16_tflops": 362.0, "fp8_tflops": 733.0},
        "NVIDIA L40S datasheet (bf16 733 / fp8 1466 sparse)",
    ),
    "V100": ({}, "V100 has no bf16: tensor peak is FP16, vLLM serves fp16"),
    "V100-32GB": ({}, "V100 has no bf16: tensor peak is FP16, vLLM serves fp16"),
    "H100": ({"fp8_tflops": 1979.0}, "NVIDIA H100 SXM datasheet (fp8 3958 sparse)"),
    "H200": ({"memory_gb": 141.0}, "NVIDIA H200 SXM datasheet (141 GB HBM3e)"),
    "MI300X": ({"fp8_tflops": 2614.9}, "AMD Instinct MI300X datasheet (fp8 5229.8 sparse)"),
}

# The local pseudo-GPU: one CPU vLLM server on a laptop or workstation. Memory is vLLM's
# default KV space (VLLM_CPU_KVCACHE_SPACE=4 GB); bandwidth and FLOPS are a laptop's DDR5 and
# AVX cores in round numbers. Callers that know better pass `gpu_spec("CPU").model_copy(...)`.
_CPU_ROW = {
    "name": "CPU",
    "memory_gb": 4.0,
    "mem_bw_gb_s": 40.0,
    "bf16_tflops": 1.0,
    "fp8_tflops": None,
    "interconnect": "none",
    "source": "notional: one vLLM CPU-backend server (memory = vLLM's default 4 GB "
    "VLLM_CPU_KVCACHE_SPACE, ~40 GB/s DDR5, ~1 TFLOPS); not a measurement",
}


def _read_csv(path: Path, key: str) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {row[key]: row for row in csv.DictReader(f)}


def _number(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def build_rows(source: Path) -> list[dict[str, object]]:
    """One row per canonical GPU (plus CPU), each value traced to Epoch, llm-analysis or a datasheet."""
    epoch = _read_csv(source / EPOCH_FILE, "Hardware name")
    llm_analysis = _read_csv(source / LLM_ANALYSIS_FILE, "name")
    rows: list[dict[str, object]] = []
    for name, (epoch_name, llma_name, interconnect) in _ROWS.items():
        e = epoch.get(epoch_name, {})
        values = {
            "memory_gb": _number(e.get("memory_gb")),
            "mem_bw_gb_s": _number(e.get("mem_bw_gb_s")),
            "bf16_tflops": _number(e.get("tensor_fp16_bf16_tflops")),
            "fp8_tflops": _number(e.get("fp8_tflops")),
        }
        sources = [f"Epoch AI ({epoch_name})"] if e else []
        if llma_name and values["bf16_tflops"] is None:
            values["bf16_tflops"] = _number(llm_analysis[llma_name]["peak_fp16_TFLOPS"])
            sources.append(f"llm-analysis {llma_name} (bf16_tflops)")
        fills, citation = _HAND_FILLED.get(name, ({}, ""))
        for column, value in fills.items():
            if values[column] is not None:
                logger.warning("%s: %s now in the data (%s); hand value %s unused", name, column, values[column], value)
                continue
            values[column] = value
        if citation:
            sources.append(citation)
        missing = [c for c in ("memory_gb", "mem_bw_gb_s", "bf16_tflops") if values[c] is None]
        if missing:
            raise ValueError(f"{name}: no value for {missing} in the data or the hand-filled table")
        rows.append({"name": name, **values, "interconnect": interconnect, "source": "; ".join(sources)})
    rows.append(dict(_CPU_ROW))
    return rows


def write_csv(rows: list[dict[str, object]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=GPU_CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="shared data dir (default: settings.shared_data)")
    args = parser.parse_args(argv)
    source = args.source or load_settings().shared_data
    rows = build_rows(source)
    out = bundled_gpus_path()
    write_csv(rows, out)
    print(f"wrote {len(rows)} GPUs to {out}")


if __name__ == "__main__":
    main()
