"""A fake of the Cloud Billing Catalog API: `GET /v1/services/{service}/skus` over REST.

Serves SKUs in the API's JSON (camelCase, money as `units` + `nanos`) with pageSize /
pageToken paging, and errors in Google's JSON error shape, for the real
`google.cloud.billing_v1.CloudCatalogClient` with `transport="rest"`.
"""

from __future__ import annotations

import hashlib
import re

from werkzeug.wrappers import Request, Response

from tests.fakes.http_fake import FakeHttpApi, json_response

COMPUTE_ENGINE_ID = "6F81-5844-456A"
_SKUS_PATH = re.compile(r"^/v1/services/(?P<service>[^/]+)/skus$")
_BASE_UNITS = {"h": ("s", "hour", 3600), "GiBy.h": ("By.s", "gibibyte hour", 3600 * 2**30)}


def sku(
    description: str,
    *,
    resource_group: str,
    regions: list[str],
    usd: float,
    usage_type: str = "OnDemand",
) -> dict:
    """One Compute Engine SKU as the API returns it; RAM SKUs are priced per GiB-hour, others per hour."""
    usage_unit = "GiBy.h" if resource_group == "RAM" else "h"
    base_unit, unit_description, factor = _BASE_UNITS[usage_unit]
    sku_id = hashlib.sha1(f"{description}|{usage_type}".encode()).hexdigest()[:12].upper()
    sku_id = "-".join(sku_id[i:i + 4] for i in range(0, 12, 4))
    units = int(usd)
    return {
        "name": f"services/{COMPUTE_ENGINE_ID}/skus/{sku_id}",
        "skuId": sku_id,
        "description": description,
        "category": {
            "serviceDisplayName": "Compute Engine",
            "resourceFamily": "Compute",
            "resourceGroup": resource_group,
            "usageType": usage_type,
        },
        "serviceRegions": regions,
        "pricingInfo": [{
            "summary": "",
            "pricingExpression": {
                "usageUnit": usage_unit,
                "usageUnitDescription": unit_description,
                "baseUnit": base_unit,
                "baseUnitDescription": "second" if base_unit == "s" else "byte second",
                "baseUnitConversionFactor": factor,
                "displayQuantity": 1,
                "tieredRates": [{
                    "startUsageAmount": 0,
                    "unitPrice": {"currencyCode": "USD", "units": str(units), "nanos": round((usd - units) * 1e9)},
                }],
            },
            "currencyConversionRate": 1,
            "effectiveTime": "2026-05-20T07:12:04.614Z",
        }],
        "serviceProviderName": "Google",
    }


def error_body(code: int, status: str, message: str) -> dict:
    """Google's JSON error document, which google-api-core maps to its exception classes."""
    return {"error": {"code": code, "message": message, "status": status}}


class FakeCloudBilling(FakeHttpApi):
    """Compute Engine's SKU list, `page_size` SKUs a page at most (to make paging happen)."""

    def __init__(self, skus: list[dict], *, page_size: int = 3) -> None:
        super().__init__()
        self.skus = skus
        self.page_size = page_size

    def handle(self, request: Request) -> Response:
        match = _SKUS_PATH.match(request.path)
        if request.method != "GET" or match is None:
            return json_response(error_body(404, "NOT_FOUND", f"no route {request.method} {request.path}"), 404)
        if match["service"] != COMPUTE_ENGINE_ID:
            return json_response(error_body(404, "NOT_FOUND", f"Service {match['service']} not found."), 404)
        start = int(request.args.get("pageToken") or 0)
        end = start + min(int(request.args.get("pageSize") or 5000), self.page_size)
        page = {"skus": self.skus[start:end], "nextPageToken": str(end) if end < len(self.skus) else ""}
        return json_response(page)
