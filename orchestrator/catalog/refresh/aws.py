"""AWS GPU instance prices: the Price List Query API for on-demand and 1-year reserved,
EC2's spot price history for spot.

AWS prices instance types, not GPUs: the family fixes the GPU (`aws_instance_gpu`),
the Pricing product's attributes give the GPU count and the host shape, and the GPU's
memory comes from the GPU table, as for every cloud. Spot is
per availability zone; a row carries the median over the region's zones of each
zone's current price, what a pool spread over the region's zones pays on average
(the minimum would promise the cheapest zone's price to every node).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.catalog.gpu_names import aws_instance_gpu
from orchestrator.catalog.gpus import gpu_spec
from orchestrator.catalog.offers import PriceOffer
from orchestrator.catalog.price_checks import OfferBuilder
from orchestrator.errors import CatalogError

logger = logging.getLogger(__name__)

SOURCE = "aws-pricing-api"

# The Price List Query API is served from us-east-1 (and two other regions); its
# answers cover every region.
_PRICING_REGION = "us-east-1"

# Attributes of the one product per instance type that a plain Linux VM bills on:
# no SQL/Windows licence, shared tenancy, capacity in use (not an idle reservation),
# in an AWS Region (Local/Wavelength Zones have no spot market of their own).
_LINUX_ON_DEMAND = {
    "instanceFamily": "GPU instance",
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "locationType": "AWS Region",
}
_ONE_YEAR_NO_UPFRONT = {"LeaseContractLength": "1yr", "OfferingClass": "standard", "PurchaseOption": "No Upfront"}
_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
                  "InvalidClientTokenId", "AuthFailure", "ExpiredToken", "ExpiredTokenException"}


def fetch_offers(
    regions: list[str] | None,
    *,
    as_of: dt.date,
    endpoint_url: str | None = None,
    pricing_client: Any = None,
) -> list[PriceOffer]:
    """GPU offers in `regions` (every AWS Region when None).

    `endpoint_url` points both Pricing and EC2 elsewhere (a proxy, a moto server);
    `pricing_client` replaces the Pricing client outright (a test's stubbed client).
    """
    import boto3.session

    with _translate_errors():
        session = boto3.session.Session()  # credentials resolved now, not cached from an earlier call
        pricing = pricing_client or session.client(
            "pricing", region_name=_PRICING_REGION, endpoint_url=endpoint_url, config=_client_config()
        )
        builder = OfferBuilder("aws")
        by_region: dict[str, dict[str, PriceOffer]] = defaultdict(dict)
        for region in regions or [None]:
            for document in _linux_gpu_products(pricing, region):
                offer = _offer(document, as_of, builder)
                if offer is not None:
                    by_region[offer.region].setdefault(offer.instance_type, offer)
        priced = []
        for region, offers in sorted(by_region.items()):
            ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint_url, config=_client_config())
            spot = spot_prices(ec2, sorted(offers))
            priced += [builder.build(**{**offer.model_dump(exclude={"provider"}), "spot_per_hour": spot.get(name)})
                       for name, offer in offers.items()]
    # A type with no market at all here (capacity-block-only p5e, say) is no offer.
    return builder.finish([offer for offer in priced if offer is not None
                           and any(offer.price(m) is not None for m in ("on_demand", "spot", "reserved"))])


def spot_prices(ec2: Any, instance_types: list[str]) -> dict[str, float]:
    """Median over availability zones of each zone's current Linux spot price, per instance type.

    A history query starting now returns, per zone, the price in effect now (plus any
    change since); the latest record of each zone is its current price.
    """
    now = dt.datetime.now(dt.timezone.utc)
    latest: dict[tuple[str, str], tuple[dt.datetime, float]] = {}
    pages = ec2.get_paginator("describe_spot_price_history").paginate(
        InstanceTypes=instance_types, ProductDescriptions=["Linux/UNIX"], StartTime=now
    )
    for page in _once_each(pages, "NextToken", "DescribeSpotPriceHistory"):
        for record in page["SpotPriceHistory"]:
            if not record["ProductDescription"].startswith("Linux/UNIX"):
                continue
            key = (record["InstanceType"], record["AvailabilityZone"])
            if key not in latest or record["Timestamp"] > latest[key][0]:
                latest[key] = (record["Timestamp"], float(record["SpotPrice"]))
    per_type: dict[str, list[float]] = defaultdict(list)
    for (instance_type, _zone), (_when, price) in latest.items():
        per_type[instance_type].append(price)
    # A zone's NaN or non-positive price stands for the type (a median would hide it), so the checks see it.
    return {instance_type: next((p for p in prices if not (math.isfinite(p) and p > 0)), statistics.median(prices))
            for instance_type, prices in per_type.items()}


def _linux_gpu_products(pricing: Any, region: str | None) -> Iterator[dict]:
    """Pricing product documents (parsed) of Linux on-demand GPU instances in `region` (all when None)."""
    attributes = dict(_LINUX_ON_DEMAND, **({"regionCode": region} if region else {}))
    filters = [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in attributes.items()]
    pages = pricing.get_paginator("get_products").paginate(
        ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1"
    )
    for page in _once_each(pages, "NextToken", "GetProducts"):
        for document in page["PriceList"]:
            yield json.loads(document)


def _once_each(pages: Iterator[dict], token: str, operation: str) -> Iterator[dict]:
    """The pages, stopping with a CatalogError at a page token seen before (paging that loops on itself).

    botocore itself only notices a token repeated twice in a row.
    """
    seen: set[str] = set()
    for page in pages:
        yield page
        if (next_token := page.get(token)) is not None:
            if next_token in seen:
                raise CatalogError(f"aws: {operation} paging loops (page token {next_token[:40]!r} came back); "
                                   "the existing catalog is left as it was. To fix: retry later.")
            seen.add(next_token)


def _offer(document: dict, as_of: dt.date, builder: OfferBuilder) -> PriceOffer | None:
    """One Pricing product as an offer (spot comes later), or None for a GPU gpufleet does not serve on."""
    attributes = document["product"]["attributes"]
    instance_type = attributes["instanceType"]
    gpu = aws_instance_gpu(instance_type)
    if gpu is None:
        logger.debug("skipping %s: its GPU is not one gpufleet serves on", instance_type)
        return None
    terms = document.get("terms", {})
    reserved = [
        term for term in terms.get("Reserved", {}).values()
        if all(term.get("termAttributes", {}).get(k) == v for k, v in _ONE_YEAR_NO_UPFRONT.items())
    ]
    try:
        return builder.build(
            region=attributes["regionCode"],
            instance_type=instance_type,
            gpu=gpu,
            gpu_count=int(attributes["gpu"]),
            gpu_memory_gb=gpu_spec(gpu).memory_gb,
            vcpus=float(attributes["vcpu"]),
            memory_gb=float(attributes["memory"].split()[0].replace(",", "")),
            on_demand_per_hour=_hourly(terms.get("OnDemand", {}).values()),
            reserved_per_hour=_hourly(reserved),
            as_of=as_of,
            source=SOURCE,
        )
    except (KeyError, ValueError) as exc:
        logger.warning("skipping %s in %s: unexpected Pricing attributes (%s)",
                       instance_type, attributes.get("regionCode"), exc)
        return None


def _hourly(terms: Any) -> float | None:
    """The USD per hour of the first term: its hourly price dimensions summed; None if absent or zero.

    A zero hourly rate marks a type with no such market (e.g. capacity-block-only
    p5e), not a free GPU.
    """
    for term in terms:
        rate = sum(
            float(dimension["pricePerUnit"]["USD"])
            for dimension in term["priceDimensions"].values()
            if dimension["unit"] == "Hrs"
        )
        return rate or None
    return None


def _client_config() -> Any:
    """Standard retry mode: throttling and 5xx are retried with jittered exponential backoff."""
    from botocore.config import Config

    return Config(retries={"mode": "standard", "total_max_attempts": 6}, connect_timeout=10, read_timeout=60)


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Turn botocore failures (after its retries) into CatalogErrors that say what to do."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    permissions = "pricing:GetProducts and ec2:DescribeSpotPriceHistory"
    try:
        yield
    except NoCredentialsError as exc:
        raise CatalogError(
            "aws: no AWS credentials found for the price refresh. To fix: set AWS_PROFILE "
            f"(or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) to a principal allowed {permissions}."
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        if code in _ACCESS_DENIED:
            fix = f"grant the AWS principal {permissions}, or use another AWS_PROFILE"
        else:
            fix = "retry later; AWS already retried throttling and server errors"
        raise CatalogError(
            f"aws: {exc.operation_name} failed: {code}: {message}. To fix: {fix}."
        ) from exc
    except BotoCoreError as exc:
        raise CatalogError(
            f"aws: price refresh failed: {exc}. To fix: check network access to AWS "
            "(or GPUFLEET_AWS_ENDPOINT_URL, if set)."
        ) from exc
