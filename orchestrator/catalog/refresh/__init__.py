"""`orchestrator catalog refresh`: today's GPU prices from a cloud's own price API.

One module per provider (`aws`, `gcp`, `azure`) turns that provider's price API into
`PriceOffer`s through its official client (httpx for Azure, which has none). This module
picks the module, resolves endpoints (argument, then `GPUFLEET_*` variable, then the
public endpoint), runs the fetch under an overall deadline, checks the answer
(`price_checks`: any doubtful price rejects the whole answer, rows outside the requested
regions are ignored), and writes `<catalog_dir>/<provider>.csv` atomically; that file then
wins over the bundled copy of the provider. Provider modules import their SDK inside
functions, so importing this package stays cheap for every other command.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.catalog.offers import CLOUD_PROVIDERS, PriceOffer
from orchestrator.catalog.price_catalog import BUNDLED_PRICES, load_price_catalog
from orchestrator.catalog.price_checks import PriceAnomaly, PriceBounds, PricesRejected, out_of_scope
from orchestrator.catalog.store import read_offers, write_offers
from orchestrator.errors import CatalogError, InputError
from orchestrator.settings import Settings, load_settings

logger = logging.getLogger(__name__)

DEADLINE_S = 300.0  # a whole cloud's GPU prices take well under a minute from the real APIs


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
    ignored: tuple[PriceAnomaly, ...] = ()  # rows of the answer outside the requested regions


def refresh_catalog(
    provider: str,
    regions: list[str] | None,
    *,
    catalog_dir: Path,
    deadline_s: float = DEADLINE_S,
    **client_overrides: Any,
) -> RefreshResult:
    """Fetch `provider`'s GPU prices (all regions when `regions` is empty) and write its catalog.

    Only the requested scope is replaced: a refresh of some regions replaces the provider's
    rows in those regions and keeps its other rows (each row keeps its own as-of date); a
    refresh of all regions replaces them all. The previous catalog stays as it was when the
    fetch fails, overruns `deadline_s`, or answers any price the checks doubt
    (`PricesRejected` lists them). `client_overrides` go to the provider's `fetch_offers` and
    win over `GPUFLEET_*` variables: `endpoint_url`/`pricing_client` (aws), `api_endpoint`/
    `api_key`/`credentials` (gcp), `base_url`/`client` (azure).
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
    answer = _within(deadline_s, provider, lambda: module.fetch_offers(wanted, as_of=as_of, **overrides))
    ignored = out_of_scope(answer, wanted)
    offers = [o for o in answer if not wanted or o.region in wanted]
    bounds = PriceBounds.of(read_offers(BUNDLED_PRICES))
    if anomalies := [a for offer in offers for a in bounds.check(offer)]:
        raise PricesRejected(provider, anomalies)
    if not offers:
        where = ", ".join(wanted) if wanted else "any region"
        raise CatalogError(
            f"{provider}: the price API returned no GPU offers for {where}; the existing "
            f"catalog is left as it was. To fix: check the region names "
            f"(e.g. us-east-1, us-central1, eastus) and that the endpoint is the real API."
        )
    kept = [o for o in load_price_catalog(catalog_dir).find(provider=provider) if wanted and o.region not in wanted]
    path = catalog_dir / f"{provider}.csv"
    write_offers(path, sorted(kept + offers, key=lambda o: (o.region, o.instance_type, o.zone or "")))
    logger.info("refreshed %s prices: %d offers as of %s into %s (%d rows of other regions kept)",
                provider, len(offers), as_of, path, len(kept))
    return RefreshResult(provider, len(offers), as_of, path, module.SOURCE, tuple(ignored))


def _within(deadline_s: float, provider: str, fetch: Callable[[], list[PriceOffer]]) -> list[PriceOffer]:
    """`fetch()`'s answer, or CatalogError once `deadline_s` has passed.

    The fetch runs in a daemon thread: an SDK reading a body that drips a byte at a time
    never hits its own per-read timeout, and the command must not wait for it (nor its exit).
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(fetch())
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=run, name=f"refresh-{provider}", daemon=True)
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        raise CatalogError(
            f"{provider}: the price API did not answer in full within {deadline_s:g}s; the existing catalog is "
            "left as it was. To fix: retry later, or allow longer with --deadline-s."
        )
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]
