"""Names of places → `Location`s: cloud regions, zones, metros, user-region aliases, on-prem sites.

Specs name places loosely (`us-east-1`, `gcp:us-central1-a`, `frankfurt`, `eu-west`); the
latency model needs one canonical place with coordinates. The table of known places is
`data/locations.csv` (hand-authored, see data/SOURCE.md); an unknown name is a user error
that suggests the closest known names.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.catalog.offers import CLOUD_PROVIDERS
from orchestrator.errors import CatalogError, InputError

logger = logging.getLogger(__name__)

Kind = Literal["cloud_region", "metro", "local", "onprem"]
EARTH_RADIUS_KM = 6371.0088
LOCAL = "local"
# A site given only by coordinates takes the continent of the nearest known place this close.
CONTINENT_RADIUS_KM = 1000.0
# A zone is its region plus a suffix: GCP `us-east4-a`, AWS `us-east-1a`.
ZONE_PATTERNS = {"gcp": re.compile(r"^(?P<region>.+\d)-[a-z]$"), "aws": re.compile(r"^(?P<region>.+-\d+)[a-z]$")}
HOW_TO_NAME = (
    "To fix: use a cloud region (aws:us-east-1, westeurope, a GCP zone such as us-central1-a), "
    "a metro (frankfurt, new-york) or a user-region alias (us-east, eu-west); docs/latency.md lists them."
)


class Location(BaseModel):
    """One place RTT can be looked up or estimated for; `local` and nothing else lacks coordinates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Kind
    provider: str | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    continent: str | None = None
    country: str | None = Field(None, description="ISO 3166-1 alpha-2 code.")

    @property
    def key(self) -> str:
        """Canonical name: `provider:region` for cloud regions (as in rtt.csv), else the name."""
        return f"{self.provider}:{self.name}" if self.kind == "cloud_region" else self.name

    def distance_km(self, other: Location) -> float:
        """Great-circle distance (haversine); both places need coordinates."""
        if self.lat is None or self.lon is None or other.lat is None or other.lon is None:
            raise InputError(f"no distance between '{self.key}' and '{other.key}': one has no coordinates. "
                             "To fix: give every place a location (only `local` has none).")
        lat1, lat2 = math.radians(self.lat), math.radians(other.lat)
        half_dlat, half_dlon = (lat2 - lat1) / 2, math.radians(other.lon - self.lon) / 2
        h = math.sin(half_dlat) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(half_dlon) ** 2
        return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


class SiteCoordinates(BaseModel):
    """An on-prem site's stated position (`location: {lat: 50.1, lon: 8.7}`)."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class RegionIndex:
    """Every known place, findable by canonical key, bare region name, zone, metro or alias."""

    def __init__(self, locations: Iterable[Location], aliases: Mapping[str, str] | None = None):
        self._by_key: dict[str, Location] = {}
        self._by_name: dict[str, list[Location]] = {}
        for location in locations:
            if location.key in self._by_key:
                raise CatalogError(f"location '{location.key}' is listed twice")
            self._by_key[location.key] = location
            self._by_name.setdefault(location.name, []).append(location)
        for alias, key in (aliases or {}).items():
            if alias in self._by_name or alias in self._by_key or key not in self._by_key:
                raise CatalogError(f"alias '{alias}' collides with a known name or points to an unknown one ('{key}')")
            self._by_name[alias] = [self._by_key[key]]

    def get(self, key: str) -> Location:
        """The location with this canonical key; a missing key means the bundled data is inconsistent."""
        try:
            return self._by_key[key]
        except KeyError:
            raise CatalogError(f"'{key}' is not in the latency catalog's locations.csv") from None

    def nearby_continent(self, place: Location) -> str | None:
        """The continent of the nearest known place within CONTINENT_RADIUS_KM (for residency rules)."""
        placed = [loc for loc in self._by_key.values() if loc.lat is not None]
        nearest = min(placed, key=place.distance_km, default=None)
        if nearest is None or place.distance_km(nearest) > CONTINENT_RADIUS_KM:
            return None
        return nearest.continent

    def names(self, provider: str | None = None) -> list[str]:
        """With a provider, its bare region names; without, every location's canonical key."""
        if provider is None:
            return sorted(self._by_key)
        _check_provider(provider)
        return sorted(loc.name for loc in self._by_key.values() if loc.provider == provider or loc.kind == provider)

    def resolve(self, name: str, provider: str | None = None) -> Location:
        """The one place `name` means (narrowed to `provider` if given); InputError if none or several."""
        if provider is not None:
            _check_provider(provider)
        wanted = re.sub(r"[\s_]+", "-", name.strip().lower())
        prefix, colon, rest = wanted.partition(":")
        if colon:
            if prefix not in CLOUD_PROVIDERS:
                raise InputError(f"unknown provider '{prefix}' in '{name}'. To fix: write aws:, gcp: or azure: before the region.")
            if provider not in (None, prefix):
                raise InputError(f"'{name}' is a {prefix} region, but provider {provider} was given. To fix: use one of {provider}'s regions.")
            provider, wanted = prefix, rest
        candidates = self._candidates(wanted, provider)
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            keys = sorted(loc.key for loc in candidates)
            raise InputError(f"'{name}' is ambiguous: it names {', '.join(keys)}. To fix: write it with its provider, e.g. '{keys[0]}'.")
        raise InputError(self._unknown_message(name, wanted, provider))

    def _candidates(self, wanted: str, provider: str | None) -> list[Location]:
        """Exact names and aliases first; only if none match, zones of known regions."""
        found = [loc for loc in self._by_name.get(wanted, []) if _belongs(loc, provider)]
        if found:
            return found
        for zone_provider, pattern in ZONE_PATTERNS.items():
            match = pattern.match(wanted)
            region = self._by_key.get(f"{zone_provider}:{match['region']}") if match else None
            if region is not None and _belongs(region, provider):
                found.append(region)
        return found

    def _unknown_message(self, name: str, wanted: str, provider: str | None) -> str:
        known = self.names(provider) if provider else [*self._by_name, *self._by_key]
        close = difflib.get_close_matches(wanted, sorted(set(known)), n=3, cutoff=0.6)
        suggestion = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        if provider is None:
            return f"unknown region or location '{name}'.{suggestion} {HOW_TO_NAME}"
        elsewhere = [f"the {loc.kind.replace('_', ' ')} {loc.key}" for loc in self._candidates(wanted, None)]
        problem = f"is {' and '.join(elsewhere)}, not a region of {provider}" if elsewhere else f"is not a known {provider} region"
        return f"'{name}' {problem}.{suggestion} To fix: use one of {provider}'s regions; docs/latency.md lists them."


def _check_provider(provider: str) -> None:
    if provider not in (*CLOUD_PROVIDERS, LOCAL):
        raise InputError(f"unknown provider '{provider}' for a region name. To fix: use one of {', '.join(CLOUD_PROVIDERS)} or local.")


def _belongs(location: Location, provider: str | None) -> bool:
    return provider is None or location.provider == provider or location.kind == provider


def parse_locations(text: str) -> RegionIndex:
    """An index from locations.csv text (columns: name, kind, provider, lat, lon, continent, country, aliases)."""
    locations, aliases = [], {}
    for row in csv.DictReader(io.StringIO(text)):
        location = Location(
            name=row["name"], kind=row["kind"], provider=row["provider"] or None,
            lat=row["lat"] or None, lon=row["lon"] or None,
            continent=row["continent"] or None, country=row["country"] or None,
        )
        locations.append(location)
        aliases.update({alias: location.key for alias in row["aliases"].split(";") if alias})
    return RegionIndex(locations, aliases)


@lru_cache(maxsize=1)
def load_regions() -> RegionIndex:
    """The bundled table of known places, read once per process."""
    index = parse_locations(resources.files(__package__).joinpath("data", "locations.csv").read_text(encoding="utf-8"))
    logger.debug("loaded %d known locations", len(index.names()))
    return index


def resolve(name: str, provider: str | None = None) -> Location:
    """The place a spec names: `provider:region`, a bare region, a zone, a metro or an alias."""
    return load_regions().resolve(name, provider)


def known_regions(provider: str | None = None) -> list[str]:
    """With a provider, its known region names; without, every known place's canonical name."""
    return load_regions().names(provider)


def site_location(name: str, value: object) -> Location:
    """An on-prem site placed at a named place (`frankfurt`, `aws:eu-central-1`) or at coordinates.

    A site is never one of the measured cloud endpoints, even when it sits in the same city,
    so its RTTs are always estimated from its coordinates.
    """
    if isinstance(value, str):
        place = resolve(value)
        if place.lat is None:
            raise InputError(f"on-prem site '{name}' cannot be placed at '{value}': it has no coordinates. "
                             "To fix: name a metro or cloud region near the site, or give {lat, lon}.")
        return Location(name=name, kind="onprem", provider="onprem", lat=place.lat, lon=place.lon,
                        continent=place.continent, country=place.country)
    if value is None:
        raise InputError(f"on-prem site '{name}' has no location. To fix: add `location: frankfurt` "
                         "(a metro or cloud region nearby) or `location: {lat: 50.1, lon: 8.7}`.")
    raw = value if isinstance(value, Mapping) else {"lat": getattr(value, "lat", None), "lon": getattr(value, "lon", None)}
    try:
        coordinates = SiteCoordinates.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'location'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"on-prem site '{name}' has a bad location ({problems}). "
                         "To fix: give `location: {lat: <-90..90>, lon: <-180..180>}` or a metro name.") from None
    site = Location(name=name, kind="onprem", provider="onprem", lat=coordinates.lat, lon=coordinates.lon)
    return site.model_copy(update={"continent": load_regions().nearby_continent(site)})
