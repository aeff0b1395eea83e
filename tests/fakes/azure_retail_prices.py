"""A fake of the Azure Retail Prices API: `GET /api/retail/prices?$filter=...`.

Applies the OData filter clauses a client may send (`field eq 'value'`,
`contains(field, 'value')`, joined by `and`; anything else is a 400, as a filter the
real API cannot parse is) and pages with `$skip` through absolute `NextPageLink`s.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tests.fakes.http_fake import FakeHttpApi, json_response

PATH = "/api/retail/prices"
_EQ = re.compile(r"^(?P<field>\w+) eq '(?P<value>[^']*)'$")
_CONTAINS = re.compile(r"^contains\((?P<field>\w+), '(?P<value>[^']*)'\)$")


def price_item(
    arm_sku_name: str,
    region: str,
    retail_price: float,
    *,
    sku_name: str,
    product_name: str,
    type: str = "Consumption",
    reservation_term: str | None = None,
) -> dict:
    """One price item as the API returns it (reservation items carry the whole term's price)."""
    meter = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{arm_sku_name}|{region}|{sku_name}|{type}|{reservation_term}"))
    item = {
        "currencyCode": "USD",
        "tierMinimumUnits": 0.0,
        "retailPrice": retail_price,
        "unitPrice": retail_price,
        "armRegionName": region,
        "location": {"eastus": "US East", "westus2": "US West 2"}.get(region, region),
        "effectiveStartDate": "2025-11-01T00:00:00Z",
        "meterId": meter,
        "meterName": sku_name,
        "productId": "DZH318Z08M9C",
        "skuId": "DZH318Z08M9C/00G1",
        "productName": product_name,
        "skuName": sku_name,
        "serviceName": "Virtual Machines",
        "serviceId": "DZH313Z7MMC8",
        "serviceFamily": "Compute",
        "unitOfMeasure": "1 Hour",
        "type": type,
        "isPrimaryMeterRegion": True,
        "armSkuName": arm_sku_name,
    }
    if reservation_term:
        item["reservationTerm"] = reservation_term
    return item


class FakeRetailPrices(FakeHttpApi):
    """Price items filtered server-side, `page_size` a page (the real API pages by 100)."""

    def __init__(self, items: list[dict], *, page_size: int = 2) -> None:
        super().__init__()
        self.items = items
        self.page_size = page_size

    def handle(self, request: Request) -> Response:
        if request.method != "GET" or request.path != PATH:
            return json_response({"Error": {"Code": "NotFound", "Message": f"no route {request.path}"}}, 404)
        odata = request.args.get("$filter", "")
        try:
            matching = [item for item in self.items if _matches(item, odata)]
        except ValueError as exc:
            return json_response({"Error": {"Code": "BadRequest", "Message": str(exc)}}, 400)
        skip = int(request.args.get("$skip") or 0)
        end = skip + self.page_size
        next_link = None
        if end < len(matching):
            next_link = f"{request.host_url.rstrip('/')}{PATH}?{urlencode({'$filter': odata, '$skip': end})}"
        page = matching[skip:end]
        return json_response({
            "BillingCurrency": "USD",
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": page,
            "NextPageLink": next_link,
            "Count": len(page),
        })


def _matches(item: dict, odata: str) -> bool:
    """Whether `item` passes every `and`-joined clause of an OData filter."""
    for clause in filter(None, (part.strip() for part in odata.split(" and "))):
        if eq := _EQ.match(clause):
            if str(item.get(eq["field"])) != eq["value"]:
                return False
        elif contains := _CONTAINS.match(clause):
            if contains["value"] not in str(item.get(contains["field"], "")):
                return False
        else:
            raise ValueError(f"Invalid OData filter clause: {clause}")
    return True
