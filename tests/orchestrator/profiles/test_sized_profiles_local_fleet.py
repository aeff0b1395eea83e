"""`profile --per-size` on the real local fleet: one CPU vLLM replica of the tiny model, a demand with two
size buckets; each bucket is measured on its own and the plan's capacity per bucket is the measured one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.providers.local.test_local_fleet import Fleet, running_fleet


pytestmark = pytest.mark.slow

BUCKETS = [{"input_tokens": 64, "output_tokens": 16, "share": 0.7},
           {"input_tokens": 300, "output_tokens": 100, "share": 0.3}]


def with_buckets(doc: dict) -> None:
    demand = doc["demand"][0]
    del demand["input_tokens"], demand["output_tokens"]
    demand["size_mix"] = BUCKETS


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Fleet:
    with running_fleet(tmp_path_factory.mktemp("sized-home"), with_buckets, demo=False) as fleet:
        yield fleet


def test_each_bucket_is_measured_and_the_plan_uses_its_measured_capacity(fleet):
    run = fleet.cli("profile", "--model", "tiny-llama", "--pool", "local", "--per-size", "--rates", "2",
                    "--seconds-per-rate", "4", "--format", "json", timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    results, fit = json.loads(run.stdout)["profiles"], json.loads(run.stdout)["fit"]
    assert [(r["profile"]["mix"]["input_tokens"], r["profile"]["mix"]["output_tokens"]) for r in results] == \
        [(64, 16), (300, 100)]
    assert [Path(r["path"]).name for r in results] == ["tiny-llama__CPU__in64-out16.json",
                                                        "tiny-llama__CPU__in300-out100.json"]
    assert all(r["steps"] and r["profile"]["tool"].startswith("vllm bench serve") for r in results)
    met = sorted(r["profile"]["rps"] for r in results if r["profile"]["rps"] > 0)
    # the capacity model fitted to what met the SLO, its error shown before and after
    assert (fit is None) == (not met)
    if fit:
        assert sorted(p["measured_rps"] for p in fit["points"]) == met and fit["error_after"] <= fit["error_before"]

    plan = fleet.cli("plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr[-2000:]
    capacity = json.loads(plan.stdout)["capacity"][0]
    assert [(b["input_tokens"], b["rps"]) for b in capacity["by_size"]] == \
        [(64, results[0]["profile"]["rps"]), (300, results[1]["profile"]["rps"])]
