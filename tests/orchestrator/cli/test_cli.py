"""The `orchestrator` command as a user meets it: exit codes, messages, JSON on stdout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import ENVIRONMENTS, REPO
from tests.conftest import run_cli as run


def broken_copy(tmp_path: Path, old: str, new: str, env: str = "hybrid") -> Path:
    text = (ENVIRONMENTS / f"{env}.yaml").read_text()
    assert old in text
    path = tmp_path / f"{env}-broken.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("command", [[], ["validate"], ["catalog"], ["catalog", "show"], ["catalog", "refresh"], ["spec"], ["spec", "schema"]])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "Usage" in out


@pytest.mark.parametrize("env", ["local", "hybrid"])
def test_bundled_environments_validate(capsys: pytest.CaptureFixture[str], env: str) -> None:
    code, out, err = run(capsys, "validate", "--env", env)
    assert code == 0, err
    assert "is valid" in out


def test_validate_json_carries_the_plan_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--env", "hybrid", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    inputs = payload["inputs"]
    assert payload["valid"] and payload["environment"] == "hybrid"
    assert {p["provider"] for p in inputs["pools"]} == {"onprem", "aws", "gcp", "azure"}
    assert all(p["cost_per_node_hour"] > 0 for p in inputs["pools"])
    # residency: qwen may not run on AWS
    assert not [c for c in inputs["capacity"] if c["model"] == "qwen2.5-32b" and c["pool"].startswith("aws")]
    # every (user region, pool) pair has an RTT
    regions = {d["region"] for d in inputs["demand"]}
    assert len(inputs["latency"]) == len(regions) * len(inputs["pools"])


def test_broken_copy_fails_with_exit_2_naming_the_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "    min_nodes: 0\n    max_nodes: 4\n    cluster: eks-prod-use1", "    min_nodes: 5\n    max_nodes: 4\n    cluster: eks-prod-use1")
    code, out, err = run(capsys, "validate", "--spec", str(path))
    assert code == 2 and out == ""
    assert f"{path}:" in err and "pools[1].min_nodes" in err and "greater than max_nodes" in err
    assert "Traceback" not in err


def test_validate_reports_own_and_catalog_problems_in_one_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A min_nodes error (the spec's own checks) does not hide an instance-type typo (the catalog's): README's example."""
    path = broken_copy(tmp_path, "    min_nodes: 0\n    max_nodes: 4\n    cluster: eks-prod-use1", "    min_nodes: 5\n    max_nodes: 4\n    cluster: eks-prod-use1")
    path.write_text(path.read_text().replace("instance_type: g6.12xlarge", "instance_type: g6.12xlarg", 1))
    code, out, err = run(capsys, "validate", "--spec", str(path), "--format", "json")
    assert code == 2
    issues = json.loads(out)["error"]["issues"]
    assert [i["path"] for i in issues] == ["pools[1].min_nodes", "pools[3].instance_type"]
    assert "Did you mean 'g6.12xlarge'" in issues[1]["message"] and issues[0]["line"] < issues[1]["line"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("instance_type: p5.48xlarge", "instance_type: p5.48xlarg", "pools[1].instance_type: unknown aws GPU instance type 'p5.48xlarg'. Did you mean 'p5.48xlarge'"),
        ("region: us-east-1\n    instance_type: p5", "region: us-east-l\n    instance_type: p5", "pools[1].region: unknown aws region 'us-east-l'. Did you mean"),
        ("zone: us-central1-a", "zone: us-central1-z", "pools[5].zone: a3-highgpu-8g is not offered in us-central1-z"),
        ("gpu: A100-80GB", "gpu: A100-80G", "pools[0].gpu:"),
        ("architecture: llama-3.3-70b", "architecture: llama-3.3-70", "models[2].architecture:"),
        ("region: frankfurt,     requests_per_second: 30", "region: frankfurd,     requests_per_second: 30", "demand[3].region:"),
        ("location: frankfurt", "location: frankfurd", "pools[0].location:"),
    ],
)
def test_catalog_checks_name_the_field_and_suggest(capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, expected: str) -> None:
    code, _, err = run(capsys, "validate", "--spec", str(broken_copy(tmp_path, old, new)))
    assert code == 2, err
    assert expected in err.replace("\n", " ") or expected in err, err


def test_model_that_fits_no_pool(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "architecture: tiny-llama", "architecture: llama-3.1-70b", env="local")
    code, _, err = run(capsys, "validate", "--spec", str(path))
    assert code == 2 and "models[0]" in err and "fits no pool" in err


def test_spot_market_without_a_price(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "instance_type: Standard_NC24ads_A100_v4   # 1x A100 80GB\n    capacity: on_demand",
                       "instance_type: Standard_NC24ads_A100_v4   # 1x A100 80GB\n    capacity: reserved")
    code, _, err = run(capsys, "validate", "--spec", str(path))
    assert code == 2 and "pools[7].capacity: no reserved price" in err


def test_unknown_environment_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "--env", "hybird")
    assert code == 2 and "Did you mean 'hybrid'" in err


def test_env_and_spec_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "--env", "local", "--spec", str(ENVIRONMENTS / "local.yaml"))
    assert code == 2 and "pass one" in err


def test_schema_validates_the_bundled_environments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "schema.json"
    code, _, _ = run(capsys, "spec", "schema", "--out", str(out_file))
    assert code == 0
    schema = json.loads(out_file.read_text())
    for env in ("local", "hybrid"):
        jsonschema.validate(yaml.safe_load((ENVIRONMENTS / f"{env}.yaml").read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"pools": [{"name": "x", "provider": "mars"}], "models": []}, schema)


def test_committed_schema_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spec", "schema")
    assert code == 0
    assert json.loads(out) == json.loads((REPO / "docs" / "fleet-spec.schema.json").read_text()), \
        "run: orchestrator spec schema --out docs/fleet-spec.schema.json"


def test_catalog_show_h100_json_spans_three_clouds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", "show", "--gpu", "H100", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert {r["provider"] for r in rows} == {"aws", "gcp", "azure"}
    assert all(r["gpu"] == "H100" and r["as_of"] and r["on_demand_per_hour"] is not None for r in rows)
    per_gpu = [r["on_demand_per_hour"] / r["gpu_count"] for r in rows]
    assert per_gpu == sorted(per_gpu)


def test_catalog_show_filters_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", "show", "--gpu", "H100", "--provider", "gcp", "--region", "europe-west4", "--capacity", "spot")
    assert code == 0 and "a3-highgpu" in out and "europe-west4" in out
    assert "as of" in out


def test_catalog_show_rejects_unknown_market(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "catalog", "show", "--capacity", "cheap")
    assert code == 2 and "allowed: on_demand, spot, reserved" in err


def test_console_script_exit_code_and_no_traceback(tmp_path: Path) -> None:
    """The installed entry point, as a separate process: bad input exits 2 without a traceback."""
    exe = shutil.which("orchestrator", path=str(Path(sys.executable).parent))
    assert exe, "the console script is installed with the package"
    bad = tmp_path / "bad.yaml"
    bad.write_text("pools: [\n")
    proc = subprocess.run([exe, "validate", "--spec", str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "not valid YAML" in proc.stderr and "Traceback" not in proc.stderr


def test_catalog_refresh_through_the_cli_wins_over_bundled(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`catalog refresh` against the Retail Prices fake, then `catalog show` reads the refreshed rows."""
    from tests.fakes.azure_retail_prices import PATH, FakeRetailPrices, price_item

    items = [
        price_item("Standard_NC24ads_A100_v4", "eastus", 3.1, sku_name="NC24ads A100 v4", product_name="Virtual Machines NCadsA100v4 Series"),
        price_item("Standard_NC24ads_A100_v4", "eastus", 0.9, sku_name="NC24ads A100 v4 Spot", product_name="Virtual Machines NCadsA100v4 Series"),
    ]
    with FakeRetailPrices(items, page_size=1).serve() as url:
        monkeypatch.setenv("GPUFLEET_AZURE_PRICES_URL", url + PATH)
        code, out, err = run(capsys, "catalog", "refresh", "--provider", "azure", "--region", "eastus", "--format", "json")
    assert code == 0, err
    refreshed = json.loads(out)["refreshed"]
    assert [(r["provider"], r["rows"]) for r in refreshed] == [("azure", 1)]
    code, out, _ = run(capsys, "catalog", "show", "--provider", "azure", "--region", "eastus", "--format", "json")
    rows = json.loads(out)
    assert [(r["instance_type"], r["on_demand_per_hour"], r["spot_per_hour"]) for r in rows] == [("Standard_NC24ads_A100_v4", 3.1, 0.9)]
    assert rows[0]["as_of"] == refreshed[0]["as_of"]


def test_catalog_refresh_failure_exits_1_and_keeps_bundled(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUFLEET_AZURE_PRICES_URL", "http://127.0.0.1:9/api/retail/prices")  # nothing listens on port 9
    code, out, err = run(capsys, "catalog", "refresh", "--provider", "azure")
    assert code == 1 and "cannot reach" in err and "To fix" in err and "Traceback" not in err
    code, out, _ = run(capsys, "catalog", "show", "--provider", "azure", "--format", "json")
    assert len(json.loads(out)) > 100  # still the bundled catalog


def test_catalog_refresh_rejects_unknown_provider(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "catalog", "refresh", "--provider", "oracle")
    assert code == 2 and "allowed: aws, gcp, azure, all" in err
