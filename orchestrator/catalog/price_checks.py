"""Whether price rows can be trusted: before a refresh persists them, and when a refreshed file is read.

A price API is input like a spec: it can answer NaN, a negative or zero price, 1e-300 or
1e308, or rows for regions nobody asked for. One such row, once stored, makes every plan
place replicas at $0.00/h (or fail), so a refresh keeps the old catalog on any doubt and
says why, row by row. Each price (USD per instance-hour, compared per GPU-hour) must be:

- a finite number above zero (the `PriceOffer` model itself refuses anything else);
- between `FLOOR_PER_GPU_HOUR` and `CEILING_PER_GPU_HOUR` (no GPU rents for under a cent
  or over $100 an hour);
- within `REFERENCE_FACTOR` of the bundled catalog's median for the same provider, GPU and
  market, or, where that provider has none, of the GPU's median on that market over every
  provider. Bundled rows lie at most ~6x from those medians (host sizes differ), so 10x is
  beyond any real price.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from orchestrator.catalog.offers import PRICE_FIELDS, PriceOffer
from orchestrator.errors import CatalogError

FLOOR_PER_GPU_HOUR = 0.01
CEILING_PER_GPU_HOUR = 100.0
REFERENCE_FACTOR = 10.0
_SHOWN = 10  # anomalies listed in an error message (all of them in --format json)


@dataclass(frozen=True)
class PriceAnomaly:
    """One value of one row that cannot be trusted, and why."""

    provider: str
    region: str
    instance_type: str
    field: str
    value: str
    problem: str

    def __str__(self) -> str:
        return f"{self.provider} {self.region} {self.instance_type}: {self.field} = {self.value}: {self.problem}"


class PricesRejected(CatalogError):
    """A price API's answer failed the checks; nothing was written."""

    def __init__(self, provider: str, anomalies: Sequence[PriceAnomaly]) -> None:
        self.provider = provider
        self.anomalies = tuple(anomalies)
        lines = [str(a) for a in self.anomalies[:_SHOWN]]
        if len(self.anomalies) > _SHOWN:
            lines.append(f"... and {len(self.anomalies) - _SHOWN} more (--format json lists all)")
        super().__init__(
            f"{provider}: the price API answered {len(self.anomalies)} price(s) that cannot be right; the existing "
            "catalog is left as it was:\n  " + "\n  ".join(lines) + "\nTo fix: retry later; if the answer persists, "
            "check that the endpoint is the provider's real price API (GPUFLEET_* endpoint variables)."
        )


class OfferBuilder:
    """Offers from a price API's answer: each row the `PriceOffer` model refuses becomes an anomaly, and
    `finish` raises them all at once (so one report lists every bad row, not the first)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.anomalies: list[PriceAnomaly] = []

    def build(self, **fields: object) -> PriceOffer | None:
        """The offer, or None (and anomalies recorded) when a field is not a valid value."""
        try:
            return PriceOffer.model_validate({"provider": self.provider, **fields})
        except ValidationError as exc:
            where = (str(fields.get("region")), str(fields.get("instance_type")))
            self.anomalies += [PriceAnomaly(self.provider, *where, ".".join(map(str, e["loc"])),
                                            _shown(e.get("input")), e["msg"]) for e in exc.errors()]
            return None

    def reject(self, region: str, instance_type: str, field: str, value: object, problem: str) -> None:
        """Record an anomaly found before a row exists (a component rate of a composed price)."""
        self.anomalies.append(PriceAnomaly(self.provider, region, instance_type, field, _shown(value), problem))

    def finish(self, offers: list[PriceOffer]) -> list[PriceOffer]:
        if self.anomalies:
            raise PricesRejected(self.provider, self.anomalies)
        return offers


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class PriceBounds:
    """Median USD per GPU-hour per (provider, GPU, market) and per (GPU, market) of a trusted catalog."""

    by_provider: dict[tuple[str, str, str], float]
    by_gpu: dict[tuple[str, str], float]

    @classmethod
    def of(cls, offers: Iterable[PriceOffer]) -> PriceBounds:
        by_provider: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        by_gpu: dict[tuple[str, str], list[float]] = defaultdict(list)
        for offer in offers:
            for field in PRICE_FIELDS:
                if (price := getattr(offer, field)) is not None:
                    by_provider[(offer.provider, offer.gpu, field)].append(price / offer.gpu_count)
                    by_gpu[(offer.gpu, field)].append(price / offer.gpu_count)
        return cls({k: statistics.median(v) for k, v in by_provider.items()},
                   {k: statistics.median(v) for k, v in by_gpu.items()})

    def check(self, offer: PriceOffer) -> list[PriceAnomaly]:
        """Every price of `offer` outside the absolute or the reference bounds (module docstring)."""
        found = []
        for field in PRICE_FIELDS:
            price = getattr(offer, field)
            if price is None:
                continue
            per_gpu = price / offer.gpu_count
            problem = None
            if not FLOOR_PER_GPU_HOUR <= per_gpu <= CEILING_PER_GPU_HOUR:
                problem = (f"${per_gpu:.4g} per GPU-hour; allowed: ${FLOOR_PER_GPU_HOUR:g} to "
                           f"${CEILING_PER_GPU_HOUR:g} per GPU-hour")
            elif (reference := self._reference(offer, field)) is not None:
                median, whose = reference
                if not median / REFERENCE_FACTOR <= per_gpu <= median * REFERENCE_FACTOR:
                    problem = (f"${per_gpu:.4g} per GPU-hour is more than {REFERENCE_FACTOR:g}x from the bundled "
                               f"catalog's median ${median:.4g} for {offer.gpu} ({whose})")
            if problem:
                found.append(PriceAnomaly(offer.provider, offer.zone or offer.region, offer.instance_type, field,
                                          _shown(price), problem))
        return found

    def _reference(self, offer: PriceOffer, field: str) -> tuple[float, str] | None:
        if (median := self.by_provider.get((offer.provider, offer.gpu, field))) is not None:
            return median, offer.provider
        if (median := self.by_gpu.get((offer.gpu, field))) is not None:
            return median, "all providers"
        return None


def out_of_scope(offers: Iterable[PriceOffer], regions: Sequence[str] | None) -> list[PriceAnomaly]:
    """An anomaly per row outside the requested regions (none when every region was asked for)."""
    if not regions:
        return []
    return [PriceAnomaly(o.provider, o.region, o.instance_type, "region", repr(o.region),
                         f"not a requested region ({', '.join(regions)}); ignored")
            for o in offers if o.region not in regions]
