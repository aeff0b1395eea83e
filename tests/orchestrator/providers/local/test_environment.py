"""From a placement to local steps, and the tiny model built only where the spec asks for it."""

from __future__ import annotations

import yaml

from orchestrator.planner.placement import CapacityRow, Placement, ReplicaRow, SolverInfo
from orchestrator.providers.base import ScaleDown, ScaleUp
from orchestrator.providers.local.environment import build_missing_tiny_models, placement_steps
from orchestrator.settings import Settings
from orchestrator.spec import parse_spec
from tests.conftest import ENVIRONMENTS


def local_spec(**model_changes):
    doc = yaml.safe_load((ENVIRONMENTS / "local.yaml").read_text())
    doc["models"][0] |= model_changes
    doc["models"].append(dict(doc["models"][0], name="other"))
    return parse_spec(yaml.safe_dump(doc), "local.yaml")


def placement(replicas: list[ReplicaRow]) -> Placement:
    return Placement(environment="local", cost_per_hour=0.05, lower_bound_per_hour=0.05,
                     solver=SolverInfo(status="optimal", seconds=0.0), models=[], demand=[], pools=[],
                     capacity=[CapacityRow(model="tiny-llama", pool="local", gpus_per_replica=1, rps_per_replica=1.0)],
                     latency=[], replicas=replicas, routes=[])


def test_scale_ups_come_first_and_every_model_is_scaled_down_to_its_count():
    spec = local_spec()
    steps = placement_steps(spec, placement([ReplicaRow(model="tiny-llama", pool="local", count=2)]))
    assert steps == [
        ScaleUp(model="tiny-llama", pool="local", count=2, replica=steps[0].replica),
        ScaleDown(model="tiny-llama", pool="local", count=2),
        ScaleDown(model="other", pool="local", count=0),
    ]
    replica = steps[0].replica
    assert (replica.source, replica.served_name, replica.max_model_len, replica.tensor_parallel_size) == (
        spec.models[0].source, "tiny-llama", 512, 1)


def test_the_tiny_model_is_built_for_a_missing_local_source_only(gpufleet_home):
    spec = local_spec(source="${GPUFLEET_HOME}/models/tiny-llama")
    assert build_missing_tiny_models(spec, Settings()) == [gpufleet_home / "models" / "tiny-llama"]
    assert build_missing_tiny_models(spec, Settings()) == []  # cached
    assert build_missing_tiny_models(local_spec(source="s3://bucket/tiny"), Settings()) == []
