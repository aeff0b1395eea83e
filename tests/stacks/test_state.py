"""State backends: names from the spec or an organisation prefix, each cloud's naming rules, the local backend."""

from __future__ import annotations

import json

import pytest

from orchestrator.spec.models import StateBackend
from stacks.__main__ import main
from stacks.state import (
    StateNames, container_problem, gcs_bucket_problem, resource_group_problem, s3_bucket_problem, state_issues,
    storage_account_problem,
)
from tests.conftest import ENVIRONMENTS


@pytest.mark.parametrize("name", ["gpufleet-tfstate-hybrid", "acme.tfstate-1", "abc"])
def test_s3_accepts_names_by_its_rules(name):
    assert s3_bucket_problem(name) is None


@pytest.mark.parametrize(("name", "why"), [
    ("ab", "3-63"), ("Acme-state", "lower-case"), ("acme_state", "lower-case"), ("-acme", "starting and ending"),
    ("a" * 64, "3-63"), ("acme..state", "adjacent dots"), ("192.168.5.4", "IP addresses"),
    ("xn--acme", "reserves the prefixes"), ("acme-s3alias", "suffixes"),
])
def test_s3_refuses_names_against_its_rules(name, why):
    assert why in s3_bucket_problem(name)


@pytest.mark.parametrize(("name", "problem"), [
    ("acme_tfstate-hybrid", None), ("acme." + "a" * 63 + ".b", None), ("a" * 64, "3-63"), ("acme.b" + "a" * 63, "each dot-separated part"),
    ("goog-state", "'goog'"), ("acme-g00gle-state", "'google'"), ("Acme", "lower-case"),
])
def test_gcs_bucket_names(name, problem):
    found = gcs_bucket_problem(name)
    assert found is None if problem is None else problem in found


def test_azure_names():
    assert storage_account_problem("acmegpufleethybrid") is None
    assert "3-24" in storage_account_problem("acme-gpufleet")
    assert "3-24" in storage_account_problem("a" * 25)
    assert container_problem("tfstate") is None and container_problem("tf-state-1") is None
    assert "each hyphen" in container_problem("tf--state") and "each hyphen" in container_problem("tfstate-")
    assert resource_group_problem("rg-gpufleet_(state).x") is None
    assert "not ending with '.'" in resource_group_problem("rg.")


def test_names_derive_from_the_prefix_so_two_organisations_do_not_collide():
    acme, globex = StateNames.of(StateBackend(prefix="acme"), "prod"), StateNames.of(StateBackend(prefix="globex"), "prod")
    assert (acme.aws_bucket, acme.gcp_bucket, acme.azure_resource_group) == ("acme-gpufleet-tfstate-prod",) * 3
    assert acme.azure_storage_account == "acmegpufleetprod" and acme.azure_container == "tfstate"
    assert globex.aws_bucket != acme.aws_bucket and globex.azure_storage_account != acme.azure_storage_account
    assert StateNames.of(StateBackend(prefix="Acme-EU"), "prod").azure_storage_account == "acmeeugpufleetprod"  # lower-cased, not dropped
    named = StateNames.of(StateBackend(prefix="acme", aws_bucket="acme-tf", azure_container="state"), "prod")
    assert (named.aws_bucket, named.gcp_bucket, named.azure_container) == ("acme-tf", "acme-gpufleet-tfstate-prod", "state")


def test_a_derived_name_too_long_names_the_field_to_set():
    issues = state_issues(StateBackend(prefix="acme-platform"), "production", {"azure"})
    assert [i.path for i in issues] == ["stacks.state.azure_storage_account"]
    assert "'acmeplatformgpufleetproduction' is not allowed (derived from the environment and prefix; set stacks.state.azure_storage_account, or change " in issues[0].message
    assert state_issues(StateBackend(prefix="acme-platform"), "production", {"aws"}) == []  # no Azure pools: not used


def test_a_bad_name_in_the_spec_is_a_located_error_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "hybrid.yaml"
    text = (ENVIRONMENTS / "hybrid.yaml").read_text()
    spec.write_text(text + "stacks:\n  state:\n    aws_bucket: Acme_State\n    azure_container: tf--state\n")
    line = len(text.splitlines()) + 3
    assert main(["--spec", str(spec), "--outdir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:{line}: stacks.state.aws_bucket: 'Acme_State' is not allowed: S3 bucket names are 3-63" in err
    assert f"{spec}:{line + 1}: stacks.state.azure_container: 'tf--state' is not allowed" in err
    assert not (tmp_path / "out").exists()


def test_the_spec_names_the_backends(tmp_path):
    spec = tmp_path / "hybrid.yaml"
    spec.write_text((ENVIRONMENTS / "hybrid.yaml").read_text() + (
        "stacks:\n  state: {prefix: acme, aws_region: eu-west-1, gcp_bucket: acme-tf-gcs, azure_storage_account: acmetf}\n"))
    assert main(["--spec", str(spec), "--outdir", str(tmp_path)]) == 0
    backend = {p: json.loads((tmp_path / "stacks" / f"hybrid-{p}" / "cdk.tf.json").read_text())["terraform"]["backend"]
               for p in ("aws", "gcp", "azure")}
    assert backend["aws"]["s3"]["bucket"] == "acme-gpufleet-tfstate-hybrid"
    assert backend["aws"]["s3"]["region"] == "eu-west-1"
    assert backend["gcp"]["gcs"]["bucket"] == "acme-tf-gcs"
    azure = backend["azure"]["azurerm"]
    assert (azure["resource_group_name"], azure["storage_account_name"]) == ("acme-gpufleet-tfstate-hybrid", "acmetf")


def test_the_local_backend_keeps_every_stacks_state_in_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GPUFLEET_STACKS_BACKEND", "local")  # how `npx cdktn diff` passes it to the app
    assert main(["--env", "hybrid", "--outdir", str(tmp_path)]) == 0
    assert "(state: local files)" in capsys.readouterr().out
    for stack in ("hybrid-aws", "hybrid-gcp", "hybrid-azure", "hybrid-onprem"):
        backend = json.loads((tmp_path / "stacks" / stack / "cdk.tf.json").read_text())["terraform"]["backend"]
        assert backend == {"local": {"path": f"terraform.{stack}.tfstate"}}


def test_an_unknown_backend_is_bad_input(capsys, monkeypatch):
    monkeypatch.setenv("GPUFLEET_STACKS_BACKEND", "cloud")
    with pytest.raises(SystemExit) as exit_:
        main(["--env", "local"])
    assert exit_.value.code == 2
    assert "GPUFLEET_STACKS_BACKEND='cloud' is not a backend; allowed: spec, local" in capsys.readouterr().err
