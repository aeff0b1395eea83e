"""`catalog refresh` and the commands that read prices, as a user meets them when a price API or a
refreshed file is hostile: an anomaly report and exit 1, the old catalog kept, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.catalog.store import FIELDS
from tests.conftest import REPO
from tests.conftest import run_cli as run
from tests.fakes.azure_retail_prices import PATH, FakeRetailPrices, price_item

T4 = "Standard_NC4as_T4_v3"


def t4(region: str, price: float, spot: bool = False) -> dict:
    return price_item(T4, region, price, sku_name="NC4as T4 v3" + (" Spot" if spot else ""),
                      product_name="Virtual Machines NCasT4_v3 Series")


def test_a_hostile_price_api_gets_an_anomaly_report_exit_1_and_the_old_catalog_stays(capsys, monkeypatch, gpufleet_home):
    with FakeRetailPrices([t4("eastus", 0.526), t4("eastus", 0.2, spot=True)]).serve() as url:
        monkeypatch.setenv("GPUFLEET_AZURE_PRICES_URL", url + PATH)
        assert run(capsys, "catalog", "refresh", "-p", "azure", "-r", "eastus")[0] == 0
    before = (gpufleet_home / "catalog" / "azure.csv").read_bytes()

    hostile = [t4("eastus", float("nan")), t4("eastus", -0.2, spot=True), t4("westus2", 0.5)]
    with FakeRetailPrices(hostile, page_size=100).serve() as url:
        monkeypatch.setenv("GPUFLEET_AZURE_PRICES_URL", url + PATH)
        code, out, err = run(capsys, "catalog", "refresh", "-p", "azure", "-r", "eastus", "--format", "json")

    assert code == 1 and "Traceback" not in err
    report = json.loads(out)  # one document: the report, no second error object after it
    assert report["refreshed"] == []
    [failed] = report["failed"]
    assert {(a["region"], a["field"], a["value"]) for a in failed["anomalies"]} == {
        ("eastus", "on_demand_per_hour", "nan"), ("eastus", "spot_per_hour", "-0.2")}
    assert "left as it was" in failed["error"] and "spot_per_hour = -0.2" in err
    assert (gpufleet_home / "catalog" / "azure.csv").read_bytes() == before


def test_rows_of_unrequested_regions_are_listed_as_ignored(capsys, monkeypatch):
    answer = [t4("eastus", 0.61), t4("westus2", 0.55)]
    fake = FakeRetailPrices(answer, page_size=100)
    fake.handle = lambda request: FakeRetailPrices.handle(fake, _unfiltered(request))  # a server that ignores $filter
    with fake.serve() as url:
        monkeypatch.setenv("GPUFLEET_AZURE_PRICES_URL", url + PATH)
        code, out, _ = run(capsys, "catalog", "refresh", "-p", "azure", "-r", "eastus", "--format", "json")

    assert code == 0
    [refreshed] = json.loads(out)["refreshed"]
    assert refreshed["rows"] == 1 and [(a["region"], a["field"]) for a in refreshed["ignored"]] == [("westus2", "region")]
    code, out, _ = run(capsys, "catalog", "show", "--provider", "azure", "--region", "westus2", "--format", "json")
    bundled = load_price_catalog().find(provider="azure", region="westus2")
    assert {(r["instance_type"], r["on_demand_per_hour"]) for r in json.loads(out)} == {
        (o.instance_type, o.on_demand_per_hour) for o in bundled if o.on_demand_per_hour}  # the rows it had


def _unfiltered(request):
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(path=request.path, query_string={k: v for k, v in request.args.items() if k != "$filter"}).get_request()


def _poison(home: Path) -> None:
    """A refreshed AWS file as an earlier, unchecked refresh left it: a negative spot price and a $0 GPU."""
    rows = ["aws,us-east-1,,g5.xlarge,A10G,1,24,4,16,1.006,-0.3,,2026-11-01,aws-pricing-api",
            "aws,us-east-1,,p5.48xlarge,H100,8,80,192,2048,1e-300,,,2026-11-01,aws-pricing-api"]
    (home / "catalog").mkdir(parents=True, exist_ok=True)
    (home / "catalog" / "aws.csv").write_text(",".join(FIELDS) + "\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("command", [("validate", "--env", "local"), ("plan", "--env", "local", "--format", "json"),
                                     ("catalog", "show", "--gpu", "H100", "--format", "json")])
def test_a_bad_refreshed_file_on_disk_falls_back_to_the_bundled_prices(capsys, gpufleet_home, command):
    _poison(gpufleet_home)
    code, out, err = run(capsys, *command)

    assert code == 0, err
    assert "Traceback" not in err and "NaN" not in out and "Infinity" not in out
    if command[0] == "catalog":
        aws = [r for r in json.loads(out) if r["provider"] == "aws"]
        assert len(aws) > 10 and all(r["on_demand_per_hour"] > 1 for r in aws)  # bundled H100s, not the $0 one


def test_the_fallback_warning_reaches_the_user(gpufleet_home):
    _poison(gpufleet_home)
    env = dict(os.environ, GPUFLEET_HOME=str(gpufleet_home))
    run = subprocess.run([sys.executable, "-m", "orchestrator", "catalog", "show", "--gpu", "A10G", "--provider", "aws"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert "ignoring the refreshed aws prices" in run.stderr and "aws.csv:2: spot_per_hour" in run.stderr
    assert "refreshed file is ignored" in run.stdout
