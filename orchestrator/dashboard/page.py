"""The spend page: one self-contained HTML document (inline CSS and SVG) rendered from a `SpendSummary`.

The dashboard serves it live (reloading itself) and `spend report --html` writes the same
document to a file. A Content-Security-Policy forbids every external load, so a page that
works here works offline, in a mail attachment, or behind a proxy.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from orchestrator.dashboard.charts import Chart, bars, count, percent, share_bars, stacked_area, usd
from orchestrator.ledger.summary import SpendSummary

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
PROVIDER_LABELS = {"aws": "AWS", "gcp": "GCP", "azure": "Azure", "onprem": "on-prem", "local": "local"}
CAPACITY_LABELS = {"on_demand": "on-demand", "spot": "spot", "reserved": "reserved", "owned": "owned"}
MOST_POOLS = 20
RECENT_RECONCILED = 14

STYLE = """
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6475; --line: #e3e6ec; --card: #fff; --bg: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { padding: 20px 28px 8px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; color: var(--muted); }
main { padding: 8px 28px 28px; display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
.kpis { grid-column: 1 / -1; display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; }
.kpi, .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.kpi b { display: block; font-size: 22px; }
.kpi span { color: var(--muted); font-size: 12px; }
.card h2 { margin: 0 0 2px; font-size: 16px; }
.card > p { margin: 0 0 8px; color: var(--muted); font-size: 12px; }
.card svg { display: block; font-family: inherit; fill: var(--ink); }
.empty { padding: 28px 0; text-align: center; color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 12px; margin-top: 8px; }
th, td { text-align: right; padding: 3px 6px; border-bottom: 1px solid var(--line); }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
.ok { color: #00734f; } .over, .under, .unplanned { color: #b34700; } .unbilled { color: var(--muted); }
footer { padding: 0 28px 24px; color: var(--muted); font-size: 12px; }
"""


def render_page(summary: SpendSummary, refresh_s: int = 0) -> str:
    """The whole document; `refresh_s` > 0 makes it reload itself (the live dashboard)."""
    reload = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s > 0 else ""
    window = f"{_when(summary.start)} – {_when(summary.end)} UTC, per {summary.bucket}"
    sections = [
        _card("spend-over-time", "Spend by provider over time", f"Accrued cost per {summary.bucket}, stacked by provider.",
              _spend_over_time(summary)),
        _card("cost-per-million-tokens", "$ per 1M tokens by provider and model",
              "Fully loaded: each pool's cost split over its models by the GPUs they hold; prompt + generated tokens.",
              _per_million(summary)),
        _card("planned-vs-billed", "Planned vs billed", "Ledger cost against FOCUS BilledCost tagged env="
              f"{summary.environment}, over the window.", _planned_vs_billed(summary), _reconciliation_table(summary)),
        _card("capacity-share", "Spot vs on-demand vs owned", "Share of cost and of GPU-hours by capacity market.",
              _capacity(summary)),
        _card("savings", "Savings against one cloud", "This placement against baseline (a): one provider, one GPU type, "
              "all on-demand.", _savings(summary), _savings_note(summary)),
        _card("utilization", "GPU utilization per pool", "GPU-hours held by replicas over GPU-hours provisioned"
              + (f" (the {MOST_POOLS} costliest pools)." if len(summary.utilization) > MOST_POOLS else "."),
              _utilization(summary)),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">{reload}
<link rel="icon" href="data:,">
<title>gpufleet spend · {escape(summary.environment)}</title>
<style>{STYLE}</style></head>
<body>
<header><h1>gpufleet spend · {escape(summary.environment)}</h1><p>{escape(window)} · generated {_when(dt.datetime.now(dt.UTC))} UTC</p></header>
<main>
{_kpis(summary)}
{"".join(sections)}
</main>
<footer>Cost = nodes × the price in force (catalog or spec; on-prem amortized from the spec's cost_per_hour), accrued per hour
from the applied placements. Tokens from the replicas' vLLM counters. Billed from imported FOCUS exports.</footer>
</body></html>
"""


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def _provider(name: str) -> str:
    return PROVIDER_LABELS.get(name, name)


def _kpis(s: SpendSummary) -> str:
    saving = "—"
    if s.savings and s.savings.saving_ratio is not None:
        saving = percent(s.savings.saving_ratio)
    items = [
        (usd(s.cost_usd), "spend in the window"),
        (usd(s.cost_per_hour_now) + "/h", "running now"),
        (count(s.prompt_tokens + s.generation_tokens), "tokens served"),
        ("—" if s.usd_per_million_tokens is None else usd(s.usd_per_million_tokens), "per 1M tokens"),
        (saving, "saved against one cloud"),
    ]
    return '<section class="kpis">' + "".join(f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>'
                                              for v, k in items) + "</section>"


def _card(key: str, title: str, note: str, chart: Chart, extra: str = "") -> str:
    figure = chart.svg or '<div class="empty">no data in this window</div>'
    return (f'<section class="card" data-chart="{key}" data-points="{chart.points}"><h2>{escape(title)}</h2>'
            f"<p>{escape(note)}</p>{figure}{extra}</section>")


def _spend_over_time(s: SpendSummary) -> Chart:
    providers = sorted({p.provider for p in s.over_time})
    index = {b: i for i, b in enumerate(s.buckets)}
    series = {_provider(p): [0.0] * len(s.buckets) for p in providers}
    for point in s.over_time:
        if point.bucket in index:
            series[_provider(point.provider)][index[point.bucket]] += point.cost_usd
    fmt = "%m-%d %H:00" if s.bucket == "hour" else "%b %d"
    return stacked_area([b.strftime(fmt) for b in s.buckets], series, "spend by provider over time")


def _per_million(s: SpendSummary) -> Chart:
    rows = [t for t in s.per_million_tokens if t.usd_per_million_tokens is not None]
    models = sorted({t.model for t in rows})
    providers = sorted({t.provider for t in rows})
    value = {(t.model, t.provider): t.usd_per_million_tokens for t in rows}
    return bars(models, {_provider(p): [value.get((m, p)) for m in models] for p in providers}, "$ per million tokens")


def _planned_vs_billed(s: SpendSummary) -> Chart:
    billed = [b for b in s.billed if b.ledger_usd or b.billed_usd]
    return bars([_provider(b.provider) for b in billed], {"ledger (planned)": [b.ledger_usd for b in billed],
                                                          "billed": [b.billed_usd for b in billed]}, "planned vs billed")


def _reconciliation_table(s: SpendSummary) -> str:
    rows = [r for r in s.reconciliation if r.status != "unbilled"][-RECENT_RECONCILED:]
    untagged = sum(b.untagged_usd for b in s.billed)
    note = f"<p>Billed but tagged to no environment in the window: {usd(untagged)}.</p>" if untagged else ""
    if not rows:
        return note + "<p>No imported bill covers this window yet (<code>orchestrator spend import FILE</code>).</p>"
    body = "".join(f'<tr><td>{r.day}</td><td>{escape(_provider(r.provider))}</td><td>{usd(r.ledger_usd)}</td>'
                   f'<td>{usd(r.billed_usd or 0.0)}</td><td>{usd(r.difference_usd or 0.0)}</td>'
                   f'<td class="{r.status}">{r.status}</td></tr>' for r in rows)
    return (note + "<table><thead><tr><th>day</th><th>provider</th><th>ledger</th><th>billed</th><th>difference</th>"
            f"<th>status</th></tr></thead><tbody>{body}</tbody></table>")


def _capacity(s: SpendSummary) -> Chart:
    return share_bars({"cost": {CAPACITY_LABELS.get(c.capacity, c.capacity): c.cost_usd for c in s.capacity},
                       "GPU-hours": {CAPACITY_LABELS.get(c.capacity, c.capacity): c.gpu_hours for c in s.capacity}},
                      "capacity market shares")


def _savings(s: SpendSummary) -> Chart:
    if s.savings is None or s.savings.baseline_cost_per_hour is None:
        return Chart("", 0)
    return bars(["one cloud, on-demand (a)", "this placement"],
                {"$/h": [s.savings.baseline_cost_per_hour, s.savings.current_cost_per_hour]},
                "cost per hour against the single-cloud baseline", fmt=lambda v: usd(v) + "/h")


def _savings_note(s: SpendSummary) -> str:
    if s.savings is None:
        return "<p>No placement recorded yet (<code>orchestrator spend record</code>).</p>"
    if s.savings.baseline_cost_per_hour is None:
        return f"<p>No single-cloud baseline: {escape(s.savings.detail or 'not computed')}.</p>"
    ratio = "" if s.savings.saving_ratio is None else f"{percent(s.savings.saving_ratio)} less per hour; "
    return (f"<p>{ratio}{usd(s.savings.saved_usd)} saved over the window. Baseline: "
            f"{escape(s.savings.detail)}.</p>")


def _utilization(s: SpendSummary) -> Chart:
    pools = s.utilization[:MOST_POOLS]
    return bars([p.pool for p in pools], {"utilization": [p.utilization for p in pools]}, "GPU utilization per pool",
                fmt=percent, max_value=1.0)
