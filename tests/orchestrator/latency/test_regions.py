"""Place names → Locations: every name form, narrowing by provider, errors that help."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from orchestrator.errors import CatalogError, InputError
from orchestrator.latency import Location, known_regions, resolve, site_location
from orchestrator.latency.regions import RegionIndex, load_regions


@pytest.mark.parametrize(
    ("name", "provider", "key"),
    [
        ("aws:us-east-1", None, "aws:us-east-1"),
        ("us-east-1", None, "aws:us-east-1"),
        ("us-central1", None, "gcp:us-central1"),
        ("westeurope", None, "azure:westeurope"),
        ("gcp:us-east4-a", None, "gcp:us-east4"),
        ("europe-west4-b", None, "gcp:europe-west4"),
        ("us-east-1a", None, "aws:us-east-1"),
        ("us-east4", "gcp", "gcp:us-east4"),
        ("  AWS:US-EAST-1 ", None, "aws:us-east-1"),
        ("frankfurt", None, "frankfurt"),
        ("New York", None, "new-york"),
        ("local", "local", "local"),
    ],
)
def test_each_name_form_resolves_to_its_place(name: str, provider: str | None, key: str) -> None:
    assert resolve(name, provider).key == key


@pytest.mark.parametrize(
    ("alias", "metro"),
    [("us-east", "virginia"), ("us-west", "san-francisco"), ("us-central", "chicago"), ("eu-west", "amsterdam"),
     ("eu-central", "frankfurt"), ("eu-north", "stockholm"), ("uk", "london"), ("asia-east", "hong-kong"),
     ("asia-southeast", "singapore"), ("asia-south", "mumbai"), ("australia", "sydney")],
)
def test_coarse_user_regions_are_aliases_of_a_metro(alias: str, metro: str) -> None:
    place = resolve(alias)
    assert (place.name, place.kind, place.provider) == (metro, "metro", None)


def test_a_zone_resolves_to_its_region_with_coordinates() -> None:
    zone, region = resolve("gcp:europe-west4-a"), resolve("europe-west4")
    assert zone == region
    assert (region.lat, region.lon, region.country, region.continent) == (53.44, 6.83, "NL", "europe")


def test_provider_narrows_and_rejects_other_providers_regions() -> None:
    with pytest.raises(InputError, match="'us-east4' is the cloud region gcp:us-east4, not a region of aws. Did you mean .*'us-east-1'.* To fix: use one of aws's regions"):
        resolve("us-east4", provider="aws")
    with pytest.raises(InputError, match="'gcp:us-east4' is a gcp region, but provider aws was given. To fix"):
        resolve("gcp:us-east4", provider="aws")
    with pytest.raises(InputError, match="'frankfurt' is the metro frankfurt, not a region of azure"):
        resolve("frankfurt", provider="azure")
    with pytest.raises(InputError, match="'us-east-7' is not a known aws region. Did you mean .*'us-east-1'.*To fix"):
        resolve("us-east-7", provider="aws")


def test_unknown_name_suggests_close_names_and_says_how_to_fix() -> None:
    with pytest.raises(InputError) as caught:
        resolve("franfkurt")
    message = str(caught.value)
    assert "unknown region or location 'franfkurt'" in message
    assert "Did you mean 'frankfurt'" in message
    assert "To fix:" in message.split("Did you mean")[1]


def test_unknown_provider_prefix_and_argument_are_errors() -> None:
    with pytest.raises(InputError, match="unknown provider 'oracle'.*To fix"):
        resolve("oracle:us-ashburn-1")
    with pytest.raises(InputError, match="unknown provider 'onprem'.*To fix"):
        resolve("frankfurt", provider="onprem")


def test_a_name_shared_by_two_providers_is_ambiguous_until_narrowed() -> None:
    index = RegionIndex([
        Location(name="north-1", kind="cloud_region", provider="aws", lat=59.3, lon=18.1),
        Location(name="north-1", kind="cloud_region", provider="gcp", lat=60.6, lon=27.2),
    ])
    with pytest.raises(InputError, match=r"'north-1' is ambiguous: it names aws:north-1, gcp:north-1\. To fix: .*'aws:north-1'"):
        index.resolve("north-1")
    assert index.resolve("north-1", provider="gcp").key == "gcp:north-1"
    assert index.resolve("aws:north-1").key == "aws:north-1"


def test_no_bundled_bare_name_is_ambiguous() -> None:
    for key in known_regions():
        bare = key.partition(":")[2] or key
        assert resolve(bare).key == key


def test_aliases_may_not_shadow_names() -> None:
    frankfurt = Location(name="frankfurt", kind="metro", lat=50.11, lon=8.68)
    with pytest.raises(CatalogError, match="alias 'frankfurt' collides"):
        RegionIndex([frankfurt], {"frankfurt": "frankfurt"})


def test_bundled_locations_cover_the_regions_specs_and_catalogs_use() -> None:
    wanted = {
        "aws": ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1", "eu-west-1",
                "eu-central-1", "eu-north-1", "ap-northeast-1", "ap-southeast-1", "ap-south-1"],
        "gcp": ["us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2", "us-west3",
                "us-west4", "europe-west1", "europe-west4", "europe-west9", "europe-north1", "europe-central2",
                "asia-northeast1", "asia-southeast1", "australia-southeast1"],
        "azure": ["eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "southcentralus", "northcentralus",
                  "westcentralus", "canadacentral", "northeurope", "westeurope", "uksouth", "francecentral",
                  "germanywestcentral", "swedencentral", "norwayeast", "switzerlandnorth", "italynorth",
                  "polandcentral", "japaneast", "koreacentral", "southeastasia", "eastasia", "australiaeast",
                  "centralindia", "brazilsouth"],
    }
    for provider, regions in wanted.items():
        assert set(regions) <= set(known_regions(provider)), provider
    metros = [loc for loc in map(resolve, known_regions()) if loc.kind == "metro"]
    assert len(metros) >= 30


def test_every_place_but_local_has_coordinates_and_a_continent() -> None:
    for key in known_regions():
        place = load_regions().get(key)
        if place.kind == "local":
            assert place.lat is None and place.lon is None
        else:
            assert place.lat is not None and place.lon is not None and place.continent, key


def test_known_regions_of_a_provider_are_bare_names_without_zones() -> None:
    gcp = known_regions("gcp")
    assert "us-central1" in gcp and "us-central1-a" not in gcp
    assert not any(":" in name for name in gcp)
    assert "aws:us-east-1" in known_regions() and "frankfurt" in known_regions()


def test_site_at_a_metro_takes_its_place_but_stays_an_onprem_site() -> None:
    site = site_location("fra-dc1", "frankfurt")
    frankfurt = resolve("frankfurt")
    assert (site.name, site.kind, site.provider) == ("fra-dc1", "onprem", "onprem")
    assert (site.lat, site.lon, site.continent, site.country) == (frankfurt.lat, frankfurt.lon, "europe", "DE")


@pytest.mark.parametrize("value", [{"lat": 50.1, "lon": 8.7}, SimpleNamespace(lat=50.1, lon=8.7)])
def test_site_at_coordinates_takes_the_nearby_continent(value: object) -> None:
    site = site_location("lab", value)
    assert (site.lat, site.lon, site.kind, site.continent, site.country) == (50.1, 8.7, "onprem", "europe", None)


def test_site_far_from_every_known_place_has_no_continent() -> None:
    assert site_location("buoy", {"lat": -40.0, "lon": -130.0}).continent is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [({"lat": 91, "lon": 8.7}, "lat"), ({"lat": 50.1}, "lon"), (None, "has no location"), ("local", "no coordinates"),
     ("atlantis", "unknown region or location")],
)
def test_bad_site_locations_are_input_errors(value: object, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        site_location("lab", value)
    assert "To fix:" in str(caught.value)
