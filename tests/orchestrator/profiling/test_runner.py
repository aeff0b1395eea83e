"""The profile runner's inputs: the rate ladder and the token mix (its benchmark runs in the local fleet tests)."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.profiling import parse_rates
from orchestrator.profiling.runner import DEFAULT_RATES, token_mix
from orchestrator.spec import load_spec
from tests.conftest import ENVIRONMENTS


def test_rates_rise_and_default_to_a_doubling_ladder():
    assert parse_rates("0.5,1,4") == (0.5, 1.0, 4.0)
    assert parse_rates(None) == DEFAULT_RATES
    assert all(b == 2 * a for a, b in zip(DEFAULT_RATES, DEFAULT_RATES[1:], strict=False))


@pytest.mark.parametrize("text", ["", "1,x", "4,2", "0,1", "1,1"])
def test_rates_that_do_not_rise_or_are_not_numbers_are_bad_input(text):
    with pytest.raises(InputError, match="--rates"):
        parse_rates(text)


def test_the_token_mix_is_the_models_demand_weighted_mean():
    spec = load_spec(ENVIRONMENTS / "hybrid.yaml")
    model = spec.demand[0].model
    demand = [d for d in spec.demand if d.model == model]
    mix = token_mix(spec, model)
    total = sum(d.requests_per_second for d in demand)
    assert mix.input_tokens == round(sum(d.input_tokens * d.requests_per_second for d in demand) / total)
    with pytest.raises(InputError, match="no demand"):
        token_mix(spec.model_copy(update={"demand": []}), model)
