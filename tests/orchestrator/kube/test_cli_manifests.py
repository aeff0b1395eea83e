"""`orchestrator manifests`: the hybrid example's plan as YAML for review and as kustomizations for GitOps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.inputs import load_inputs
from orchestrator.kube.gitops import HEADER
from orchestrator.planner import plan_fleet
from orchestrator.providers.kubernetes.models import deployment_name
from tests.conftest import ENVIRONMENTS
from tests.conftest import run_cli as run

IMAGE = "registry.example.com/gpufleet/vllm@sha256:" + "0" * 64


@pytest.fixture(scope="module")
def placement():
    spec, inputs = load_inputs(ENVIRONMENTS / "hybrid.yaml", load_price_catalog())
    return plan_fleet(spec, inputs)


@pytest.fixture
def plan_file(placement, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GPUFLEET_KUBERNETES_IMAGE", IMAGE)
    path = tmp_path / "plan.json"
    path.write_text(placement.model_dump_json())
    return path


def read_cluster(directory: Path) -> list[dict]:
    """A cluster's objects in its kustomization's order, as `kubectl apply -k` reads them."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return [yaml.safe_load((directory / f).read_text()) for f in kustomization["resources"]]


def test_out_writes_one_kustomization_per_cluster_holding_what_json_prints(plan_file, tmp_path, capsys):
    code, out, err = run(capsys, "manifests", "--env", "hybrid", "--plan", str(plan_file), "--format", "json")
    assert code == 0, err
    pools = json.loads(out)["pools"]
    code, _, err = run(capsys, "manifests", "--env", "hybrid", "--plan", str(plan_file), "--out", str(tmp_path / "gitops"))
    assert code == 0, err
    clusters = sorted(p.name for p in (tmp_path / "gitops").iterdir())
    assert clusters == sorted({p["cluster"] for p in pools})
    for cluster in clusters:
        assert read_cluster(tmp_path / "gitops" / cluster) == [m for p in pools if p["cluster"] == cluster for m in p["manifests"]]
        assert all(f.read_text().startswith(HEADER) for f in (tmp_path / "gitops" / cluster).rglob("*.yaml"))


def test_a_second_render_removes_what_it_no_longer_writes_and_nothing_else(placement, plan_file, tmp_path, capsys):
    out = tmp_path / "gitops"
    assert run(capsys, "manifests", "--env", "hybrid", "--plan", str(plan_file), "--out", str(out))[0] == 0
    gone = next(r for r in placement.replicas if r.count > 0 and r.pool == "fra-dc1-a100")
    name = deployment_name(gone.model)
    files = [out / "onprem-fra" / "gpufleet-fra-dc1-a100" / f"{kind}-{name}.yaml" for kind in ("deployment", "service")]
    assert all(f.exists() for f in files)
    ours = out / "onprem-fra" / "README.yaml"
    ours.write_text("# the platform team's own notes\n")
    fewer = placement.model_copy(update={"replicas": [r for r in placement.replicas if r is not gone]})
    plan_file.write_text(fewer.model_dump_json())
    assert run(capsys, "manifests", "--env", "hybrid", "--plan", str(plan_file), "--out", str(out))[0] == 0
    names = {(m["kind"], m["metadata"]["name"]) for m in read_cluster(out / "onprem-fra")}
    assert ("Deployment", name) not in names and ("Service", name) not in names and ("Namespace", "gpufleet-fra-dc1-a100") in names
    assert not any(f.exists() for f in files)
    assert ours.read_text() == "# the platform team's own notes\n"


def test_without_out_one_yaml_stream(plan_file, capsys):
    code, out, err = run(capsys, "manifests", "--env", "hybrid", "--plan", str(plan_file))
    assert code == 0, err
    documents = list(yaml.safe_load_all(out))
    assert documents[0]["kind"] == "Namespace" and sum(d["kind"] == "Deployment" for d in documents) >= 3
    # the spec names no versions: each model's own fields are its release "v1", which its pods carry
    assert {d["spec"]["template"]["metadata"]["labels"]["gpufleet.io/version"] for d in documents
            if d["kind"] == "Deployment"} == {"v1"}


def test_an_image_by_tag_is_bad_input(plan_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GPUFLEET_KUBERNETES_IMAGE", "registry.example.com/gpufleet/vllm:latest")
    code, out, err = run(capsys, "manifests", "--env", "hybrid", "--plan", str(plan_file), "--out", str(tmp_path / "o"))
    assert code == 2 and "not pinned by digest" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv("GPUFLEET_KUBERNETES_ALLOW_IMAGE_TAG", "1")
    assert run(capsys, "manifests", "--env", "hybrid", "--plan", str(plan_file))[0] == 0


def test_a_plan_of_another_environment_is_bad_input(placement, plan_file, capsys):
    plan_file.write_text(placement.model_copy(update={"environment": "staging"}).model_dump_json())
    code, _, err = run(capsys, "manifests", "--env", "hybrid", "--plan", str(plan_file))
    assert code == 2 and "for environment 'staging', not 'hybrid'" in err
