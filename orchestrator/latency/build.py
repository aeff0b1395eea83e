"""Maintainer script: derive the latency catalog's bundled data from Skyplane's ping grid.

    python -m orchestrator.latency.build [--source DIR]

DIR defaults to `<settings.shared_data>/latency`. Writes `data/rtt.csv` and
`data/fallback.json` next to this module and prints the fallback's error table that
docs/latency.md quotes. Deterministic: same source, same bytes (a test checks the bundled
files against a fresh build).

Derivation (why each step, see data/SOURCE.md):
* GCP zones collapse to their region; inter-region pairs use PREMIUM-tier probes only.
  Skyplane has no PREMIUM↔PREMIUM probe within a region, so self-pairs come from the GCP
  same-zone PREMIUM↔STANDARD probes.
* A directed probe is used only if max − min RTT ≤ MAX_PROBE_SPREAD_MS: many GCP-sourced
  probes mix in replies of other targets (min far below the speed-of-light floor, avg
  half-way to max), and averaging those would put e.g. 68 ms between two London regions.
* A pair's RTT is the mean of its usable directions; pairs with none are left out.
* Fallback: weighted least squares RTT ≈ a + b·km over the inter-region pairs, then the
  anchored estimate of model.py; error by cross-validation grouped by endpoint.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from statistics import fmean

import numpy as np

from orchestrator.latency.model import ErrorRow, FallbackModel, LatencyModel, MeasuredPair, pair_key
from orchestrator.latency.regions import RegionIndex, load_regions
from orchestrator.settings import load_settings

PAIRS_FILE = "skyplane_rtt_pairs_2022-04.csv"
DATA_DIR = Path(__file__).resolve().parent / "data"
MAX_PROBE_SPREAD_MS = 10.0
# Relative-error weights (1/max(rtt, 5 ms)): a 10 ms miss matters on a 20 ms path, not on a 250 ms one.
SHORT_PATH_MS = 5.0
ANCHOR_RADIUS_KM = 2000.0
ANCHOR_TOLERANCE_KM = 50.0
FOLDS = 5
SHUFFLES = 3
CO_LOCATED_KM = 50.0
VALIDATION = (f"{FOLDS}-fold cross-validation grouped by endpoint, {SHUFFLES} shuffles: each fold holds out a fifth "
              "of the measured regions and every pair touching them, refits on the rest (a pair whose ends fall in two folds is "
              "predicted in both); self-pairs excluded")


def read_probes(path: Path) -> list[dict[str, str]]:
    """The directed ping probes of Skyplane's latency grid, as raw CSV rows."""
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def symmetrise(probes: Iterable[dict[str, str]], regions: RegionIndex) -> list[MeasuredPair]:
    """Region-level, direction-free RTTs from the usable probes (rules in the module docstring)."""
    usable: dict[tuple[str, str], list[float]] = defaultdict(list)
    for probe in probes:
        a, b = regions.resolve(probe["src_region"]).key, regions.resolve(probe["dst_region"]).key
        premium = probe["src_tier"] == probe["dst_tier"] == "PREMIUM"
        spread = float(probe["max_rtt"]) - float(probe["min_rtt"])
        if (premium or a == b) and spread <= MAX_PROBE_SPREAD_MS:
            usable[pair_key(a, b)].append(float(probe["avg_rtt"]))
    return [MeasuredPair(a, b, round(fmean(rtts), 3), len(rtts)) for (a, b), rtts in sorted(usable.items())]


def fit_fallback(pairs: Sequence[MeasuredPair], regions: RegionIndex) -> FallbackModel:
    """Coefficients of RTT ≈ a + b·km by relative-error-weighted least squares (error left empty)."""
    between = [p for p in pairs if p.a != p.b]
    distance = np.array([regions.get(p.a).distance_km(regions.get(p.b)) for p in between])
    rtt = np.array([p.rtt_ms for p in between])
    weight = 1 / np.maximum(rtt, SHORT_PATH_MS)
    (intercept, slope), *_ = np.linalg.lstsq(np.c_[np.ones_like(distance), distance] * weight[:, None], rtt * weight, rcond=None)
    return FallbackModel(
        intercept_ms=float(f"{intercept:.5g}"), ms_per_km=float(f"{slope:.5g}"),
        anchor_radius_km=ANCHOR_RADIUS_KM, anchor_tolerance_km=ANCHOR_TOLERANCE_KM, fitted_pairs=len(between),
    )


def error_row(model: str, scope: str, measured: Sequence[float], estimated: Sequence[float]) -> ErrorRow:
    """MAE and absolute-percentage-error quantiles of estimates against measurements."""
    truth, guess = np.array(measured), np.array(estimated)
    ape = np.abs(guess - truth) / truth * 100
    return ErrorRow(
        model=model, scope=scope, predictions=len(truth), mae_ms=round(float(np.mean(np.abs(guess - truth))), 2),
        median_ape_pct=round(float(np.median(ape)), 1), p90_ape_pct=round(float(np.percentile(ape, 90)), 1),
    )


def cross_validate(pairs: Sequence[MeasuredPair], regions: RegionIndex) -> tuple[ErrorRow, ...]:
    """Held-out error of the anchored and distance-only estimates, plus distance-only in-sample."""
    between = [p for p in pairs if p.a != p.b]
    endpoints = sorted({key for p in between for key in (p.a, p.b)})
    measured, anchored, distance_only, gap_km = [], [], [], []
    for shuffle in range(SHUFFLES):
        order = np.random.default_rng(shuffle).permutation(len(endpoints))
        fold_of = {endpoints[i]: n % FOLDS for n, i in enumerate(order)}
        for fold in range(FOLDS):
            kept = [p for p in pairs if fold_of[p.a] != fold and fold_of[p.b] != fold]
            model = LatencyModel(kept, regions, fit_fallback(kept, regions))
            for pair in between:
                held_out = [regions.get(key) for key in (pair.a, pair.b) if fold_of[key] == fold]
                if not held_out:
                    continue
                a, b = regions.get(pair.a), regions.get(pair.b)
                measured.append(pair.rtt_ms)
                anchored.append(model.rtt(a, b).rtt_ms)
                distance_only.append(model.fallback.distance_rtt_ms(a.distance_km(b)))
                gap_km.append(max(model.nearest_anchor_km(place) for place in held_out))
    gaps = np.array(gap_km)
    slices = [
        (f"held-out region ≤ {CO_LOCATED_KM:g} km from a measured one", gaps <= CO_LOCATED_KM),
        (f"held-out region {CO_LOCATED_KM:g}–{ANCHOR_RADIUS_KM:g} km from the nearest measured one",
         (gaps > CO_LOCATED_KM) & (gaps <= ANCHOR_RADIUS_KM)),
        (f"held-out region > {ANCHOR_RADIUS_KM:g} km away (distance-only used)", gaps > ANCHOR_RADIUS_KM),
    ]
    truth, guess = np.array(measured), np.array(anchored)
    full = fit_fallback(pairs, regions)
    return (
        error_row("anchored (used)", "all held-out pairs", truth, guess),
        *(error_row("anchored (used)", scope, truth[mask], guess[mask]) for scope, mask in slices if mask.any()),
        error_row("distance only", "all held-out pairs", truth, distance_only),
        error_row("distance only", "in-sample (fitted on all pairs)", [p.rtt_ms for p in between],
                  [full.distance_rtt_ms(regions.get(p.a).distance_km(regions.get(p.b))) for p in between]),
    )


def render_rtt_csv(pairs: Iterable[MeasuredPair]) -> str:
    lines = ["a,b,rtt_ms,samples", *(f"{p.a},{p.b},{p.rtt_ms:.3f},{p.samples}" for p in pairs)]
    return "\n".join(lines) + "\n"


def build(source: Path, regions: RegionIndex) -> dict[str, str]:
    """The bundled files' contents (name → text) derived from the source directory."""
    pairs = symmetrise(read_probes(source / PAIRS_FILE), regions)
    fallback = fit_fallback(pairs, regions).model_copy(
        update={"validation": VALIDATION, "error": cross_validate(pairs, regions)})
    return {"rtt.csv": render_rtt_csv(pairs), "fallback.json": fallback.model_dump_json(indent=2) + "\n"}


def error_table(rows: Iterable[ErrorRow]) -> str:
    """The fallback's error as the Markdown table docs/latency.md quotes."""
    lines = ["| estimate | evaluated on | predictions | MAE (ms) | median APE | p90 APE |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r.model} | {r.scope} | {r.predictions} | {r.mae_ms:.2f} | {r.median_ape_pct:.1f}% | {r.p90_ape_pct:.1f}% |"
              for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.latency.build", description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=load_settings().shared_data / "latency",
                        help="directory holding Skyplane's latency CSVs (default: <GPUFLEET_SHARED_DATA>/latency)")
    args = parser.parse_args(argv)
    if not (args.source / PAIRS_FILE).is_file():
        print(f"error: {PAIRS_FILE} not found in {args.source}. To fix: pass --source or set GPUFLEET_SHARED_DATA.",
              file=sys.stderr)
        return 2
    files = build(args.source, load_regions())
    for name, text in files.items():
        (DATA_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {name} ({len(text.encode()):,} bytes)")
    print(error_table(FallbackModel.model_validate_json(files["fallback.json"]).error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
