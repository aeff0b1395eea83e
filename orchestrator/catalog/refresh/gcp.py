"""GCP GPU VM prices from the Cloud Billing Catalog API, composed per machine type.

GCP does not price a GPU VM as one SKU: an a3-highgpu-8g bills its host (vCPUs x the
A3 core rate + GiB x the A3 RAM rate) plus 8 H100 accelerators at the per-GPU rate,
each rate a SKU of the Compute Engine service with the regions it applies in. This
module reads those rates (on-demand and Spot/"Preemptible") and composes one row per
(machine type, region) where every part is priced. Rows say where the parts are
priced, not that the machine type is offered there (that is the Compute API's
`machineTypes.list`, per zone). Committed-use discounts are resource-based commitments,
not a per-VM price, so `reserved_per_hour` stays empty.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.catalog.offers import PriceOffer
from orchestrator.catalog.price_checks import OfferBuilder
from orchestrator.errors import CatalogError

logger = logging.getLogger(__name__)

SOURCE = "gcp-cloud-billing-catalog"
COMPUTE_ENGINE = "services/6F81-5844-456A"


class _Accelerator(NamedTuple):
    gpu: str  # canonical name
    sku_names: tuple[str, ...]  # how GPU SKU descriptions spell it (seen spelled several ways)


# Keyed by GCP accelerator type. a3-megagpu's H100 "Mega" (the same H100, more network)
# bills apart from a3-highgpu's H100.
_ACCELERATORS = {
    "nvidia-tesla-a100": _Accelerator("A100", ("Nvidia Tesla A100 GPU",)),
    "nvidia-a100-80gb": _Accelerator("A100-80GB", ("Nvidia Tesla A100 80GB GPU", "Nvidia A100 80GB GPU")),
    "nvidia-h100-80gb": _Accelerator("H100", ("Nvidia H100 80GB GPU",)),
    "nvidia-h100-mega-80gb": _Accelerator(
        "H100", ("Nvidia H100 80GB Mega GPU", "Nvidia H100 Mega 80GB GPU", "Nvidia H100 80GB Plus GPU")),
    "nvidia-h200-141gb": _Accelerator("H200", ("H200 141GB GPU",)),
    "nvidia-b200": _Accelerator("B200", ("Nvidia B200 (1 gpu slice)",)),
    "nvidia-l4": _Accelerator("L4", ("Nvidia L4 GPU",)),
}

# Machine family -> how its core and RAM SKU descriptions name it
# ("A3 Instance Core running in Americas", "Spot Preemptible A3 Instance Ram running in ...").
_HOST_FAMILIES = {"a2": "A2 Instance", "a3": "A3 Instance", "a4": "A4 Instance", "g2": "G2 Instance"}

# SKUs of other purchase models that share the words above.
_EXCLUDED_WORDS = ("reserved", "commitment", "sole tenancy", "custom", "premium", "dws", "flex", "calendar")


class _Machine(NamedTuple):
    vcpus: int
    memory_gib: float
    accelerator: str
    gpu_count: int


# Machine types with GPUs built in (N1 VMs take any number of attachable GPUs and have no
# fixed shape). Shapes from https://cloud.google.com/compute/docs/accelerator-optimized-machines
# and https://cloud.google.com/compute/docs/gpus (A2, A3, A4, G2 series tables).
_MACHINES = {
    "a2-highgpu-1g": _Machine(12, 85, "nvidia-tesla-a100", 1),
    "a2-highgpu-2g": _Machine(24, 170, "nvidia-tesla-a100", 2),
    "a2-highgpu-4g": _Machine(48, 340, "nvidia-tesla-a100", 4),
    "a2-highgpu-8g": _Machine(96, 680, "nvidia-tesla-a100", 8),
    "a2-megagpu-16g": _Machine(96, 1360, "nvidia-tesla-a100", 16),
    "a2-ultragpu-1g": _Machine(12, 170, "nvidia-a100-80gb", 1),
    "a2-ultragpu-2g": _Machine(24, 340, "nvidia-a100-80gb", 2),
    "a2-ultragpu-4g": _Machine(48, 680, "nvidia-a100-80gb", 4),
    "a2-ultragpu-8g": _Machine(96, 1360, "nvidia-a100-80gb", 8),
    "a3-highgpu-1g": _Machine(26, 234, "nvidia-h100-80gb", 1),
    "a3-highgpu-2g": _Machine(52, 468, "nvidia-h100-80gb", 2),
    "a3-highgpu-4g": _Machine(104, 936, "nvidia-h100-80gb", 4),
    "a3-highgpu-8g": _Machine(208, 1872, "nvidia-h100-80gb", 8),
    "a3-edgegpu-8g": _Machine(208, 1872, "nvidia-h100-80gb", 8),
    "a3-megagpu-8g": _Machine(208, 1872, "nvidia-h100-mega-80gb", 8),
    "a3-ultragpu-8g": _Machine(224, 2952, "nvidia-h200-141gb", 8),
    "a4-highgpu-8g": _Machine(224, 3968, "nvidia-b200", 8),
    "g2-standard-4": _Machine(4, 16, "nvidia-l4", 1),
    "g2-standard-8": _Machine(8, 32, "nvidia-l4", 1),
    "g2-standard-12": _Machine(12, 48, "nvidia-l4", 1),
    "g2-standard-16": _Machine(16, 64, "nvidia-l4", 1),
    "g2-standard-24": _Machine(24, 96, "nvidia-l4", 2),
    "g2-standard-32": _Machine(32, 128, "nvidia-l4", 1),
    "g2-standard-48": _Machine(48, 192, "nvidia-l4", 4),
    "g2-standard-96": _Machine(96, 384, "nvidia-l4", 8),
}

_MARKETS = {"OnDemand": "on_demand_per_hour", "Preemptible": "spot_per_hour"}  # SKU usage type -> offer field
_USAGE_UNITS = {"GPU": "h", "CPU": "h", "RAM": "GiBy.h"}  # the unit each rate must be in

# Rates keyed by (component, region, usage type); a component is an accelerator type,
# or "<family> core" / "<family> ram".
_Rates = dict[tuple[str, str, str], float]


def fetch_offers(
    regions: list[str] | None,
    *,
    as_of: dt.date,
    api_endpoint: str | None = None,
    api_key: str | None = None,
    credentials: Any = None,
) -> list[PriceOffer]:
    """GPU VM offers in `regions` (every region with priced parts when None).

    Credentials: `api_key` when given, else `credentials`, else Application Default
    Credentials; an http:// `api_endpoint` (a local fake or proxy) gets none, so that no
    Google token travels in clear text.
    """
    with _translate_errors():
        client = _client(api_endpoint, api_key, credentials)
        pager = client.list_skus(request={"parent": COMPUTE_ENGINE, "page_size": 5000}, retry=_retry())
        builder = OfferBuilder("gcp")
        rates = _rates(_once_each(pager.pages), regions, builder)
    priced_regions = sorted({region for _component, region, _usage in rates})
    offers = []
    for machine_type, machine in _MACHINES.items():
        gpu = _ACCELERATORS[machine.accelerator].gpu
        for region in priced_regions:
            prices = {field: _compose(rates, machine_type, region, usage) for usage, field in _MARKETS.items()}
            if all(price is None for price in prices.values()):
                continue
            offers.append(builder.build(
                region=region, instance_type=machine_type, gpu=gpu,
                gpu_count=machine.gpu_count, gpu_memory_gb=gpu_spec(gpu).memory_gb,
                vcpus=machine.vcpus, memory_gb=machine.memory_gib, as_of=as_of, source=SOURCE, **prices,
            ))
    return builder.finish([offer for offer in offers if offer is not None])


def _once_each(pages: Iterable[Any]) -> Iterator[Any]:
    """The SKUs of every page, stopping with a CatalogError at a page token seen before (paging that loops)."""
    seen: set[str] = set()
    for page in pages:
        yield from page.skus
        if token := page.next_page_token:
            if token in seen:
                raise CatalogError(f"gcp: SKU paging loops (page token {token[:40]!r} came back); the existing "
                                   "catalog is left as it was. To fix: retry later.")
            seen.add(token)


def _rates(skus: Iterable[Any], regions: list[str] | None, builder: OfferBuilder) -> _Rates:
    """Per-GPU-hour, per-vCPU-hour and per-GiB-hour rates of the SKUs that price GPU VMs
    (a rate at or below zero is an anomaly: summed into a VM's price it would hide)."""
    rates: _Rates = {}
    for sku in skus:
        usage = sku.category.usage_type
        component = _component(sku.description, sku.category.resource_group)
        if usage not in _MARKETS or component is None or not sku.pricing_info:
            continue
        expression = sku.pricing_info[0].pricing_expression
        if expression.usage_unit != _USAGE_UNITS[sku.category.resource_group] or not expression.tiered_rates:
            logger.warning("skipping SKU %r: priced per %r", sku.description, expression.usage_unit)
            continue
        price = expression.tiered_rates[0].unit_price
        rate = price.units + price.nanos / 1e9
        if rate <= 0:
            builder.reject(",".join(sku.service_regions), sku.description, "unit_price", rate, "a rate must be above 0")
            continue
        for region in sku.service_regions:
            if regions is not None and region not in regions:
                continue
            known = rates.setdefault((component, region, usage), rate)
            if known != rate:
                logger.warning("two %s SKUs price %s in %s: %s and %s; keeping the first",
                               usage, component, region, known, rate)
    return rates


def _component(description: str, resource_group: str) -> str | None:
    """Which part of a GPU VM a SKU prices, or None for SKUs no GPU VM here bills on."""
    if any(word in description.lower() for word in _EXCLUDED_WORDS):
        return None
    if resource_group == "GPU":
        return next(
            (name for name, accelerator in _ACCELERATORS.items()
             if any(sku_name in description for sku_name in accelerator.sku_names)),
            None,
        )
    if resource_group in ("CPU", "RAM"):
        part = "core" if resource_group == "CPU" else "ram"
        return next((f"{family} {part}" for family, name in _HOST_FAMILIES.items() if name in description), None)
    return None


def _compose(rates: _Rates, machine_type: str, region: str, usage: str) -> float | None:
    """Host vCPUs x core rate + host GiB x RAM rate + GPUs x GPU rate; None if a part is unpriced."""
    machine = _MACHINES[machine_type]
    family = machine_type.split("-", 1)[0]
    core = rates.get((f"{family} core", region, usage))
    ram = rates.get((f"{family} ram", region, usage))
    gpu = rates.get((machine.accelerator, region, usage))
    if core is None or ram is None or gpu is None:
        return None
    return round(machine.vcpus * core + machine.memory_gib * ram + machine.gpu_count * gpu, 6)


def _client(api_endpoint: str | None, api_key: str | None, credentials: Any) -> Any:
    """The official Cloud Catalog client over REST (no gRPC channel to set up; works through proxies)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import billing_v1

    options: dict[str, str] = {}
    if api_endpoint:
        options["api_endpoint"] = api_endpoint
    if api_key:
        options["api_key"] = api_key
        credentials = None
    elif credentials is None and api_endpoint and api_endpoint.startswith("http://"):
        credentials = AnonymousCredentials()
    return billing_v1.CloudCatalogClient(transport="rest", credentials=credentials, client_options=options)


def _retry() -> Any:
    """Retry 429/5xx and dropped connections with jittered exponential backoff, a minute at most."""
    from google.api_core.retry import Retry, if_transient_error

    return Retry(predicate=if_transient_error, initial=1.0, maximum=16.0, multiplier=2.0, timeout=60.0)


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Turn google-api-core and google-auth failures into CatalogErrors that say what to do."""
    from google.api_core import exceptions as api_errors
    from google.auth import exceptions as auth_errors

    enable = ("enable the Cloud Billing API (cloudbilling.googleapis.com) in the project of "
              "your credentials or API key")
    try:
        yield
    except auth_errors.DefaultCredentialsError as exc:
        raise CatalogError(
            "gcp: no Google credentials for the Cloud Billing Catalog API. To fix: run "
            "`gcloud auth application-default login`, or set GPUFLEET_GCP_API_KEY to an API "
            f"key; and {enable}."
        ) from exc
    except (api_errors.Forbidden, api_errors.Unauthorized) as exc:  # 403/401, PERMISSION_DENIED/UNAUTHENTICATED
        raise CatalogError(
            f"gcp: the Cloud Billing Catalog API refused the request: {exc.message}. To fix: {enable}, "
            "or use other credentials."
        ) from exc
    except (api_errors.GoogleAPIError, auth_errors.GoogleAuthError) as exc:
        raise CatalogError(
            f"gcp: listing Compute Engine SKUs failed: {exc}. To fix: retry later; check network "
            "access to cloudbilling.googleapis.com (or GPUFLEET_GCP_BILLING_ENDPOINT, if set)."
        ) from exc
