"""The tiny model built only where the spec asks for it."""

from __future__ import annotations

import yaml

from orchestrator.providers.local.environment import build_missing_tiny_models
from orchestrator.settings import Settings
from orchestrator.spec import parse_spec
from tests.conftest import ENVIRONMENTS


def local_spec(**model_changes):
    doc = yaml.safe_load((ENVIRONMENTS / "local.yaml").read_text())
    doc["models"][0] |= model_changes
    doc["models"].append(dict(doc["models"][0], name="other"))
    return parse_spec(yaml.safe_dump(doc), "local.yaml")


def test_the_tiny_model_is_built_for_a_missing_local_source_only(gpufleet_home):
    spec = local_spec(source="${GPUFLEET_HOME}/models/tiny-llama")
    assert build_missing_tiny_models(spec, Settings()) == [gpufleet_home / "models" / "tiny-llama"]
    assert build_missing_tiny_models(spec, Settings()) == []  # cached
    assert build_missing_tiny_models(local_spec(source="s3://bucket/tiny"), Settings()) == []
