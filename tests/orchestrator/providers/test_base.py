"""The provider interface: steps as a union discriminated on `kind`, and an ABC that enforces its methods."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from orchestrator.providers.base import Provider, ScaleDown, ScaleUp, Step, StepPending


def test_steps_parse_by_kind_and_reject_unknown_fields():
    adapter = TypeAdapter(Step)
    up = adapter.validate_python({"kind": "scale_up", "model": "m", "pool": "p", "count": 2,
                                  "replica": {"source": "s3://b/m", "served_name": "m"}})
    down = adapter.validate_python({"kind": "scale_down", "model": "m", "pool": "p", "count": 0})
    assert isinstance(up, ScaleUp) and up.replica.tensor_parallel_size == 1
    assert isinstance(down, ScaleDown)
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "scale_down", "model": "m", "pool": "p", "count": 0, "force": True})


def test_a_provider_missing_a_method_cannot_be_built():
    class Half(Provider):
        capabilities = frozenset()

        def offers(self):
            return []

    with pytest.raises(TypeError, match="abstract"):
        Half()


def test_step_pending_says_when_to_look_again():
    assert StepPending("loading", retry_after_s=2).retry_after_s == 2
