"""Demand as a distribution: a size mix and a peak factor in the spec, checked where they are written."""

from __future__ import annotations

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec import parse_spec

from tests.orchestrator.spec.test_loader import VALID, issues_of

MEANS = "{model: m8b, region: frankfurt, requests_per_second: 5, input_tokens: 100, output_tokens: 50}"


def with_demand(row: str) -> str:
    return VALID.replace(MEANS, row, 1)


def test_a_mix_gives_its_means_and_normalised_buckets() -> None:
    spec = parse_spec(with_demand("{model: m8b, region: frankfurt, requests_per_second: 5, peak_factor: 2, size_mix: ["
                                  "{input_tokens: 100, output_tokens: 10, share: 0.6}, {input_tokens: 4000, output_tokens: 200, share: 0.395}]}"),
                      "env.yaml")
    demand = spec.demand[0]
    assert (demand.input_tokens, demand.output_tokens) == (round((0.6 * 100 + 0.395 * 4000) / 0.995), round((0.6 * 10 + 0.395 * 200) / 0.995))
    assert sum(b.share for b in demand.buckets()) == pytest.approx(1.0)
    assert demand.peak_factor == 2


def test_a_means_only_row_is_one_bucket() -> None:
    demand = parse_spec(VALID, "env.yaml").demand[0]
    assert [(b.input_tokens, b.output_tokens, b.share) for b in demand.buckets()] == [(100, 50, 1.0)]
    assert demand.peak_factor == 1.0


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("{model: m8b, region: frankfurt, requests_per_second: 5, size_mix: [{input_tokens: 100, output_tokens: 10, share: 0.5}]}",
         "demand[0]: Value error, size_mix shares add up to 0.5; allowed: shares that add up to 1"),
        ("{model: m8b, region: frankfurt, requests_per_second: 5, input_tokens: 100}",
         "demand[0]: Value error, output_tokens missing; allowed: mean input_tokens and output_tokens, or a size_mix"),
        ("{model: m8b, region: frankfurt, requests_per_second: 5, input_tokens: 100, output_tokens: 50, peak_factor: 0.5}",
         "demand[0].peak_factor: Input should be greater than or equal to 1"),
        ("{model: m8b, region: frankfurt, requests_per_second: 5, size_mix: [{input_tokens: 0, output_tokens: 10, share: 1}]}",
         "demand[0].size_mix[0].input_tokens: Input should be greater than 0"),
    ],
)
def test_bad_mix_is_located_and_explained(row: str, expected: str) -> None:
    rendered = issues_of(with_demand(row))
    assert any(expected in line for line in rendered), rendered


def test_a_second_row_for_the_same_pair_points_to_size_mix() -> None:
    rendered = issues_of(VALID + f"  - {MEANS}\n")
    assert any("give different request sizes as one row's size_mix" in line for line in rendered), rendered
    with pytest.raises(SpecError):
        parse_spec(VALID + f"  - {MEANS}\n", "env.yaml")
