"""Price API answers, generated: whatever the Azure Retail Prices API answers (any float as a price, any
JSON as a page), a refresh either writes a catalog every row of which passes the checks, or raises a
CatalogError and leaves the previous file byte for byte; never another exception, never NaN or Infinity
on disk. Through the real httpx client against the Retail Prices fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator.catalog.price_catalog import BUNDLED_PRICES
from orchestrator.catalog.price_checks import PriceBounds
from orchestrator.catalog.refresh import refresh_catalog
from orchestrator.catalog.store import read_offers
from orchestrator.errors import CatalogError
from tests.fakes.azure_retail_prices import PATH, FakeRetailPrices, price_item
from tests.fakes.http_fake import json_response

SIZES = {"Standard_NC4as_T4_v3": "NCasT4_v3", "Standard_NC24ads_A100_v4": "NCadsA100v4"}
BOUNDS = PriceBounds.of(read_offers(BUNDLED_PRICES))
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

prices = st.one_of(st.floats(), st.floats(min_value=0.2, max_value=5.0), st.sampled_from([0.0, -1.0, 1e-300, 1e308]))
items = st.lists(st.tuples(st.sampled_from(["eastus", "westus2"]), st.sampled_from(sorted(SIZES)), st.booleans(), prices),
                 max_size=5)
json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.sampled_from(["Items", "NextPageLink", "retailPrice", "x"]), inner, max_size=3),
                           max_leaves=8)


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeRetailPrices, str]]:
    server = FakeRetailPrices([], page_size=100)
    with server.serve() as url:
        yield server, url + PATH


def _refresh_keeps_the_invariant(catalog_dir: Path, url: str) -> None:
    path = catalog_dir / "azure.csv"
    before = path.read_bytes() if path.exists() else None
    try:
        refresh_catalog("azure", ["eastus"], catalog_dir=catalog_dir, base_url=url, deadline_s=30)
    except CatalogError:
        assert (path.read_bytes() if path.exists() else None) == before
        return
    text = path.read_text()
    assert "nan" not in text.lower() and "inf" not in text.lower()
    assert all(BOUNDS.check(offer) == [] for offer in read_offers(path))


@FUZZ
@given(answer=items)
def test_any_prices(fake, tmp_path, answer) -> None:
    server, url = fake
    server.handle = FakeRetailPrices.handle.__get__(server)
    server.items = [price_item(size, region, price, sku_name=SIZES[size] + (" Spot" if spot else ""),
                               product_name=f"Virtual Machines {SIZES[size]} Series")
                    for region, size, spot, price in answer]
    _refresh_keeps_the_invariant(tmp_path, url)


@FUZZ
@given(page=json_values)
@example(page={"NextPageLink": "\x1f"})  # not a URL: httpx.InvalidURL is no HTTPError (found by a CI run)
def test_any_page(fake, tmp_path, page) -> None:
    server, url = fake
    body = json.dumps(page)  # NaN and Infinity too, as a careless server writes them
    server.handle = lambda request: json_response(json.loads(body))
    _refresh_keeps_the_invariant(tmp_path, url)
