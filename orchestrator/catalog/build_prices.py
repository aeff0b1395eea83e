"""Build the bundled price catalog from the public price data sets (maintainers only).

    python -m orchestrator.catalog.build_prices [--source DIR] [--out FILE]

Reads `<shared_data>/gpu_prices` (see its SOURCE.md for provenance) and writes
`orchestrator/catalog/data/prices.csv` in the store format. Rules:

- Only GPUs gpufleet serves on (canonical names); fractional GPUs (Azure NV*_A10_v5,
  AWS g6f) and non-GPU accelerators are dropped.
- AWS: on-demand and 1-year reserved from the Vantage export (standard regions only,
  Local/Wavelength zones dropped); spot from the SkyPilot v8 subset, the median over
  the region's AZs (AZ ids are account-specific names, so region level is what a
  user can act on).
- GCP: a GPU VM is host machine type + accelerators, composed per zone for on-demand
  and spot alike (as GCP bills it).
- Azure: rows as published.
- GPU memory is the GPU spec table's (one unit, GB, for every provider).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from orchestrator.catalog.gpu_names import aws_instance_gpu, canonical_gpu
from orchestrator.catalog.gpus import gpu_spec
from orchestrator.catalog.offers import PriceOffer
from orchestrator.catalog.store import write_offers
from orchestrator.settings import load_settings

BUNDLED_PRICES = Path(__file__).parent / "data" / "prices.csv"

AWS_AS_OF = dt.date(2026, 1, 21)  # Vantage export header: "Last updated: 2026-01-21"
ANYCLOUD_AS_OF = dt.date(2026, 5, 20)  # anycloud-sh/catalog "Update catalogs 2026-05-20"
AWS_STANDARD_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")

# GCP machine type -> (accelerator name in the price data, GPUs per VM).
GCP_FAMILY_ACCELERATOR = {
    "a2-highgpu": "A100", "a2-megagpu": "A100", "a2-ultragpu": "A100-80GB",
    "a3-highgpu": "H100", "a3-edgegpu": "H100", "a3-megagpu": "H100-MEGA",
    "a3-ultragpu": "H200", "a4-highgpu": "B200",
}
G2_L4_COUNT = {"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4, "96": 8}


def _float(value: str) -> float | None:
    return float(value) if value not in ("", None) else None


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def aws_offers(source: Path) -> Iterator[PriceOffer]:
    """AWS on-demand/reserved per region, with the region's median spot price where observed."""
    spot: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in _read(source / "aws_gpu_vms_skypilot_v8_subset.csv"):
        if (price := _float(row["SpotPrice"])) is not None:
            spot[(row["InstanceType"], row["Region"])].append(price)
    for row in _read(source / "aws_gpu_ondemand_vantage.csv"):
        gpu, count = aws_instance_gpu(row["InstanceType"]), float(row["GpuCount"])
        if gpu is None or count < 1 or not AWS_STANDARD_REGION.match(row["Region"]):
            continue
        spots = spot.get((row["InstanceType"], row["Region"]))
        yield PriceOffer(
            provider="aws", region=row["Region"], instance_type=row["InstanceType"],
            gpu=gpu, gpu_count=int(count),
            gpu_memory_gb=gpu_spec(gpu).memory_gb,
            vcpus=_float(row["vCPUs"]), memory_gb=_float(row["Memory"].split()[0]),
            on_demand_per_hour=_float(row["OnDemandPrice"]),
            reserved_per_hour=_float(row["Reserved1yPrice"]),
            spot_per_hour=round(statistics.median(spots), 5) if spots else None,
            as_of=AWS_AS_OF,
            source="instances.vantage.sh via tsaol/aws-gpu; spot: skypilot-catalog v8",
        )


def _gcp_accelerator_for(machine_type: str) -> tuple[str, int] | None:
    family, _, shape = machine_type.rpartition("-")
    if family == "g2-standard":
        return ("L4", G2_L4_COUNT[shape]) if shape in G2_L4_COUNT else None
    if family in GCP_FAMILY_ACCELERATOR and (match := re.match(r"(\d+)g", shape)):
        return GCP_FAMILY_ACCELERATOR[family], int(match.group(1))
    return None


def gcp_offers(source: Path) -> Iterator[PriceOffer]:
    """GCP GPU VMs per zone: host machine price + the attached accelerators' price."""
    accelerators = {
        (row["AcceleratorName"], int(float(row["AcceleratorCount"])), row["AvailabilityZone"]): row
        for row in _read(source / "gcp_gpu_accelerators.csv")
    }
    for host in _read(source / "gcp_gpu_host_vms.csv"):
        machine_type = host["InstanceType"].removesuffix("-nolssd")
        if machine_type != host["InstanceType"] or (attached := _gcp_accelerator_for(machine_type)) is None:
            continue
        name, count = attached
        accel = accelerators.get((name, count, host["AvailabilityZone"]))
        gpu = canonical_gpu(name)
        if accel is None or gpu is None:
            continue

        def total(column: str) -> float | None:
            host_price, accel_price = _float(host[column]), _float(accel[column])
            if host_price is None or accel_price is None:
                return None
            return round(host_price + accel_price, 5)

        yield PriceOffer(
            provider="gcp", region=host["Region"], zone=host["AvailabilityZone"],
            instance_type=machine_type, gpu=gpu, gpu_count=count,
            gpu_memory_gb=gpu_spec(gpu).memory_gb,
            vcpus=_float(host["vCPUs"]), memory_gb=_float(host["MemoryGiB"]),
            on_demand_per_hour=total("Price"), spot_per_hour=total("SpotPrice"),
            as_of=ANYCLOUD_AS_OF,
            source="anycloud-sh/catalog (SkyPilot v8 schema): host VM + accelerators",
        )


def azure_offers(source: Path) -> Iterator[PriceOffer]:
    """Azure GPU VM sizes per region, whole GPUs only."""
    for row in _read(source / "azure_gpu_vms.csv"):
        gpu, count = canonical_gpu(row["AcceleratorName"]), float(row["AcceleratorCount"])
        if gpu is None or count < 1:
            continue
        yield PriceOffer(
            provider="azure", region=row["Region"], instance_type=row["InstanceType"],
            gpu=gpu, gpu_count=int(count), gpu_memory_gb=gpu_spec(gpu).memory_gb,
            vcpus=_float(row["vCPUs"]), memory_gb=_float(row["MemoryGiB"]),
            on_demand_per_hour=_float(row["Price"]), spot_per_hour=_float(row["SpotPrice"]),
            as_of=ANYCLOUD_AS_OF, source="anycloud-sh/catalog (SkyPilot v8 schema)",
        )


def build(source: Path) -> list[PriceOffer]:
    """Every bundled offer, in a stable order so the CSV diffs cleanly."""
    offers = [*aws_offers(source), *gcp_offers(source), *azure_offers(source)]
    return sorted(offers, key=lambda o: (o.provider, o.region, o.zone or "", o.instance_type))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=load_settings().shared_data / "gpu_prices")
    parser.add_argument("--out", type=Path, default=BUNDLED_PRICES)
    args = parser.parse_args()
    rows = write_offers(args.out, build(args.source))
    print(f"wrote {rows} offers to {args.out}")


if __name__ == "__main__":
    main()
