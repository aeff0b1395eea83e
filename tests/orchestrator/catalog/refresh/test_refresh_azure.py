"""Azure refresh through httpx against a Retail Prices fake."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from orchestrator.catalog.refresh import azure
from orchestrator.errors import CatalogError
from tests.fakes.azure_retail_prices import PATH, FakeRetailPrices, price_item

TODAY = dt.date(2026, 5, 20)
H100 = "Standard_ND96isr_H100_v5"
H100_LINUX, H100_WINDOWS = "Virtual Machines ND H100 v5 Series", "Virtual Machines ND H100 v5 Series Windows"

# Items that must not count come first: the first price of a market wins.
ITEMS = [
    price_item(H100, "eastus", 19.66, sku_name="ND96isr H100 v5 Low Priority", product_name=H100_LINUX),
    price_item(H100, "eastus", 102.736, sku_name="ND96isr H100 v5", product_name=H100_WINDOWS),
    price_item(H100, "eastus", 88.49, sku_name="ND96isr H100 v5", product_name=H100_LINUX, type="DevTestConsumption"),
    price_item(H100, "eastus", 1_100_000, sku_name="ND96isr H100 v5", product_name=H100_LINUX,
               type="Reservation", reservation_term="3 Years"),
    price_item(H100, "eastus", 98.32, sku_name="ND96isr H100 v5", product_name=H100_LINUX),
    price_item(H100, "eastus", 39.33, sku_name="ND96isr H100 v5 Spot", product_name=H100_LINUX),
    price_item(H100, "eastus", 548_000, sku_name="ND96isr H100 v5", product_name=H100_LINUX,
               type="Reservation", reservation_term="1 Year"),
    price_item("Standard_NC24ads_A100_v4", "eastus", 3.673, sku_name="NC24ads A100 v4",
               product_name="Virtual Machines NCadsA100v4 Series"),
    price_item("Standard_NV6ads_A10_v5", "eastus", 0.454, sku_name="NV6ads A10 v5",  # 1/6 of an A10
               product_name="Virtual Machines NVadsA10v5 Series"),
    price_item("Standard_NV12s_v3", "eastus", 1.14, sku_name="NV12s v3", product_name="Virtual Machines NVSv3 Series"),
    price_item("Standard_D4s_v5", "eastus", 0.192, sku_name="D4s v5", product_name="Virtual Machines Dsv5 Series"),
    price_item("Standard_NC4as_T4_v3", "westus2", 0.526, sku_name="NC4as T4 v3",
               product_name="Virtual Machines NCasT4_v3 Series"),
]


def test_items_become_offers_per_market_over_every_page():
    fake = FakeRetailPrices(ITEMS, page_size=2)
    with fake.serve() as url:
        offers = azure.fetch_offers(["eastus"], as_of=TODAY, base_url=url + PATH)

    rows = {o.instance_type: o for o in offers}
    assert set(rows) == {H100, "Standard_NC24ads_A100_v4"}  # no fractional A10, no M60, no D-series
    h100 = rows[H100]
    assert (h100.region, h100.gpu, h100.gpu_count, h100.gpu_memory_gb, h100.vcpus) == ("eastus", "H100", 8, 80, 96)
    assert (h100.on_demand_per_hour, h100.spot_per_hour) == (98.32, 39.33)  # not Windows, DevTest or Low Priority
    assert h100.reserved_per_hour == pytest.approx(548_000 / 8760)  # the 1-year term, per hour
    assert rows["Standard_NC24ads_A100_v4"].spot_per_hour is None
    # 10 eastus N-series items, 2 a page: all 5 pages, the later ones by NextPageLink.
    assert len(fake.requests) == 5
    assert [r.args.get("$skip") for r in fake.requests] == [None, "2", "4", "6", "8"]
    assert fake.requests[0].args["$filter"] == (
        "serviceName eq 'Virtual Machines' and armRegionName eq 'eastus' and contains(armSkuName, 'Standard_N')"
    )


def test_all_regions_in_one_query_when_none_are_named():
    fake = FakeRetailPrices(ITEMS, page_size=100)
    with fake.serve() as url:
        offers = azure.fetch_offers(None, as_of=TODAY, base_url=url + PATH)

    assert {(o.region, o.instance_type) for o in offers} == {
        ("eastus", H100), ("eastus", "Standard_NC24ads_A100_v4"), ("westus2", "Standard_NC4as_T4_v3")}
    assert len(fake.requests) == 1


def test_throttling_is_retried_after_the_time_the_api_asks():
    fake = FakeRetailPrices(ITEMS, page_size=100)
    fake.fail_next(429, {"Error": {"Code": "TooManyRequests"}}, times=2)
    with fake.serve() as url:
        offers = azure.fetch_offers(["westus2"], as_of=TODAY, base_url=url + PATH)

    assert [o.instance_type for o in offers] == ["Standard_NC4as_T4_v3"]
    assert len(fake.requests) == 3


def test_persistent_server_errors_give_up_after_four_tries():
    fake = FakeRetailPrices(ITEMS)
    fake.fail_next(503, {"Error": {"Code": "ServiceUnavailable"}}, times=10)
    with fake.serve() as url, pytest.raises(CatalogError) as caught:
        azure.fetch_offers(["eastus"], as_of=TODAY, base_url=url + PATH)

    assert len(fake.requests) == 4
    assert "503" in str(caught.value) and "To fix:" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)


def test_unreachable_api_is_a_catalog_error():
    with FakeRetailPrices([]).serve() as url:
        pass  # the port is free again once the fake stops
    with pytest.raises(CatalogError) as caught:
        azure.fetch_offers(["eastus"], as_of=TODAY, base_url=url + PATH)

    assert "cannot reach" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
