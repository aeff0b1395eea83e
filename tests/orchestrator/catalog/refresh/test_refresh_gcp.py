"""GCP refresh through the real CloudCatalogClient (REST transport) against a Cloud Billing fake."""

from __future__ import annotations

import datetime as dt

import pytest
from google.api_core.exceptions import Forbidden

from orchestrator.catalog.price_checks import PricesRejected
from orchestrator.catalog.refresh import gcp, refresh_catalog
from orchestrator.catalog.store import read_offers
from orchestrator.errors import CatalogError
from tests.fakes.gcp_billing import COMPUTE_ENGINE_ID, FakeCloudBilling, error_body, sku
from tests.fakes.http_fake import json_response

TODAY = dt.date(2026, 5, 20)
IOWA, NETHERLANDS = ["us-central1"], ["europe-west4"]

# Rates per vCPU-hour, GiB-hour and GPU-hour, on-demand and Spot.
A3_CORE, A3_RAM, H100, H100_MEGA = 0.031611, 0.002708, 9.79655, 10.1984
A3_CORE_SPOT, A3_RAM_SPOT, H100_SPOT = 0.0126, 0.00108, 2.25
G2_CORE, G2_RAM, L4, L4_NL = 0.02293, 0.002684, 0.56, 0.6163

SKUS = [
    # First (the first SKU of a part wins): other purchase models that share the words below,
    # at prices that would show if used.
    sku("Reserved Nvidia H100 80GB Mega GPU in Americas", resource_group="GPU", regions=IOWA, usd=1.0),
    sku("Commitment v1: Nvidia H100 80GB GPU running in Americas for 1 Year", resource_group="GPU",
        regions=IOWA, usd=1.0, usage_type="Commit1Yr"),
    sku("A3 Instance Core Sole Tenancy running in Americas", resource_group="CPU", regions=IOWA, usd=1.0),
    sku("N1 Predefined Instance Core running in Americas", resource_group="N1Standard", regions=IOWA, usd=0.0316),
    sku("A3 Instance Core running in Americas", resource_group="CPU", regions=IOWA, usd=A3_CORE),
    sku("A3 Instance Ram running in Americas", resource_group="RAM", regions=IOWA, usd=A3_RAM),
    sku("Spot Preemptible A3 Instance Core running in Americas", resource_group="CPU", regions=IOWA,
        usd=A3_CORE_SPOT, usage_type="Preemptible"),
    sku("Spot Preemptible A3 Instance Ram running in Americas", resource_group="RAM", regions=IOWA,
        usd=A3_RAM_SPOT, usage_type="Preemptible"),
    sku("Nvidia H100 80GB GPU running in Americas", resource_group="GPU", regions=IOWA, usd=H100),
    sku("Nvidia H100 80GB GPU attached to Spot Preemptible VMs running in Americas", resource_group="GPU",
        regions=IOWA, usd=H100_SPOT, usage_type="Preemptible"),
    sku("Nvidia H100 80GB Mega GPU running in Americas", resource_group="GPU", regions=IOWA, usd=H100_MEGA),
    sku("G2 Instance Core running in Americas", resource_group="CPU", regions=IOWA + NETHERLANDS, usd=G2_CORE),
    sku("G2 Instance Ram running in Americas", resource_group="RAM", regions=IOWA + NETHERLANDS, usd=G2_RAM),
    sku("Nvidia L4 GPU running in Americas", resource_group="GPU", regions=IOWA, usd=L4),
    sku("Nvidia L4 GPU running in Netherlands", resource_group="GPU", regions=NETHERLANDS, usd=L4_NL),
    # A3 host priced in the Netherlands, but no H100 there: no a3 rows for europe-west4.
    sku("A3 Instance Core running in Netherlands", resource_group="CPU", regions=NETHERLANDS, usd=0.0348),
    sku("A3 Instance Ram running in Netherlands", resource_group="RAM", regions=NETHERLANDS, usd=0.0030),
]


@pytest.fixture(autouse=True)
def no_google_environment(monkeypatch, tmp_path):
    """No Application Default Credentials and no GPUFLEET_GCP_* from this machine."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-adc.json"))
    for name in ("GPUFLEET_GCP_BILLING_ENDPOINT", "GPUFLEET_GCP_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_gpu_vm_prices_are_host_cores_plus_host_ram_plus_accelerators():
    fake = FakeCloudBilling(SKUS, page_size=4)
    with fake.serve() as url:
        offers = gcp.fetch_offers(None, as_of=TODAY, api_endpoint=url)

    rows = {(o.instance_type, o.region): o for o in offers}
    a3 = rows["a3-highgpu-8g", "us-central1"]
    assert (a3.gpu, a3.gpu_count, a3.gpu_memory_gb, a3.vcpus, a3.memory_gb) == ("H100", 8, 80, 208, 1872)
    assert a3.on_demand_per_hour == pytest.approx(208 * A3_CORE + 1872 * A3_RAM + 8 * H100)
    assert a3.spot_per_hour == pytest.approx(208 * A3_CORE_SPOT + 1872 * A3_RAM_SPOT + 8 * H100_SPOT)
    assert a3.reserved_per_hour is None
    assert rows["a3-highgpu-1g", "us-central1"].on_demand_per_hour == pytest.approx(26 * A3_CORE + 234 * A3_RAM + H100)
    mega = rows["a3-megagpu-8g", "us-central1"]  # Mega's own GPU rate, not the reserved one
    assert (mega.gpu, mega.on_demand_per_hour, mega.spot_per_hour) == (
        "H100", pytest.approx(208 * A3_CORE + 1872 * A3_RAM + 8 * H100_MEGA), None)
    g2 = rows["g2-standard-24", "europe-west4"]
    assert (g2.gpu, g2.gpu_count) == ("L4", 2)
    assert g2.on_demand_per_hour == pytest.approx(24 * G2_CORE + 96 * G2_RAM + 2 * L4_NL)
    # No A2/A4/H200 SKUs at all, and no H100 rate in europe-west4: none of those rows.
    assert {region for (_type, region) in rows} == {"us-central1", "europe-west4"}
    assert not [t for t in rows if t[0].startswith(("a4-", "a2-", "a3-ultragpu"))]
    assert {t for (t, region) in rows if region == "europe-west4"} == {t for t in gcp._MACHINES if t.startswith("g2-")}
    assert {o.source for o in offers} == {"gcp-cloud-billing-catalog"}


def test_every_page_is_read_and_no_credentials_go_to_a_plain_http_endpoint():
    fake = FakeCloudBilling(SKUS, page_size=4)
    with fake.serve() as url:
        gcp.fetch_offers(None, as_of=TODAY, api_endpoint=url)

    assert [r.path for r in fake.requests] == [f"/v1/services/{COMPUTE_ENGINE_ID}/skus"] * 5
    assert [r.args.get("pageToken") for r in fake.requests] == [None, "4", "8", "12", "16"]
    assert not any("Authorization" in r.headers for r in fake.requests)


def test_regions_limit_the_rows():
    with FakeCloudBilling(SKUS).serve() as url:
        offers = gcp.fetch_offers(NETHERLANDS, as_of=TODAY, api_endpoint=url)

    assert offers and {(o.region, o.instance_type[:2]) for o in offers} == {("europe-west4", "g2")}


def test_refresh_through_the_endpoint_variables_sends_the_api_key(monkeypatch, tmp_path):
    fake = FakeCloudBilling(SKUS, page_size=100)
    with fake.serve() as url:
        monkeypatch.setenv("GPUFLEET_GCP_BILLING_ENDPOINT", url)
        monkeypatch.setenv("GPUFLEET_GCP_API_KEY", "fake-key")
        result = refresh_catalog("gcp", IOWA, catalog_dir=tmp_path)

    assert [r.headers.get("X-Goog-Api-Key") for r in fake.requests] == ["fake-key"]
    offers = [o for o in read_offers(result.path) if o.region == "us-central1"]
    assert result.path == tmp_path / "gcp.csv"
    assert result.rows == len(offers) > 0 and {o.source for o in offers} == {gcp.SOURCE}


def test_sku_paging_that_loops_on_itself_stops():
    looping = FakeCloudBilling(SKUS, page_size=2)
    looping.handle = lambda request: json_response({"skus": SKUS[:2], "nextPageToken": "same-token"})
    with looping.serve() as url, pytest.raises(CatalogError, match="paging loops"):
        gcp.fetch_offers(IOWA, as_of=TODAY, api_endpoint=url)

    assert len(looping.requests) == 2


def test_a_negative_rate_is_an_anomaly_not_an_offer():
    skus = [sku("Nvidia L4 GPU running in Americas", resource_group="GPU", regions=IOWA, usd=-0.56) if "L4 GPU running in Americas" in s["description"] else s for s in SKUS]
    with FakeCloudBilling(skus, page_size=100).serve() as url, pytest.raises(PricesRejected) as caught:
        gcp.fetch_offers(IOWA, as_of=TODAY, api_endpoint=url)

    assert [(a.instance_type, a.field, a.value) for a in caught.value.anomalies] == [
        ("Nvidia L4 GPU running in Americas", "unit_price", "-0.56")]


def test_server_errors_are_retried():
    fake = FakeCloudBilling(SKUS, page_size=100)
    fake.fail_next(503, error_body(503, "UNAVAILABLE", "The service is currently unavailable."))
    with fake.serve() as url:
        offers = gcp.fetch_offers(IOWA, as_of=TODAY, api_endpoint=url)

    assert offers and len(fake.requests) == 2


def test_permission_denied_says_to_enable_the_billing_api():
    fake = FakeCloudBilling(SKUS)
    fake.fail_next(403, error_body(403, "PERMISSION_DENIED", "Cloud Billing API has not been used in project 1234"))
    with fake.serve() as url, pytest.raises(CatalogError) as caught:
        gcp.fetch_offers(IOWA, as_of=TODAY, api_endpoint=url)

    assert "cloudbilling.googleapis.com" in str(caught.value) and "To fix:" in str(caught.value)
    assert isinstance(caught.value.__cause__, Forbidden)


def test_missing_credentials_say_how_to_provide_them():
    # An https endpoint gets real credentials, and there are none here (nothing is sent: ADC fails first).
    with pytest.raises(CatalogError) as caught:
        gcp.fetch_offers(IOWA, as_of=TODAY, api_endpoint="https://127.0.0.1:9")

    assert "gcloud auth application-default login" in str(caught.value)
    assert "GPUFLEET_GCP_API_KEY" in str(caught.value)
