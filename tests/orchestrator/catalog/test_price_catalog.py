"""The bundled price catalog and how refreshed catalogs override it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orchestrator.catalog import build_prices
from orchestrator.catalog.offers import PriceOffer
from orchestrator.catalog.price_catalog import BUNDLED_PRICES, load_price_catalog
from orchestrator.catalog.store import read_offers, write_offers
from orchestrator.settings import load_settings

SHARED_PRICES = load_settings().shared_data / "gpu_prices"
needs_shared = pytest.mark.skipif(not SHARED_PRICES.exists(), reason=f"public price data not found at {SHARED_PRICES} (set GPUFLEET_SHARED_DATA)")


def offer(**changes: object) -> PriceOffer:
    base = dict(provider="aws", region="us-east-1", instance_type="p5.48xlarge", gpu="H100", gpu_count=8,
                gpu_memory_gb=80, on_demand_per_hour=50.0, spot_per_hour=20.0, as_of=dt.date(2026, 11, 1), source="test")
    return PriceOffer.model_validate({**base, **changes})


def test_bundled_catalog_covers_three_clouds_and_the_common_gpus() -> None:
    catalog = load_price_catalog()
    assert {s.provider for s in catalog.sources} == {"aws", "gcp", "azure"}
    for provider in ("aws", "gcp", "azure"):
        assert {"H100", "A100-80GB"} <= {o.gpu for o in catalog.find(provider=provider)}
    assert {o.gpu for o in catalog.find(provider="aws")} >= {"L4", "A10G", "L40S", "T4"}
    assert all(o.as_of and o.source for o in catalog.offers)


def test_filters_are_case_insensitive_and_region_matches_zones() -> None:
    catalog = load_price_catalog()
    h100 = catalog.find(gpu="h100", provider="GCP", region="us-central1")
    assert h100 and all(o.gpu == "H100" and o.region == "us-central1" for o in h100)
    zone = h100[0].zone
    assert zone and all(o.zone == zone for o in catalog.find(region=zone))


def test_offer_picks_the_cheapest_zone_unless_one_is_given() -> None:
    catalog = load_price_catalog()
    rows = catalog.find(provider="gcp", instance_type="g2-standard-48", region="us-central1")
    assert len({o.zone for o in rows}) > 1
    cheapest = catalog.offer("gcp", "g2-standard-48", "us-central1")
    assert cheapest.on_demand_per_hour == min(o.on_demand_per_hour for o in rows)
    chosen = catalog.offer("gcp", "g2-standard-48", "us-central1", rows[-1].zone)
    assert chosen.zone == rows[-1].zone


def test_anomalies_flag_spot_above_on_demand_and_regional_outliers() -> None:
    assert offer(spot_per_hour=60.0).anomalies == ["spot above on-demand"]
    assert offer().anomalies == []
    catalog = load_price_catalog()
    flagged = [o for o in catalog.find(provider="gcp", instance_type="a3-highgpu-8g") if catalog.anomalies(o)]
    assert flagged, "GCP's ~2x regional H100 price gap (see the data's SOURCE.md) should be flagged"
    assert all("x cheapest region" in catalog.anomalies(o)[0] for o in flagged)


def test_refreshed_provider_replaces_bundled_rows(tmp_path: Path) -> None:
    write_offers(tmp_path / "aws.csv", [offer(on_demand_per_hour=41.0, as_of=dt.date(2026, 11, 20), source="aws-pricing-api")])
    catalog = load_price_catalog(tmp_path)
    aws = catalog.find(provider="aws")
    assert [o.on_demand_per_hour for o in aws] == [41.0]
    sources = {s.provider: s for s in catalog.sources}
    assert sources["aws"].refreshed and sources["aws"].as_of == dt.date(2026, 11, 20)
    assert not sources["gcp"].refreshed and catalog.find(provider="gcp")


def test_store_round_trip_keeps_missing_values(tmp_path: Path) -> None:
    rows = [offer(spot_per_hour=None, zone="use1-az4", vcpus=192.0)]
    write_offers(tmp_path / "x.csv", rows)
    assert read_offers(tmp_path / "x.csv") == rows


def test_failed_write_leaves_previous_catalog(tmp_path: Path) -> None:
    path = tmp_path / "aws.csv"
    write_offers(path, [offer()])

    def broken():
        yield offer(on_demand_per_hour=1.0)
        raise RuntimeError("network died mid-refresh")

    with pytest.raises(RuntimeError):
        write_offers(path, broken())
    assert [o.on_demand_per_hour for o in read_offers(path)] == [50.0]
    assert list(tmp_path.iterdir()) == [path]


@needs_shared
def test_gcp_vm_price_is_host_plus_accelerators() -> None:
    catalog = load_price_catalog()
    vm = catalog.offer("gcp", "a3-highgpu-8g", "us-central1", "us-central1-a")
    # host a3-highgpu-8g + 8x H100 in us-central1-a, both from ../shared/data/gpu_prices
    host = next(r for r in build_prices._read(SHARED_PRICES / "gcp_gpu_host_vms.csv")
                if r["InstanceType"] == "a3-highgpu-8g" and r["AvailabilityZone"] == "us-central1-a")
    gpus = next(r for r in build_prices._read(SHARED_PRICES / "gcp_gpu_accelerators.csv")
                if r["AcceleratorName"] == "H100" and r["AcceleratorCount"] == "8.0" and r["AvailabilityZone"] == "us-central1-a")
    assert vm.on_demand_per_hour == pytest.approx(float(host["Price"]) + float(gpus["Price"]))
    assert vm.gpu_count == 8 and vm.gpu_memory_gb == 80


@needs_shared
def test_bundled_catalog_is_in_sync_with_its_build() -> None:
    assert read_offers(BUNDLED_PRICES) == build_prices.build(SHARED_PRICES), \
        "run: python -m orchestrator.catalog.build_prices"
