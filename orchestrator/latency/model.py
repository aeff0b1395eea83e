"""Round-trip time between two places: measured where Skyplane probed both, else estimated.

Measured: both places are cloud regions with a pair in `data/rtt.csv` (Skyplane, April 2022,
symmetrised; see data/SOURCE.md). Everything else — metros, on-prem sites, regions Skyplane
did not probe, the few pairs whose probes were unusable — is *estimated* by the fallback
model, fitted at build time (`python -m orchestrator.latency.build`) and stored with its
cross-validated error in `data/fallback.json`:

* **anchored** (used whenever both places lie within `anchor_radius_km` of a measured region):
  take the measured RTT between the regions nearest each place (every region within
  `anchor_tolerance_km` of the nearest, averaged over all measured anchor pairs) and shift
  it by `ms_per_km` × the difference between the two places' and the anchors' great-circle
  distances. This keeps the real routes — e.g. Johannesburg↔Singapore going via Europe —
  that no distance formula knows.
* **distance only** (farther from any measurement): `intercept_ms + ms_per_km · distance`.

Both are floored at the speed of light in fibre. For metros this is the RTT from the cloud
backbone nearest the users, not the last mile to a user's device (add that yourself).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from statistics import fmean
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from orchestrator.errors import InputError
from orchestrator.latency.regions import LOCAL, Location, RegionIndex, load_regions

logger = logging.getLogger(__name__)

FIBRE_KM_PER_MS = 204.0  # light in optical fibre: c / 1.47
RttSource = Literal["measured", "estimated", "local"]


def light_floor_rtt_ms(distance_km: float) -> float:
    """The least RTT physics allows over a great-circle fibre path; no estimate goes below it."""
    return 2 * distance_km / FIBRE_KM_PER_MS


def pair_key(a: str, b: str) -> tuple[str, str]:
    """Measurements are symmetrised, so a pair is looked up in one canonical order."""
    return (a, b) if a <= b else (b, a)


class RttEstimate(BaseModel):
    """An RTT and whether it was measured, estimated, or is `local`↔`local` (0 by definition)."""

    model_config = ConfigDict(frozen=True)

    rtt_ms: float
    source: RttSource
    distance_km: float | None = None


class MeasuredPair(NamedTuple):
    """One row of rtt.csv: the mean RTT of the usable directed probes between two regions."""

    a: str
    b: str
    rtt_ms: float
    samples: int


class ErrorRow(BaseModel):
    """The fallback's error on one slice of held-out measured pairs."""

    model_config = ConfigDict(frozen=True)

    model: str
    scope: str
    predictions: int
    mae_ms: float
    median_ape_pct: float
    p90_ape_pct: float


class FallbackModel(BaseModel):
    """The fitted coefficients of the estimate for unmeasured pairs, with their measured error."""

    model_config = ConfigDict(frozen=True)

    intercept_ms: float
    ms_per_km: float
    anchor_radius_km: float
    anchor_tolerance_km: float
    fitted_pairs: int
    validation: str = ""
    error: tuple[ErrorRow, ...] = ()

    def distance_rtt_ms(self, distance_km: float) -> float:
        """The distance-only estimate, for places far from every measured region."""
        return max(self.intercept_ms + self.ms_per_km * distance_km, light_floor_rtt_ms(distance_km))


class LatencyModel:
    """RTT between any two places with coordinates (and `local` with itself)."""

    def __init__(self, measured: Iterable[MeasuredPair], regions: RegionIndex, fallback: FallbackModel):
        self.fallback = fallback
        self._measured = {pair_key(p.a, p.b): p.rtt_ms for p in measured}
        self._anchors = [regions.get(key) for key in sorted({key for pair in self._measured for key in pair})]
        self._near: dict[tuple[float | None, float | None], list[Location]] = {}

    def rtt(self, a: Location, b: Location) -> RttEstimate:
        """Measured RTT if Skyplane probed this pair of regions, else the fallback's estimate."""
        if LOCAL in (a.kind, b.kind):
            if a.kind == b.kind:
                return RttEstimate(rtt_ms=0.0, source="local", distance_km=0.0)
            other = b if a.kind == LOCAL else a
            raise InputError(f"RTT between 'local' (this machine) and '{other.key}' is undefined. "
                             "To fix: serve local pools only to the `local` user region, or give the pool a real location.")
        distance = a.distance_km(b)
        if a.kind == b.kind == "cloud_region":
            measured = self._measured.get(pair_key(a.key, b.key))
            if measured is not None:
                return RttEstimate(rtt_ms=measured, source="measured", distance_km=distance)
        return RttEstimate(rtt_ms=self._estimate(a, b, distance), source="estimated", distance_km=distance)

    def nearest_anchor_km(self, place: Location) -> float:
        """How far a place is from the nearest measured region (how much the estimate extrapolates)."""
        return min(place.distance_km(anchor) for anchor in self._anchors)

    def _estimate(self, a: Location, b: Location, distance: float) -> float:
        """Anchored (see module docstring); distance-only when either place has no measured pair to borrow."""
        floor = light_floor_rtt_ms(distance)
        guesses = [
            max(measured + self.fallback.ms_per_km * (distance - p.distance_km(q)), floor)
            for p in self._anchors_near(a)
            for q in self._anchors_near(b)
            if (measured := self._measured.get(pair_key(p.key, q.key))) is not None
        ]
        return fmean(guesses) if guesses else self.fallback.distance_rtt_ms(distance)

    def _anchors_near(self, place: Location) -> list[Location]:
        """The measured regions a place borrows routes from: all within tolerance of the nearest."""
        spot = (place.lat, place.lon)
        if spot not in self._near:
            nearest = self.nearest_anchor_km(place)
            reach = nearest + self.fallback.anchor_tolerance_km
            self._near[spot] = [] if nearest > self.fallback.anchor_radius_km else [
                anchor for anchor in self._anchors if place.distance_km(anchor) <= reach
            ]
        return self._near[spot]


def parse_measured(text: str) -> list[MeasuredPair]:
    """rtt.csv (columns a, b, rtt_ms, samples) as pairs."""
    return [
        MeasuredPair(row["a"], row["b"], float(row["rtt_ms"]), int(row["samples"]))
        for row in csv.DictReader(io.StringIO(text))
    ]


def bundled_data(name: str) -> str:
    """The text of one of the package's bundled data files."""
    return resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")


def bundled_pairs() -> list[MeasuredPair]:
    """The measured pairs shipped with the package."""
    return parse_measured(bundled_data("rtt.csv"))


@lru_cache(maxsize=1)
def load_latency_model() -> LatencyModel:
    """The bundled latency model, read once per process."""
    measured = bundled_pairs()
    fallback = FallbackModel.model_validate_json(bundled_data("fallback.json"))
    logger.debug("loaded %d measured RTT pairs", len(measured))
    return LatencyModel(measured, load_regions(), fallback)
