"""Azure GPU VM prices from the Azure Retail Prices REST API.

The API is public and unauthenticated, and Microsoft ships no SDK for it, so it is
called with httpx. It prices VM sizes (`armSkuName`) per region: "Consumption" items
are pay-as-you-go, with Spot as a separate `skuName` ("... Spot"), and "Reservation"
items give the whole term's price. What GPU a size carries is not in the API: it comes
from the size table below.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, NamedTuple

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.catalog.offers import PriceOffer
from orchestrator.catalog.price_checks import OfferBuilder
from orchestrator.errors import CatalogError

logger = logging.getLogger(__name__)

SOURCE = "azure-retail-prices"
DEFAULT_BASE_URL = "https://prices.azure.com/api/retail/prices"

_HOURS_PER_YEAR = 8760  # a 1-year reservation's retailPrice is for the whole term
_ATTEMPTS = 4  # tries per page: throttling (429) and 5xx are retried
_RETRY_STATUSES = {429, 500, 502, 503, 504}
_MAX_WAIT_S = 30.0


class _Size(NamedTuple):
    gpu: str  # canonical
    gpu_count: int
    vcpus: int
    memory_gib: float


# Whole-GPU sizes of the Azure GPU series gpufleet serves on; vCPUs and memory as
# Azure's Resource SKUs API (`az vm list-skus`) reports them, GPUs per
# https://learn.microsoft.com/azure/virtual-machines/sizes/overview (GPU accelerated).
# Fractional-GPU sizes (NVadsA10 v5 below NV36ads, 1/6 to 1/2 of an A10) are left out:
# a replica needs whole GPUs. NV v3 (M60) and NVv4 (MI25) carry GPUs gpufleet does not serve on.
_SIZES = {
    "Standard_NC4as_T4_v3": _Size("T4", 1, 4, 28),
    "Standard_NC8as_T4_v3": _Size("T4", 1, 8, 56),
    "Standard_NC16as_T4_v3": _Size("T4", 1, 16, 110),
    "Standard_NC64as_T4_v3": _Size("T4", 4, 64, 440),
    "Standard_NC6s_v3": _Size("V100", 1, 6, 112),
    "Standard_NC12s_v3": _Size("V100", 2, 12, 224),
    "Standard_NC24s_v3": _Size("V100", 4, 24, 448),
    "Standard_NC24rs_v3": _Size("V100", 4, 24, 448),
    "Standard_ND40rs_v2": _Size("V100-32GB", 8, 40, 672),
    "Standard_NC24ads_A100_v4": _Size("A100-80GB", 1, 24, 220),
    "Standard_NC48ads_A100_v4": _Size("A100-80GB", 2, 48, 440),
    "Standard_NC96ads_A100_v4": _Size("A100-80GB", 4, 96, 880),
    "Standard_ND96asr_v4": _Size("A100", 8, 96, 900),
    "Standard_ND96amsr_A100_v4": _Size("A100-80GB", 8, 96, 1800),
    "Standard_NC40ads_H100_v5": _Size("H100", 1, 40, 320),
    "Standard_NCC40ads_H100_v5": _Size("H100", 1, 40, 320),
    "Standard_NC80adis_H100_v5": _Size("H100", 2, 80, 640),
    "Standard_ND96isr_H100_v5": _Size("H100", 8, 96, 1900),
    "Standard_ND96isr_H200_v5": _Size("H200", 8, 96, 1850),
    "Standard_ND96isr_MI300X_v5": _Size("MI300X", 8, 96, 1850),
    "Standard_NV36ads_A10_v5": _Size("A10", 1, 36, 440),
    "Standard_NV36adms_A10_v5": _Size("A10", 1, 36, 880),
    "Standard_NV72ads_A10_v5": _Size("A10", 2, 72, 880),
}


def fetch_offers(
    regions: list[str] | None,
    *,
    as_of: dt.date,
    base_url: str = DEFAULT_BASE_URL,
    client: Any = None,
) -> list[PriceOffer]:
    """GPU VM offers in `regions` (ARM names such as eastus; every region when None)."""
    import httpx

    prices: dict[tuple[str, str], dict[str, float]] = {}  # (region, size) -> offer field -> $/h
    with _translate_errors(), (nullcontext(client) if client else httpx.Client(timeout=60.0)) as http:
        for region in regions or [None]:
            for item in _items(http, base_url, region):
                priced = _price(item)
                if priced is not None:
                    where, field, price = priced
                    prices.setdefault(where, {}).setdefault(field, price)
    builder = OfferBuilder("azure")
    offers = []
    for (region, size_name), fields in sorted(prices.items()):
        size = _SIZES[size_name]
        offers.append(builder.build(
            region=region, instance_type=size_name, gpu=size.gpu, gpu_count=size.gpu_count,
            gpu_memory_gb=gpu_spec(size.gpu).memory_gb, vcpus=size.vcpus, memory_gb=size.memory_gib,
            as_of=as_of, source=SOURCE, **fields,
        ))
    return builder.finish([offer for offer in offers if offer is not None])


def _items(http: Any, base_url: str, region: str | None) -> Iterator[dict]:
    """Price items of N-series (GPU) VM sizes in `region`, following NextPageLink."""
    clauses = ["serviceName eq 'Virtual Machines'", "contains(armSkuName, 'Standard_N')"]
    if region:
        clauses.insert(1, f"armRegionName eq '{region}'")
    url: str | None = base_url
    params: dict[str, str] | None = {"$filter": " and ".join(clauses)}
    seen: set[str] = set()
    while url:
        page = _get_json(http, url, params)
        yield from page.get("Items", [])
        url, params = page.get("NextPageLink"), None  # the link carries the query
        if url in seen:
            raise CatalogError(f"azure: the Retail Prices API's paging loops ({url[:100]} came back); the "
                               "existing catalog is left as it was. To fix: retry later.")
        seen.add(url)


def _price(item: dict) -> tuple[tuple[str, str], str, float] | None:
    """((region, size), offer field, USD per hour) of a Linux price item of a known size; else None."""
    try:
        return _classify(item)
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("skipping a malformed price item for %s: %r", item.get("armSkuName"), exc)
        return None


def _classify(item: dict) -> tuple[tuple[str, str], str, float] | None:
    if (
        item.get("armSkuName") not in _SIZES
        or item.get("unitOfMeasure") != "1 Hour"
        or "Windows" in item.get("productName", "")
        or "Low Priority" in item.get("skuName", "")  # Batch's older preemptible market
        or item.get("isPrimaryMeterRegion") is False  # a copy of a meter billed from another region
    ):
        return None
    where = (str(item["armRegionName"]), item["armSkuName"])
    if item.get("type") == "Consumption":
        field = "spot_per_hour" if "Spot" in item.get("skuName", "") else "on_demand_per_hour"
        return where, field, float(item["retailPrice"])
    if item.get("type") == "Reservation" and item.get("reservationTerm") == "1 Year":
        return where, "reserved_per_hour", round(float(item["retailPrice"]) / _HOURS_PER_YEAR, 6)
    return None  # DevTestConsumption, 3-year reservations


def _get_json(http: Any, url: str, params: dict[str, str] | None) -> dict:
    """GET a page, retrying throttling and server errors with backoff (Retry-After when given)."""
    attempt = 0
    while True:
        attempt += 1
        response = http.get(url, params=params)
        if response.status_code not in _RETRY_STATUSES or attempt == _ATTEMPTS:
            response.raise_for_status()
            return _page(response.json())
        wait = _retry_after(response.headers.get("Retry-After"), default=2.0 ** (attempt - 1))
        logger.warning("Azure Retail Prices answered %s; retry %d/%d in %.1fs",
                       response.status_code, attempt, _ATTEMPTS - 1, wait)
        time.sleep(wait)


def _page(body: Any) -> dict:
    """A page as the API documents it (an object with a list of item objects), else CatalogError."""
    items = body.get("Items", []) if isinstance(body, dict) else None
    link = body.get("NextPageLink") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items) or not isinstance(link, str | None):
        raise CatalogError("azure: the Retail Prices API answered a page that is not {Items: [...], NextPageLink}. "
                           "To fix: check prices.azure.com (or GPUFLEET_AZURE_PRICES_URL, if set).")
    return body


def _retry_after(header: str | None, *, default: float) -> float:
    """Seconds a Retry-After header asks for (capped), or `default` when absent or a date."""
    try:
        return min(float(header), _MAX_WAIT_S) if header is not None else default
    except ValueError:
        return default


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Turn httpx failures (after retries) and bad JSON into CatalogErrors that say what to do."""
    import httpx

    where = "prices.azure.com (or GPUFLEET_AZURE_PRICES_URL, if set)"
    try:
        yield
    except httpx.HTTPStatusError as exc:
        raise CatalogError(
            f"azure: the Retail Prices API answered {exc.response.status_code} for {exc.request.url}. "
            f"To fix: retry later; if it persists, check {where}."
        ) from exc
    except httpx.InvalidURL as exc:  # not an HTTPError: a NextPageLink that is no URL
        raise CatalogError(
            f"azure: the Retail Prices API's paging link is not a URL ({exc}). To fix: check {where}."
        ) from exc
    except httpx.HTTPError as exc:
        raise CatalogError(
            f"azure: cannot reach the Retail Prices API: {exc}. To fix: check network access "
            f"(and HTTPS_PROXY) to {where}."
        ) from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"azure: the Retail Prices API returned something other than JSON ({exc}). "
            f"To fix: check {where}."
        ) from exc
