"""The bundled calibration and the docs table are what the calibration script produces."""

from __future__ import annotations

import json

import pytest

from orchestrator.profiles import calibrate
from orchestrator.profiles.perf_model import calibration_path
from orchestrator.settings import load_settings


@pytest.fixture(scope="module")
def fresh():
    source = load_settings().shared_data
    if not (source / calibrate.SPLITWISE_FILE).exists():
        pytest.skip(f"shared data not present at {source}: cannot recalibrate")
    return calibrate.calibrate(source)


def test_bundled_constants_match_a_fresh_fit(fresh):
    content, _ = fresh
    bundled = json.loads(calibration_path().read_text(encoding="utf-8"))
    assert _nested_close(bundled["constants"], content["constants"])
    assert bundled["fit"]["error_by_gpu"] == content["fit"]["error_by_gpu"]


def test_docs_table_matches_a_fresh_fit(fresh):
    _, table = fresh
    doc = calibrate.DOCS_FILE.read_text(encoding="utf-8")
    assert calibrate.replace_generated_section(doc, table) == doc


def test_fit_beats_the_starting_guess(fresh):
    content, _ = fresh
    assert content["fit"]["error_by_gpu"]["all"]["median_abs_pct"] < 20


def test_replace_generated_section_keeps_the_prose():
    doc = f"intro\n{calibrate.TABLE_BEGIN}\nold\n{calibrate.TABLE_END}\noutro\n"
    assert calibrate.replace_generated_section(doc, "new") == f"intro\n{calibrate.TABLE_BEGIN}\nnew\n{calibrate.TABLE_END}\noutro\n"
    with pytest.raises(ValueError):
        calibrate.replace_generated_section("no markers", "new")


def _nested_close(a: dict, b: dict) -> bool:
    return all(
        _nested_close(a[k], b[k]) if isinstance(a[k], dict) else a[k] == pytest.approx(b[k], rel=1e-6)
        for k in a
    ) and a.keys() == b.keys()
