"""The price catalog a planner and a user query: bundled offers, overridden per provider
by refreshed ones.

A provider's refreshed file (`<catalog_dir>/<provider>.csv`) replaces that provider's
bundled rows wholesale. Each row carries its as-of date and source. A refreshed file that
fails the checks a refresh applies (`store.read_offers`, `price_checks`) is ignored with a
warning, and the provider's bundled rows are used: one bad file must not stop every
command that reads prices.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from orchestrator.catalog.offers import CLOUD_PROVIDERS, PriceOffer
from orchestrator.catalog.price_checks import PriceBounds
from orchestrator.catalog.store import read_offers
from orchestrator.errors import CatalogError

logger = logging.getLogger(__name__)

BUNDLED_PRICES = Path(__file__).parent / "data" / "prices.csv"
OUTLIER_FACTOR = 2.0  # an instance type priced at twice its cheapest region


@dataclass(frozen=True)
class CatalogSource:
    """Where one provider's rows came from."""

    provider: str
    rows: int
    as_of: dt.date | None
    source: str
    refreshed: bool
    problem: str | None = None  # why a refreshed file was ignored (its bundled rows are used)


@dataclass(frozen=True)
class PriceCatalog:
    """All offers gpufleet knows, with the provenance of each provider's rows."""

    offers: tuple[PriceOffer, ...]
    sources: tuple[CatalogSource, ...] = field(default=())

    def find(
        self,
        *,
        provider: str | None = None,
        gpu: str | None = None,
        region: str | None = None,
        instance_type: str | None = None,
    ) -> list[PriceOffer]:
        """Offers matching every given filter (case-insensitive; region also matches a zone)."""

        def match(value: str | None, wanted: str | None) -> bool:
            return wanted is None or (value or "").lower() == wanted.lower()

        return [
            o for o in self.offers
            if match(o.provider, provider) and match(o.gpu, gpu)
            and match(o.instance_type, instance_type)
            and (region is None or match(o.region, region) or match(o.zone, region))
        ]

    def offer(self, provider: str, instance_type: str, region: str, zone: str | None = None) -> PriceOffer | None:
        """The offer for an instance type in a region (or a zone); the cheapest zone if none given."""
        place = zone or region
        rows = [o for o in self._by_type.get((provider, instance_type), ()) if place in (o.region, o.zone)]
        priced = [o for o in rows if o.on_demand_per_hour is not None] or rows
        return min(priced, key=lambda o: o.on_demand_per_hour or float("inf"), default=None)

    @cached_property
    def _by_type(self) -> dict[tuple[str, str], list[PriceOffer]]:
        by_type: dict[tuple[str, str], list[PriceOffer]] = defaultdict(list)
        for o in self.offers:
            by_type[(o.provider, o.instance_type)].append(o)
        return by_type

    @cached_property
    def _index(self) -> dict[str, dict[str, set[str]]]:
        index: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for o in self.offers:
            index[o.provider]["instance_types"].add(o.instance_type)
            index[o.provider]["regions"].add(o.region)
            if o.zone:
                index[o.provider]["zones"].add(o.zone)
        return index

    def instance_types(self, provider: str) -> set[str]:
        return self._index[provider]["instance_types"]

    def regions(self, provider: str) -> set[str]:
        return self._index[provider]["regions"]

    def zones(self, provider: str) -> set[str]:
        return self._index[provider]["zones"]

    @cached_property
    def _cheapest_on_demand(self) -> dict[tuple[str, str], float]:
        prices: dict[tuple[str, str], list[float]] = defaultdict(list)
        for o in self.offers:
            if o.on_demand_per_hour:
                prices[(o.provider, o.instance_type)].append(o.on_demand_per_hour)
        return {key: min(values) for key, values in prices.items()}

    def anomalies(self, offer: PriceOffer) -> list[str]:
        """Row flags plus price outliers against the same instance type in its cheapest region."""
        flags = list(offer.anomalies)
        cheapest = self._cheapest_on_demand.get((offer.provider, offer.instance_type))
        if offer.on_demand_per_hour and cheapest:
            ratio = offer.on_demand_per_hour / cheapest
            if ratio >= OUTLIER_FACTOR:
                flags.append(f"on-demand {ratio:.1f}x cheapest region")
        return flags


def _describe(provider: str, offers: list[PriceOffer], refreshed: bool, problem: str | None) -> CatalogSource:
    return CatalogSource(
        provider=provider,
        rows=len(offers),
        as_of=max((o.as_of for o in offers), default=None),
        source="; ".join(sorted({o.source for o in offers})),
        refreshed=refreshed,
        problem=problem,
    )


def read_refreshed(path: Path, provider: str, bounds: PriceBounds) -> list[PriceOffer]:
    """A refreshed file's offers, checked as a refresh checks them; CatalogError naming the first bad row."""
    offers = read_offers(path)
    for line, offer in enumerate(offers, start=2):  # line 1 is the header
        if offer.provider != provider:
            raise CatalogError(f"{path}:{line}: a row of provider {offer.provider!r} in the {provider} catalog")
        if anomalies := bounds.check(offer):
            raise CatalogError(f"{path}:{line}: {anomalies[0]}")
    return offers


def load_price_catalog(catalog_dir: Path | None = None, bundled: Path = BUNDLED_PRICES) -> PriceCatalog:
    """The bundled catalog with each provider replaced by `<catalog_dir>/<provider>.csv` if refreshed
    (and valid; an invalid one is ignored with a warning)."""
    bundled_offers = read_offers(bundled)
    bounds = PriceBounds.of(bundled_offers)
    by_provider: dict[str, list[PriceOffer]] = defaultdict(list)
    for offer in bundled_offers:
        by_provider[offer.provider].append(offer)
    refreshed, problems = set(), {}
    for provider in CLOUD_PROVIDERS:
        path = catalog_dir / f"{provider}.csv" if catalog_dir else None
        if path is None or not path.exists():
            continue
        try:
            by_provider[provider] = read_refreshed(path, provider, bounds)
            refreshed.add(provider)
        except CatalogError as exc:
            problems[provider] = str(exc)
            logger.warning("warning: ignoring the refreshed %s prices, using the bundled ones: %s. To fix: run "
                           "`orchestrator catalog refresh --provider %s` again, or delete %s",
                           provider, exc, provider, path)
    return PriceCatalog(
        offers=tuple(o for p in sorted(by_provider) for o in by_provider[p]),
        sources=tuple(_describe(p, by_provider[p], p in refreshed, problems.get(p)) for p in sorted(by_provider)),
    )
