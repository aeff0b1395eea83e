"""`orchestrator catalog refresh`: today's GPU prices from a cloud's own price API.

One module per provider (`aws`, `gcp`, `azure`) turns that provider's price API into
`PriceOffer`s through its official client (httpx for Azure, which has none). This module
picks the module, resolves endpoints (argument, then `GPUFLEET_*` variable, then the
public endpoint), and writes `<catalog_dir>/<provider>.csv` atomically; that file then
wins over the bundled copy of the provider. Provider modules import their SDK inside
functions, so importing this package stays cheap for every other command.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.catalog.offers import CLOUD_PROVIDERS
from orchestrator.catalog.store import write_offers
from orchestrator.errors import CatalogError, InputError
from orchestrator.settings import Settings, load_settings

logger = logging.getLogger(__name__)


def endpoint_overrides(settings: Settings, provider: str) -> dict[str, Any]:
    """The keyword arguments of `<provider>.fetch_offers` that `GPUFLEET_*` settings set."""
    key = settings.gcp_api_key.get_secret_value() if settings.gcp_api_key else None
    candidates = {
        "aws": {"endpoint_url": settings.aws_endpoint_url},
        "gcp": {"api_endpoint": settings.gcp_billing_endpoint, "api_key": key},
        "azure": {"base_url": settings.azure_prices_url},
    }[provider]
    return {name: value for name, value in candidates.items() if value is not None}


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh wrote, for the CLI to report."""

    provider: str
    rows: int
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

    The file replaces the provider's previous catalog whole, so a refresh limited to some
    regions leaves a catalog of just those regions (never rows of two dates side by side).
    `client_overrides` go to the provider's `fetch_offers` and win over `GPUFLEET_*`
    variables: `endpoint_url`/`pricing_client` (aws), `api_endpoint`/`api_key`/
    `credentials` (gcp), `base_url`/`client` (azure).
    """
    if provider not in CLOUD_PROVIDERS:
        raise InputError(
            f"unknown provider {provider!r} for a price refresh; allowed: "
            f"{', '.join(CLOUD_PROVIDERS)}. To fix: pass one of those."
        )
    wanted = sorted(set(regions)) if regions else None
    module = importlib.import_module(f"{__name__}.{provider}")
    as_of = dt.datetime.now(dt.timezone.utc).date()
    overrides = {**endpoint_overrides(load_settings(), provider), **client_overrides}
    offers = module.fetch_offers(wanted, as_of=as_of, **overrides)
    if not offers:
        where = ", ".join(wanted) if wanted else "any region"
        raise CatalogError(
            f"{provider}: the price API returned no GPU offers for {where}; the existing "
            f"catalog is left as it was. To fix: check the region names "
            f"(e.g. us-east-1, us-central1, eastus) and that the endpoint is the real API."
        )
    path = catalog_dir / f"{provider}.csv"
    write_offers(path, sorted(offers, key=lambda o: (o.region, o.instance_type, o.zone or "")))
    logger.info("refreshed %s prices: %d offers as of %s into %s", provider, len(offers), as_of, path)
    return RefreshResult(provider, len(offers), as_of, path, module.SOURCE)
