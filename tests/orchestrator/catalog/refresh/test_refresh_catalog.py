"""refresh_catalog: provider choice, endpoint variables, and what lands on disk (Azure's fake as the source)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.catalog.gpu_names import AWS_FAMILY_GPU
from orchestrator.catalog.gpus import known_gpus
from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.catalog.refresh import azure, gcp, refresh_catalog
from orchestrator.catalog.store import read_offers
from orchestrator.errors import CatalogError, InputError
from tests.fakes.azure_retail_prices import PATH, FakeRetailPrices, price_item

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


def test_a_one_region_refresh_replaces_the_providers_catalog_whole(azure_fake, tmp_path):
    refresh_catalog("azure", None, catalog_dir=tmp_path)
    azure_fake.items = items(0.61)

    result = refresh_catalog("azure", ["eastus"], catalog_dir=tmp_path)

    prices = {(o.region, o.instance_type): o.on_demand_per_hour for o in read_offers(result.path)}
    assert prices == {("eastus", T4): 0.61}  # no westus2 rows of an earlier date beside it
    assert result.rows == 1


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
