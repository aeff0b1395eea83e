"""RTT lookups: measured pairs match the source, estimates stay within their stated error."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from orchestrator.errors import InputError
from orchestrator.latency import load_latency_model, resolve, site_location
from orchestrator.latency.build import fit_fallback
from orchestrator.latency.model import LatencyModel, bundled_pairs, light_floor_rtt_ms
from orchestrator.latency.regions import load_regions


@pytest.mark.parametrize(
    ("a", "b", "expected_ms"),
    [
        # Both directions usable: their mean (source rows: 1.899 and 1.865 ms).
        ("aws:us-east-1", "azure:eastus", 1.882),
        # (248.78, 248.776).
        ("aws:af-south-1", "aws:ap-east-1", 248.778),
        # GCP zone endpoints collapse to the region: gcp:us-east4-a (2.257, 2.617).
        ("gcp:us-east4", "azure:eastus", 2.437),
        # The GCP-sourced direction (3.606..264.032 ms, avg 133.834) is contaminated: only 3.658 is kept.
        ("azure:uksouth", "gcp:europe-west2", 3.658),
    ],
)
def test_measured_pairs_match_the_source_in_both_directions(a: str, b: str, expected_ms: float) -> None:
    model = load_latency_model()
    forward, backward = model.rtt(resolve(a), resolve(b)), model.rtt(resolve(b), resolve(a))
    assert forward == backward
    assert forward.source == "measured"
    assert forward.rtt_ms == pytest.approx(expected_ms, abs=1e-3)


def test_a_zone_and_its_region_have_the_same_measured_rtt() -> None:
    model = load_latency_model()
    assert model.rtt(resolve("gcp:us-east4-a"), resolve("aws:eu-west-1")) == model.rtt(resolve("us-east4"), resolve("eu-west-1"))


def test_intra_region_rtt_is_measured_for_probed_gcp_regions_and_small_elsewhere() -> None:
    model = load_latency_model()
    measured = model.rtt(resolve("gcp:us-east4"), resolve("gcp:us-east4-a"))
    assert (measured.source, measured.rtt_ms, measured.distance_km) == ("measured", 1.462, 0.0)
    estimated = model.rtt(resolve("aws:us-east-1"), resolve("aws:us-east-1"))
    assert estimated.source == "estimated" and 0.5 < estimated.rtt_ms < 5


def test_metros_and_sites_are_estimated_and_near_their_cloud_regions() -> None:
    model = load_latency_model()
    near = model.rtt(resolve("frankfurt"), resolve("aws:eu-central-1"))
    far = model.rtt(resolve("frankfurt"), resolve("aws:us-east-1"))
    assert near.source == far.source == "estimated"
    assert near.rtt_ms < 5 < 60 < far.rtt_ms < 120
    site = site_location("fra-dc1", "frankfurt")
    assert model.rtt(resolve("paris"), site) == model.rtt(resolve("paris"), resolve("frankfurt"))


def test_no_rtt_beats_light_in_fibre() -> None:
    model = load_latency_model()
    places = [resolve(name) for name in ("sydney", "london", "virginia", "sao-paulo", "gcp:us-east5", "azure:eastus2",
                                         "aws:us-east-1", "gcp:europe-west4", "johannesburg")]
    places.append(site_location("buoy", {"lat": -40.0, "lon": -130.0}))
    for a, b in itertools.product(places, repeat=2):
        estimate = model.rtt(a, b)
        assert estimate.rtt_ms >= light_floor_rtt_ms(estimate.distance_km) > -1, (a.key, b.key)


def test_every_measured_pair_respects_the_light_floor_at_its_coordinates() -> None:
    """A misplaced region in locations.csv, or a contaminated probe kept, shows up here."""
    regions = load_regions()
    for pair in bundled_pairs():
        distance = regions.get(pair.a).distance_km(regions.get(pair.b))
        assert pair.rtt_ms >= light_floor_rtt_ms(distance), pair


def test_local_is_zero_to_itself_and_undefined_to_anything_else() -> None:
    model = load_latency_model()
    local = resolve("local")
    assert model.rtt(local, local).rtt_ms == 0.0
    assert model.rtt(local, local).source == "local"
    with pytest.raises(InputError, match="'local' .* and 'frankfurt' is undefined.*To fix"):
        model.rtt(local, resolve("frankfurt"))
    with pytest.raises(InputError, match="undefined"):
        model.rtt(resolve("aws:us-east-1"), local)


@pytest.mark.parametrize("held_out_provider", ["aws", "gcp", "azure"])
def test_fallback_stays_within_its_stated_error_on_a_held_out_provider(held_out_provider: str) -> None:
    """Pretend Skyplane never probed one provider: refit without it and predict its pairs."""
    regions, stated = load_regions(), load_latency_model().fallback.error[0]
    held_out = lambda key: key.startswith(f"{held_out_provider}:")  # noqa: E731
    kept = [p for p in bundled_pairs() if not (held_out(p.a) or held_out(p.b))]
    tested = [p for p in bundled_pairs() if p.a != p.b and (held_out(p.a) or held_out(p.b))]
    model = LatencyModel(kept, regions, fit_fallback(kept, regions))
    estimates = [model.rtt(regions.get(p.a), regions.get(p.b)) for p in tested]
    assert {e.source for e in estimates} == {"estimated"}
    errors = np.abs([e.rtt_ms - p.rtt_ms for e, p in zip(estimates, tested)])
    percent = errors / [p.rtt_ms for p in tested] * 100
    assert stated.scope == "all held-out pairs"
    assert errors.mean() <= 1.3 * stated.mae_ms
    assert np.median(percent) <= 1.3 * stated.median_ape_pct
    assert np.percentile(percent, 90) <= 1.3 * stated.p90_ape_pct


def test_the_bundled_model_is_loaded_once() -> None:
    assert load_latency_model() is load_latency_model()
