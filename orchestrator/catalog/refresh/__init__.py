"""`orchestrator catalog refresh`: today's GPU prices from a cloud's own price API.

One module per provider (`aws`, `gcp`, `azure`) turns that provider's price API into
`PriceOffer`s through its official client (httpx for Azure, which has none). This module
picks the module, resolves endpoints (argument, then `GPUFLEET_*` variable, then the
public endpoint), and writes `<catalog_dir>/<provider>.csv` atomically; that file then
wins over the bundled copy of the provider. Provider modules import their SDK inside
functions, so importing this package stays cheap for every other command.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.catalog.offers import CLOUD_PROVIDERS, PriceOffer
from orchestrator.catalog.store import read_offers, write_offers
from orchestrator.errors import CatalogError, InputError

logger = logging.getLogger(__name__)

# Memory of one GPU in GB, keyed by canonical name. No cloud's price API states it
# (AWS Pricing's `gpuMemory` is a per-instance total in free text), so every refresher
# takes it from here and the same GPU reads the same on every cloud. Nominal sizes as
# NVIDIA/AMD state them (H100 "80GB").
GPU_MEMORY_GB: dict[str, float] = {
    "T4": 16, "L4": 24, "A10": 24, "A10G": 24, "L40": 48, "L40S": 48,
    "V100": 16, "V100-32GB": 32, "A100": 40, "A100-80GB": 80,
    "H100": 80, "H200": 141, "B200": 180, "MI300X": 192,
}


class RefreshEndpoints(BaseSettings):
    """Endpoint overrides from `GPUFLEET_*` variables: a proxy, a mirror, or a test's fakes."""

    model_config = SettingsConfigDict(env_prefix="GPUFLEET_", extra="ignore")

    aws_endpoint_url: str | None = Field(
        None, description="One endpoint for both AWS Pricing and EC2 (e.g. a moto server). "
        "Unset: AWS's public endpoints.")
    gcp_billing_endpoint: str | None = Field(
        None, description="Cloud Billing Catalog API endpoint; an http:// URL is called "
        "without credentials. Unset: cloudbilling.googleapis.com.")
    gcp_api_key: SecretStr | None = Field(
        None, description="API key for the Cloud Billing Catalog API. Unset: Application "
        "Default Credentials.")
    azure_prices_url: str | None = Field(
        None, description="Azure Retail Prices API URL. Unset: "
        "https://prices.azure.com/api/retail/prices.")

    def for_provider(self, provider: str) -> dict[str, Any]:
        """The keyword arguments of `<provider>.fetch_offers` these variables set."""
        key = self.gcp_api_key.get_secret_value() if self.gcp_api_key else None
        candidates = {
            "aws": {"endpoint_url": self.aws_endpoint_url},
            "gcp": {"api_endpoint": self.gcp_billing_endpoint, "api_key": key},
            "azure": {"base_url": self.azure_prices_url},
        }[provider]
        return {name: value for name, value in candidates.items() if value is not None}


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh wrote, for the CLI to report."""

    provider: str
    rows: int  # offers fetched by this refresh
    kept: int  # rows of regions not refreshed this time, carried over from the previous file
    as_of: dt.date
    path: Path
    source: str


def refresh_catalog(
    provider: str,
    regions: list[str] | None,
    *,
    catalog_dir: Path,
    **client_overrides: Any,
) -> RefreshResult:
    """Fetch `provider`'s GPU prices (all regions when `regions` is empty) and write its catalog.

    `client_overrides` go to the provider's `fetch_offers` and win over `GPUFLEET_*`
    variables: `endpoint_url`/`pricing_client` (aws), `api_endpoint`/`api_key`/
    `credentials` (gcp), `base_url`/`client` (azure). A refresh limited to some regions
    keeps the other regions' rows of the previous refreshed file, with their own as_of.
    """
    if provider not in CLOUD_PROVIDERS:
        raise InputError(
            f"unknown provider {provider!r} for a price refresh; allowed: "
            f"{', '.join(CLOUD_PROVIDERS)}. To fix: pass one of those."
        )
    wanted = sorted(set(regions)) if regions else None
    module = importlib.import_module(f"{__name__}.{provider}")
    as_of = dt.datetime.now(dt.timezone.utc).date()
    overrides = {**RefreshEndpoints().for_provider(provider), **client_overrides}
    offers = module.fetch_offers(wanted, as_of=as_of, **overrides)
    if not offers:
        where = ", ".join(wanted) if wanted else "any region"
        raise CatalogError(
            f"{provider}: the price API returned no GPU offers for {where}; the existing "
            f"catalog is left as it was. To fix: check the region names "
            f"(e.g. us-east-1, us-central1, eastus) and that the endpoint is the real API."
        )
    path = catalog_dir / f"{provider}.csv"
    kept = _rows_of_other_regions(path, wanted)
    rows = sorted([*offers, *kept], key=lambda o: (o.region, o.instance_type, o.zone or ""))
    write_offers(path, rows)
    logger.info("refreshed %s prices: %d offers, %d kept, into %s", provider, len(offers), len(kept), path)
    return RefreshResult(provider, len(offers), len(kept), as_of, path, module.SOURCE)


def _rows_of_other_regions(path: Path, refreshed: list[str] | None) -> list[PriceOffer]:
    """Rows of the previous refreshed file outside `refreshed`, so a one-region refresh loses nothing."""
    if refreshed is None or not path.exists():
        return []
    try:
        previous = read_offers(path)
    except (OSError, ValueError, csv.Error) as exc:
        logger.warning("cannot read the previous catalog %s (%s); replacing it whole", path, exc)
        return []
    return [offer for offer in previous if offer.region not in refreshed]
