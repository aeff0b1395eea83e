"""Charts as inline SVG, drawn on the server: the page needs no script, no font, no file from anywhere.

Each chart is a `Chart`: its SVG and how many data points it draws (the page labels its
figure with that count, and the browser test checks every chart has some). Marks carry
class `mark` and a `<title>` (the browser shows it on hover). Colours are the Okabe-Ito
palette, distinguishable with common colour-vision deficiencies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
TARGET = "#D55E00"  # target lines (an SLO): vermilion, dashed
WIDTH = 720
CHAR_W = 6.6  # a label character's mean width at FONT px, for the space bar labels take
MAX_LABEL = 44  # longer bar labels are cut (their <title> has them whole)
FONT = 12


@dataclass(frozen=True)
class Chart:
    svg: str
    points: int


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above `value` (an axis end)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= value * (1 - 1e-9))


def usd(value: float) -> str:
    """$1.23, $123, $12.3k, $1.2M, −$5.67: short money for labels."""
    sign, value = ("−" if value < 0 else ""), abs(value)
    if value >= 1e6:
        return f"{sign}${value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{sign}${value / 1e3:.1f}k"
    if value >= 100:
        return f"{sign}${value:,.0f}"
    return f"{sign}${value:,.2f}"


def count(value: float) -> str:
    """1.2k, 3.4M, 5.5B: short counts for labels."""
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= divisor:
            return f"{value / divisor:.1f}{suffix}"
    return f"{value:.0f}"


def percent(value: float) -> str:
    return f"{value:.0%}"


def _svg(height: int, label: str, body: list[str]) -> str:
    return (f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg" font-size="{FONT}">' + "".join(body) + "</svg>")


def _legend(names: Sequence[str], y: float, x: float = 8) -> list[str]:
    out = []
    for i, name in enumerate(names):
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour(i)}"/>'
                   f'<text x="{x + 14:.1f}" y="{y:.1f}">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return out


def stacked_area(x_labels: Sequence[str], series: dict[str, Sequence[float]], label: str,
                 fmt: Callable[[float], str] = usd) -> Chart:
    """One filled band per series, stacked, over evenly spaced x (time buckets)."""
    height, left, right, top, bottom = 300, 64, 12, 28, 44
    n = len(x_labels)
    names = list(series)
    points = sum(1 for values in series.values() for v in values if v)
    if n == 0 or points == 0:
        return Chart("", 0)
    totals = [sum(series[s][i] for s in names) for i in range(n)]
    top_value = nice_max(max(totals))
    plot_w, plot_h = WIDTH - left - right, height - top - bottom

    def px(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def py(v: float) -> float:
        return top + plot_h * (1 - v / top_value)

    body = _axis_y(top_value, left, right, top, plot_h, fmt)
    base = [0.0] * n
    for k, name in enumerate(names):
        upper = [base[i] + series[name][i] for i in range(n)]
        outline = [(px(i), py(upper[i])) for i in range(n)] + [(px(i), py(base[i])) for i in reversed(range(n))]
        if n == 1:  # a single bucket: a bar, not a line of zero width
            outline = [(px(0) - 6, py(upper[0])), (px(0) + 6, py(upper[0])), (px(0) + 6, py(base[0])), (px(0) - 6, py(base[0]))]
        total = sum(series[name])
        body.append(f'<polygon class="mark" fill="{colour(k)}" fill-opacity="0.85" stroke="{colour(k)}" '
                    f'points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in outline)}">'
                    f"<title>{escape(name)}: {fmt(total)} over the window</title></polygon>")
        base = upper
    for i in sorted({round(j * (n - 1) / 5) for j in range(6)} if n > 1 else {0}):
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        body.append(f'<text x="{px(i):.1f}" y="{height - bottom + 16}" text-anchor="{anchor}">{escape(x_labels[i])}</text>')
    body.extend(_legend(names, height - 8))
    return Chart(_svg(height, label, body), points)


def _axis_y(top_value: float, left: float, right: float, top: float, plot_h: float, fmt: Callable[[float], str]) -> list[str]:
    out = []
    for j in range(5):
        value = top_value * j / 4
        y = top + plot_h * (1 - j / 4)
        out.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(value))}</text>')
    return out


def bars(categories: Sequence[str], series: dict[str, Sequence[float | None]], label: str,
         fmt: Callable[[float], str] = usd, max_value: float | None = None,
         targets: Sequence[float | None] = (), target_label: str = "target") -> Chart:
    """Horizontal bars: one group per category, one bar per series (None: no bar, e.g. no tokens).

    `targets` (one per category, None for none) draws a dashed line across the category's bars
    at that value (class `target`), e.g. the SLO a latency must stay under.
    """
    names = list(series)
    points = sum(1 for values in series.values() for v in values if v is not None)
    if not categories or points == 0:
        return Chart("", 0)
    fits = min(MAX_LABEL, max(len(c) for c in categories))  # characters of the longest label shown whole
    left, right, top, bar_h, gap = max(190, 16 + round(CHAR_W * fits)), 70, 8, 14, 10
    group_h = bar_h * len(names) + gap
    has_targets = any(t is not None for t in targets)
    legend_h = 22 if len(names) > 1 or has_targets else 0
    height = top + group_h * len(categories) + legend_h + 4
    biggest = max((v for values in series.values() for v in values if v is not None), default=0.0)
    scale_max = max_value or nice_max(max([biggest, *(t for t in targets if t is not None)]))
    plot_w = WIDTH - left - right
    body = []
    for c, category in enumerate(categories):
        y0 = top + c * group_h
        shown = category if len(category) <= fits else category[:fits - 1] + "…"
        body.append(f'<text x="{left - 8}" y="{y0 + group_h / 2:.1f}" text-anchor="end"><title>{escape(category)}</title>'
                    f"{escape(shown)}</text>")
        for k, name in enumerate(names):
            value = series[name][c]
            if value is None:
                continue
            w = max(1.0, plot_w * min(value, scale_max) / scale_max) if value > 0 else 0.0
            y = y0 + k * bar_h
            body.append(f'<rect class="mark" x="{left}" y="{y:.1f}" width="{w:.1f}" height="{bar_h - 2}" fill="{colour(k)}">'
                        f"<title>{escape(category)} · {escape(name)}: {escape(fmt(value))}</title></rect>"
                        f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 4:.1f}">{escape(fmt(value))}</text>')
        target = targets[c] if c < len(targets) else None
        if target is not None:
            x = left + plot_w * min(target, scale_max) / scale_max
            body.append(f'<line class="target" x1="{x:.1f}" x2="{x:.1f}" y1="{y0 - 3:.1f}" y2="{y0 + bar_h * len(names) + 1:.1f}" '
                        f'stroke="{TARGET}" stroke-width="2" stroke-dasharray="4 3"><title>{escape(category)} · '
                        f"{escape(target_label)}: {escape(fmt(target))}</title></line>")
    if len(names) > 1 or has_targets:
        legend = _legend(names, height - 8, left) if len(names) > 1 else []
        x = left + sum(24 + 7 * len(name) for name in names) if len(names) > 1 else left
        legend.append(f'<line x1="{x:.1f}" x2="{x + 16:.1f}" y1="{height - 12:.1f}" y2="{height - 12:.1f}" stroke="{TARGET}" '
                      f'stroke-width="2" stroke-dasharray="4 3"/><text x="{x + 20:.1f}" y="{height - 8:.1f}">'
                      f"{escape(target_label)}</text>" if has_targets else "")
        body.extend(legend)
    return Chart(_svg(height, label, body), points)


def share_bars(rows: dict[str, dict[str, float]], label: str) -> Chart:
    """One 100% bar per row, split into its parts (e.g. cost and GPU-hours by capacity market)."""
    parts = sorted({p for values in rows.values() for p in values})
    points = sum(1 for values in rows.values() for v in values.values() if v > 0)
    if points == 0:
        return Chart("", 0)
    left, right, top, bar_h = 110, 12, 8, 30
    height = top + len(rows) * (bar_h + 10) + 26
    plot_w = WIDTH - left - right
    body = []
    for r, (row, values) in enumerate(rows.items()):
        y = top + r * (bar_h + 10)
        total = sum(values.values())
        body.append(f'<text x="{left - 8}" y="{y + bar_h / 2 + 4:.1f}" text-anchor="end">{escape(row)}</text>')
        x = float(left)
        for k, part in enumerate(parts):
            share = values.get(part, 0.0) / total if total else 0.0
            if share <= 0:
                continue
            w = plot_w * share
            body.append(f'<rect class="mark" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour(k)}">'
                        f"<title>{escape(row)} · {escape(part)}: {percent(share)}</title></rect>")
            if w > 34:
                body.append(f'<text x="{x + w / 2:.1f}" y="{y + bar_h / 2 + 4:.1f}" text-anchor="middle" fill="#fff">{percent(share)}</text>')
            x += w
    body.extend(_legend(parts, height - 6, left))
    return Chart(_svg(height, label, body), points)
