"""A fake of the AWS Price List Query API's GetProducts, in front of moto's server.

moto does not emulate the Pricing API, and botocore sends Pricing and EC2 alike to one
`endpoint_url`. So this fake answers the JSON-protocol `AWSPriceListService.*` calls
itself (TERM_MATCH filters, NextToken paging) and hands every other request to moto's
own WSGI app, the one moto's server mode runs (EC2: spot price history). moto prices every
spot record at $0.00001, which no real GPU costs; `spot_usd` sets an instance type's price
in moto's answer instead.
"""

from __future__ import annotations

import hashlib
import json
import re

from werkzeug.wrappers import Request, Response

from tests.fakes.http_fake import FakeHttpApi, json_response

AMZ_JSON = "application/x-amz-json-1.1"
_LOCATIONS = {"us-east-1": ("US East (N. Virginia)", ""), "us-west-2": ("US West (Oregon)", "USW2-")}
_ON_DEMAND = "JRTCKXETXF"
_HOURLY = "6YS6EN2CT7"
_UPFRONT = "2TG2D8R56U"


def price_list_item(
    instance_type: str,
    region: str,
    *,
    gpus: int,
    vcpus: int,
    memory_gib: int,
    on_demand_usd: float,
    reserved_1y_no_upfront_usd: float | None = None,
    instance_family: str = "GPU instance",
) -> str:
    """One PriceList entry (a JSON string, as the API returns it) of a Linux on-demand product.

    With a 1-year no-upfront standard price it also carries the reserved terms a real
    product has beside it (convertible, partial upfront, 3-year), priced differently, so
    that picking the wrong term shows.
    """
    sku = hashlib.sha1(f"{instance_type}|{region}".encode()).hexdigest()[:16].upper()
    location, usage_prefix = _LOCATIONS[region]
    attributes = {
        "servicecode": "AmazonEC2", "servicename": "Amazon Elastic Compute Cloud",
        "instanceType": instance_type, "instanceFamily": instance_family, "currentGeneration": "Yes",
        "regionCode": region, "location": location, "locationType": "AWS Region",
        "operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used",
        "licenseModel": "No License required", "marketoption": "OnDemand", "operation": "RunInstances",
        "usagetype": f"{usage_prefix}BoxUsage:{instance_type}",
        "vcpu": str(vcpus), "memory": f"{memory_gib} GiB", "gpu": str(gpus),
    }
    terms: dict = {"OnDemand": {f"{sku}.{_ON_DEMAND}": _term(sku, _ON_DEMAND, {}, on_demand_usd)}}
    if reserved_1y_no_upfront_usd is not None:
        r = reserved_1y_no_upfront_usd
        terms["Reserved"] = {
            f"{sku}.{code}": _term(sku, code, term_attributes, hourly, upfront)
            for code, term_attributes, hourly, upfront in (
                ("4NA7Y494T4", _reserved("1yr", "standard", "No Upfront"), r, 0.0),
                ("7NE97W5U4E", _reserved("1yr", "convertible", "No Upfront"), round(r * 1.16, 4), 0.0),
                ("HU7G6KETJZ", _reserved("1yr", "standard", "Partial Upfront"), round(r * 0.48, 4), round(r * 4200)),
                ("BPH4J8HBKS", _reserved("3yr", "standard", "No Upfront"), round(r * 0.68, 4), 0.0),
            )
        }
    return json.dumps({
        "product": {"productFamily": "Compute Instance", "attributes": attributes, "sku": sku},
        "serviceCode": "AmazonEC2",
        "terms": terms,
        "version": "20260520140513",
        "publicationDate": "2026-05-20T14:05:13Z",
    })


def aws_error(code: str, message: str) -> dict:
    """The JSON protocol's error body, which botocore maps to a ClientError with this code."""
    return {"__type": code, "message": message}


class FakePricing(FakeHttpApi):
    """GetProducts over the given PriceList entries, `page_size` a page; anything else to moto."""

    def __init__(self, products: list[str], *, page_size: int = 2, spot_usd: dict[str, float] | None = None) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        super().__init__()
        self.products = products
        self.page_size = page_size
        self.spot_usd = spot_usd or {}
        self._moto = DomainDispatcherApplication(create_backend_app)

    def handle(self, request: Request) -> Response:
        target = request.headers.get("X-Amz-Target", "")
        if not target.startswith("AWSPriceListService."):
            return self._spot_priced(Response.from_app(self._moto, request.environ))
        if target != "AWSPriceListService.GetProducts":
            return json_response(aws_error("UnknownOperationException", target), 400, AMZ_JSON)
        query = json.loads(request.get_data())
        try:
            matching = [entry for entry in self.products if _matches(json.loads(entry), query)]
        except ValueError as exc:
            return json_response(aws_error("ValidationException", str(exc)), 400, AMZ_JSON)
        start = int(query.get("NextToken") or 0)
        end = start + min(query.get("MaxResults", 100), self.page_size)
        page = {"FormatVersion": "aws_v1", "PriceList": matching[start:end]}
        if end < len(matching):
            page["NextToken"] = str(end)
        return json_response(page, 200, AMZ_JSON)

    def _spot_priced(self, response: Response) -> Response:
        """moto's answer with each spot record of a type in `spot_usd` at that price."""
        def price(item: re.Match) -> str:
            instance_type = re.search(r"<instanceType>([^<]*)</instanceType>", item[0])
            usd = self.spot_usd.get(instance_type[1]) if instance_type else None
            return item[0] if usd is None else re.sub(r"<spotPrice>[^<]*</spotPrice>", f"<spotPrice>{usd}</spotPrice>", item[0])

        if self.spot_usd and b"<spotPriceHistorySet>" in response.get_data():
            response.set_data(re.sub(r"<item>.*?</item>", price, response.get_data(as_text=True), flags=re.S))
        return response


def _matches(document: dict, query: dict) -> bool:
    if document["serviceCode"] != query.get("ServiceCode"):
        return False
    attributes = document["product"]["attributes"]
    for term in query.get("Filters", []):
        if term["Type"] != "TERM_MATCH":
            raise ValueError(f"filter type {term['Type']} is not faked")
        if attributes.get(term["Field"]) != term["Value"]:
            return False
    return True


def _reserved(length: str, offering_class: str, purchase: str) -> dict:
    return {"LeaseContractLength": length, "OfferingClass": offering_class, "PurchaseOption": purchase}


def _term(sku: str, code: str, term_attributes: dict, hourly: float, upfront: float = 0.0) -> dict:
    """One offer term: an hourly price dimension, plus an upfront fee when there is one."""
    dimensions = {f"{sku}.{code}.{_HOURLY}": {
        "unit": "Hrs", "beginRange": "0", "endRange": "Inf", "appliesTo": [],
        "rateCode": f"{sku}.{code}.{_HOURLY}", "description": f"USD {hourly} per hour",
        "pricePerUnit": {"USD": f"{hourly:.10f}"},
    }}
    if upfront:
        dimensions[f"{sku}.{code}.{_UPFRONT}"] = {
            "unit": "Quantity", "appliesTo": [], "rateCode": f"{sku}.{code}.{_UPFRONT}",
            "description": "Upfront Fee", "pricePerUnit": {"USD": f"{upfront:.0f}"},
        }
    return {
        "offerTermCode": code, "sku": sku, "effectiveDate": "2026-05-01T00:00:00Z",
        "priceDimensions": dimensions, "termAttributes": term_attributes,
    }
