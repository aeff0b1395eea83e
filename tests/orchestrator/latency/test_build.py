"""The maintainer build: its cleaning rules, and that bundled data and docs match its output."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.latency import build, load_latency_model
from orchestrator.latency.model import MeasuredPair, bundled_data, bundled_pairs
from orchestrator.latency.regions import load_regions
from orchestrator.settings import load_settings

REPO = Path(__file__).resolve().parents[3]


def probe(src: str, dst: str, avg: float, spread: float = 0.2, src_tier: str = "PREMIUM", dst_tier: str = "PREMIUM") -> dict[str, str]:
    return {"src_region": src, "dst_region": dst, "src_tier": src_tier, "dst_tier": dst_tier,
            "min_rtt": str(avg - spread / 2), "avg_rtt": str(avg), "max_rtt": str(avg + spread / 2)}


def test_symmetrise_keeps_usable_premium_probes_per_region_and_averages_directions() -> None:
    probes = [
        probe("aws:us-east-1", "gcp:us-east4-a", 2.0),
        probe("gcp:us-east4-a", "aws:us-east-1", 3.0),
        probe("aws:us-east-1", "azure:eastus", 1.8),
        probe("azure:eastus", "aws:us-east-1", 90.0, spread=200.0),  # replies of other targets mixed in
        probe("aws:us-east-1", "azure:westus", 60.0, src_tier="PREMIUM", dst_tier="STANDARD"),
        probe("gcp:us-east4-a", "gcp:us-east4-a", 1.4, src_tier="STANDARD"),  # only same-zone probes exist
        probe("gcp:us-east4-a", "gcp:us-east4-a", 70.0, spread=150.0),
    ]
    assert build.symmetrise(probes, load_regions()) == [
        MeasuredPair("aws:us-east-1", "azure:eastus", 1.8, 1),
        MeasuredPair("aws:us-east-1", "gcp:us-east4", 2.5, 2),
        MeasuredPair("gcp:us-east4", "gcp:us-east4", 1.4, 1),
    ]


def test_stated_coefficients_and_error_are_reproduced_from_the_bundled_pairs() -> None:
    regions, stated = load_regions(), load_latency_model().fallback
    refit = build.fit_fallback(bundled_pairs(), regions)
    assert (refit.intercept_ms, refit.ms_per_km, refit.fitted_pairs) == (stated.intercept_ms, stated.ms_per_km, stated.fitted_pairs)
    assert build.cross_validate(bundled_pairs(), regions) == stated.error
    assert stated.error[0].model == "anchored (used)" and stated.error[0].mae_ms < stated.error[-2].mae_ms


def test_docs_quote_the_current_error_table() -> None:
    table = build.error_table(load_latency_model().fallback.error)
    assert table in (REPO / "docs" / "latency.md").read_text(encoding="utf-8")


def test_bundled_data_is_what_the_build_makes_from_the_shared_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    source = load_settings().shared_data / "latency"
    if not (source / build.PAIRS_FILE).is_file():
        pytest.skip(f"shared data not present ({build.PAIRS_FILE} under settings.shared_data/latency)")
    monkeypatch.setattr(build, "DATA_DIR", tmp_path)
    assert build.main(["--source", str(source)]) == 0
    for name in ("rtt.csv", "fallback.json"):
        assert (tmp_path / name).read_text(encoding="utf-8") == bundled_data(name), f"{name} is stale: rerun the build"
    assert build.error_table(load_latency_model().fallback.error) in capsys.readouterr().out


def test_build_without_source_data_fails_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(build, "DATA_DIR", tmp_path / "out")
    assert build.main(["--source", str(tmp_path)]) == 2
    assert "To fix:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
