"""refresh_catalog: provider choice, endpoint variables, and what lands on disk (Azure's fake as the source)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from werkzeug.wrappers import Response

from orchestrator.catalog.gpu_names import AWS_FAMILY_GPU
from orchestrator.catalog.gpus import known_gpus
from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.catalog.price_checks import PricesRejected
from orchestrator.catalog.refresh import azure, gcp, refresh_catalog
from orchestrator.catalog.store import FIELDS, read_offers
from orchestrator.errors import CatalogError, InputError
from tests.fakes.azure_retail_prices import PATH, FakeRetailPrices, price_item
from tests.fakes.http_fake import json_response

T4, A100 = "Standard_NC4as_T4_v3", "Standard_NC24ads_A100_v4"
T4_SERIES, A100_SERIES = "Virtual Machines NCasT4_v3 Series", "Virtual Machines NCadsA100v4 Series"


def items(t4_eastus_price: float) -> list[dict]:
    return [
        price_item(T4, "eastus", t4_eastus_price, sku_name="NC4as T4 v3", product_name=T4_SERIES),
        price_item(T4, "westus2", 0.526, sku_name="NC4as T4 v3", product_name=T4_SERIES),
        price_item(A100, "westus2", 3.673, sku_name="NC24ads A100 v4", product_name=A100_SERIES),
    ]


@pytest.fixture
def azure_fake(monkeypatch):
    """An Azure Retail Prices fake that GPUFLEET_AZURE_PRICES_URL points at."""
    fake = FakeRetailPrices(items(0.526))
    with fake.serve() as url:
        monkeypatch.setenv("GPUFLEET_AZURE_PRICES_URL", url + PATH)
        yield fake


def test_unknown_provider_is_bad_input_naming_the_allowed_ones(tmp_path):
    with pytest.raises(InputError, match="allowed: aws, gcp, azure"):
        refresh_catalog("oracle", None, catalog_dir=tmp_path)


def test_refresh_writes_the_provider_csv_dated_today_in_utc(azure_fake, tmp_path):
    result = refresh_catalog("azure", None, catalog_dir=tmp_path / "catalog")

    offers = read_offers(tmp_path / "catalog" / "azure.csv")
    assert result.path == tmp_path / "catalog" / "azure.csv"
    assert (result.provider, result.rows, result.source) == ("azure", 3, "azure-retail-prices")
    assert result.as_of == dt.datetime.now(dt.timezone.utc).date()
    assert {(o.region, o.instance_type, o.as_of) for o in offers} == {
        ("eastus", T4, result.as_of), ("westus2", T4, result.as_of), ("westus2", A100, result.as_of)}
    assert azure_fake.requests, "the endpoint variable was not used"


def test_the_price_catalog_takes_the_refreshed_rows_over_the_bundled_ones(azure_fake, tmp_path):
    result = refresh_catalog("azure", None, catalog_dir=tmp_path)

    catalog = load_price_catalog(tmp_path)
    azure_source = next(s for s in catalog.sources if s.provider == "azure")
    assert (azure_source.refreshed, azure_source.as_of, azure_source.source) == (True, result.as_of, result.source)
    assert {(o.region, o.instance_type) for o in catalog.find(provider="azure")} == {
        ("eastus", T4), ("westus2", T4), ("westus2", A100)}
    assert catalog.find(provider="aws"), "other providers keep their bundled rows"


def test_a_one_region_refresh_replaces_that_region_only(azure_fake, tmp_path):
    refresh_catalog("azure", None, catalog_dir=tmp_path)
    azure_fake.items = items(0.61)

    result = refresh_catalog("azure", ["eastus"], catalog_dir=tmp_path)

    prices = {(o.region, o.instance_type): o.on_demand_per_hour for o in read_offers(result.path)}
    assert prices == {("eastus", T4): 0.61, ("westus2", T4): 0.526, ("westus2", A100): 3.673}
    assert result.rows == 1


def test_a_row_for_an_unrequested_region_is_ignored_and_reported(tmp_path):
    hostile = FakeRetailPrices(items(0.526))
    hostile.handle = lambda request: json_response({"Items": items(0.61), "NextPageLink": None})  # ignores the filter
    with hostile.serve() as url:
        result = refresh_catalog("azure", ["eastus"], catalog_dir=tmp_path, base_url=url + PATH)

    refreshed = [o for o in read_offers(result.path) if o.source == azure.SOURCE]
    assert [(o.region, o.instance_type, o.on_demand_per_hour) for o in refreshed] == [("eastus", T4, 0.61)]
    assert {(a.region, a.instance_type) for a in result.ignored} == {("westus2", T4), ("westus2", A100)}
    bundled_westus2 = {o.instance_type for o in load_price_catalog().find(provider="azure", region="westus2")}
    assert {o.instance_type for o in read_offers(result.path) if o.region == "westus2"} == bundled_westus2


@pytest.mark.parametrize(("price", "problem"), [
    (0.0, "greater than 0"), (-0.526, "greater than 0"), (1e-300, "allowed: $0.01 to $100"),
    (1e308, "allowed: $0.01 to $100"), (0.02, "more than 10x from the bundled catalog's median"),
    (15.0, "more than 10x from the bundled catalog's median"), ("NaN", "finite number"), ("Infinity", "finite number"),
])
def test_a_price_that_cannot_be_right_rejects_the_refresh_and_keeps_the_old_catalog(azure_fake, tmp_path, price, problem):
    refresh_catalog("azure", None, catalog_dir=tmp_path)
    before = (tmp_path / "azure.csv").read_bytes()
    azure_fake.items = items(float(price))  # a T4 at $0.526/h is right; these are not

    with pytest.raises(PricesRejected) as caught:
        refresh_catalog("azure", None, catalog_dir=tmp_path)

    assert [(a.region, a.instance_type, a.field) for a in caught.value.anomalies] == [
        ("eastus", T4, "on_demand_per_hour")]
    assert problem in caught.value.anomalies[0].problem and "left as it was" in str(caught.value)
    assert (tmp_path / "azure.csv").read_bytes() == before


def test_paging_that_loops_on_itself_stops_at_the_first_repeated_link(tmp_path):
    looping = FakeRetailPrices(items(0.526))
    looping.handle = lambda request: json_response(
        {"Items": items(0.526)[:1], "NextPageLink": f"{request.host_url}api/retail/prices?$skip={len(looping.requests) % 2}"})
    with looping.serve() as url, pytest.raises(CatalogError, match="paging loops"):
        refresh_catalog("azure", None, catalog_dir=tmp_path, base_url=url + PATH)

    assert len(looping.requests) == 3  # the links go $skip=1, 0, 1: the third is the first again
    assert not (tmp_path / "azure.csv").exists()


def test_a_body_dripping_a_byte_at_a_time_meets_the_deadline(tmp_path):
    body = json.dumps({"Items": items(0.526), "NextPageLink": None}).encode()

    def drip():
        for i in range(len(body)):
            time.sleep(0.01)
            yield body[i:i + 1]

    dripping = FakeRetailPrices([])
    dripping.handle = lambda request: Response(drip(), 200, content_type="application/json")
    started = time.monotonic()
    with dripping.serve() as url, pytest.raises(CatalogError, match="within 1s"):
        refresh_catalog("azure", None, catalog_dir=tmp_path, base_url=url + PATH, deadline_s=1.0)

    assert time.monotonic() - started < 3  # the whole body would take over 20 s
    assert not (tmp_path / "azure.csv").exists()


@pytest.mark.parametrize("line", [
    "azure,eastus,,Standard_NC4as_T4_v3,T4,1,16,4,28,-1,,,2026-11-01,x",
    "azure,eastus,,Standard_NC4as_T4_v3,T4,1,16,4,28,nan,,,2026-11-01,x",
    "azure,eastus,,Standard_NC4as_T4_v3,T4,1,16,4,28,0,,,2026-11-01,x",
    "azure,eastus,,Standard_NC4as_T4_v3,T4,1,16,4,28,1e-300,,,2026-11-01,x",
    "azure,eastus,,Standard_NC4as_T4_v3,T4,1,16,4,28,0.526,,,2026-11-01",
    "aws,eastus,,Standard_NC4as_T4_v3,T4,1,16,4,28,0.526,,,2026-11-01,x",
])
def test_a_bad_refreshed_file_on_disk_is_ignored_with_a_warning(tmp_path, caplog, line):
    good = "azure,westus2,,Standard_NC4as_T4_v3,T4,1,16,4,28,0.526,,,2026-11-01,x"
    (tmp_path / "azure.csv").write_text(",".join(FIELDS) + "\n" + good + "\n" + line + "\n")

    catalog = load_price_catalog(tmp_path)

    source = next(s for s in catalog.sources if s.provider == "azure")
    assert not source.refreshed and "azure.csv:3" in source.problem
    assert len(catalog.find(provider="azure")) > 100  # the bundled rows
    assert "ignoring the refreshed azure prices" in caplog.text


def test_a_failed_refresh_leaves_the_previous_catalog_as_it_was(azure_fake, tmp_path):
    refresh_catalog("azure", None, catalog_dir=tmp_path)
    before = (tmp_path / "azure.csv").read_bytes()

    azure_fake.fail_next(500, {"Error": {"Code": "InternalServerError"}}, times=4)
    with pytest.raises(CatalogError):
        refresh_catalog("azure", None, catalog_dir=tmp_path)
    with pytest.raises(CatalogError, match="no GPU offers for centralus"):
        refresh_catalog("azure", ["centralus"], catalog_dir=tmp_path)

    assert (tmp_path / "azure.csv").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["azure.csv"]  # no temporary file left behind


def test_arguments_win_over_endpoint_variables(azure_fake, tmp_path):
    other = FakeRetailPrices(items(0.7))
    with other.serve() as url:
        refresh_catalog("azure", ["eastus"], catalog_dir=tmp_path, base_url=url + PATH)

    assert other.requests and not azure_fake.requests


def test_importing_the_package_loads_no_cloud_sdk():
    probe = ("import sys, orchestrator.catalog.refresh; "
             "print(sorted(m for m in ('boto3', 'botocore', 'httpx', 'google.cloud.billing_v1') if m in sys.modules))")
    repo = Path(__file__).resolve().parents[4]
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_every_gpu_the_refreshers_name_has_a_spec():
    named = {*AWS_FAMILY_GPU.values(), *(a.gpu for a in gcp._ACCELERATORS.values()),
             *(size.gpu for size in azure._SIZES.values())}
    assert named <= set(known_gpus())
