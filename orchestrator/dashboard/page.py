"""The dashboard page: one self-contained HTML document (inline CSS and SVG) rendered from a `SpendSummary`,
and, when served live, a `ServingSummary` (latency against the SLO, queue, KV cache, rate against the plan).

The dashboard serves it live (reloading itself) and `spend report --html` writes the spend part
as a file. A Content-Security-Policy forbids every external load, so a page that
works here works offline, in a mail attachment, or behind a proxy.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import PurePath

from orchestrator.dashboard.charts import Chart, bars, count, percent, share_bars, stacked_area, usd
from orchestrator.dashboard.serving import ServingRow, ServingSummary
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
main > h2 { grid-column: 1 / -1; margin: 12px 0 0; font-size: 18px; }
footer { padding: 0 28px 24px; color: var(--muted); font-size: 12px; }
"""


def render_page(summary: SpendSummary, refresh_s: int = 0, serving: ServingSummary | None = None) -> str:
    """The whole document; `refresh_s` > 0 makes it reload itself (the live dashboard); `serving` adds its part."""
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
{_serving(serving) if serving is not None else ""}
</main>
<footer>Cost = nodes × the price in force (catalog or spec; on-prem amortized from the spec's cost_per_hour), accrued per hour
from the applied placements. Tokens from the replicas' vLLM counters. Billed from imported FOCUS exports.{_SERVING_FOOTER if serving is not None else ""}</footer>
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


_SERVING_FOOTER = (" Latency, queue and KV cache from the replicas' vLLM /metrics (quantiles from the histograms, as "
                   "Prometheus' histogram_quantile); SLO and planned rate from the latest plan; replays from the state database.")
REPLAY_ATTAINMENT_TARGET = 0.95  # a p95 SLO: 95 % of requests within it


def _serving(s: ServingSummary) -> str:
    """The serving part: latency (with each model's SLO), request rate against the plan, queue, KV cache, replays."""
    live = s.rows
    replays = [(view, m) for view in s.replays[:1] for m in view.report.models]  # the latest replay, per model
    slo = {t.model: t for t in s.targets}
    names = [_row_name(r) for r in live] + [f"{m.model} · replay {_when(v.started_at)}" for v, m in replays]

    def latency(p50: str, p95: str, target: str) -> tuple[dict[str, list[float | None]], list[float | None]]:
        series = {"p50": [getattr(r, p50) for r in live] + [getattr(m, p50) for _, m in replays],
                  "p95": [getattr(r, p95) for r in live] + [getattr(m, p95) for _, m in replays]}
        targets = [getattr(slo[r.model], target) if r.model in slo else None for r in live]
        return series, targets + [getattr(m, "slo_" + target) for _, m in replays]

    ttft, ttft_slo = latency("ttft_p50_ms", "ttft_p95_ms", "ttft_p95_ms")
    tpot, tpot_slo = latency("tpot_p50_ms", "tpot_p95_ms", "tpot_p95_ms")
    window = _window(live)
    note = _scrape_note(s)
    cards = [
        _card("ttft", "Time to first token, p50 and p95", f"Per pool (its replicas' histograms added) and per replica, {window}; "
              "then the latest replay per model. Dashed: the model's SLO on p95.",
              bars(names, ttft, "time to first token", fmt=_ms, targets=ttft_slo, target_label="SLO p95"), note),
        _card("tpot", "Time per output token, p50 and p95", f"Per request (vLLM's request_time_per_output_token), {window}; "
              "then the latest replay. Dashed: the model's SLO on p95.",
              bars(names, tpot, "time per output token", fmt=_ms, targets=tpot_slo, target_label="SLO p95")),
        _card("request-rate", "Request rate against the plan", f"Finished requests/s {window} (a replay: offered); "
              "beside what the latest plan routes to the pool and what its replicas there sustain within the SLO.",
              _rates(s, live, replays)),
        _card("queue", "Requests waiting and running", "Now, per pool (summed) and per replica: a queue that stays "
              "above zero is latency the SLO pays for.", bars([_row_name(r) for r in live],
                                                             {"waiting": [r.waiting for r in live],
                                                              "running": [r.running for r in live]},
                                                             "requests waiting and running", fmt=_number)),
        _card("kv-cache", "KV-cache use", "Now, per pool (mean of its replicas) and per replica; near 100 % vLLM "
              "preempts or queues requests.", bars([_row_name(r) for r in live], {"KV cache": [r.kv_cache_use for r in live]},
                                                   "KV-cache use", fmt=percent, max_value=1.0)),
        _card("replay-attainment", "Replays: requests within the SLO", "Share of each model's replayed requests within "
              "its TTFT and TPOT SLO, newest first (orchestrator replay). Dashed: 95 %.", _attainment(s), _replay_table(s)),
    ]
    return "<h2>Serving against the SLO</h2>" + "".join(cards)


def _row_name(r: ServingRow) -> str:
    if r.replica is None:
        return f"{r.model} · {r.pool}" + (f" ({r.replicas} replicas)" if r.replicas > 1 else "")
    return "↳ " + r.replica.split("://", 1)[-1]


def _window(rows: list[ServingRow]) -> str:
    windows = [r.window_s for r in rows]
    if not rows or None in windows:
        return "since each replica started (the next refresh shows the window between the two)"
    return f"over the last {max(w for w in windows if w is not None):.0f} s"


def _scrape_note(s: ServingSummary) -> str:
    if s.replicas_known == 0:
        return "<p>No ready replica is recorded for this environment (<code>orchestrator up</code>).</p>"
    if s.unreachable:
        return f"<p>Not answering /metrics: {escape(', '.join(s.unreachable))}.</p>"
    return ""


def _rates(s: ServingSummary, live: list[ServingRow], replays: list) -> Chart:
    promise = {(p.model, p.pool): p for p in s.promises}
    pools = [r for r in live if r.replica is None]
    planned_only = [p for p in s.promises if not any((r.model, r.pool) == (p.model, p.pool) for r in pools)]
    names = ([_row_name(r) for r in pools] + [f"{p.model} · {p.pool} (no data)" for p in planned_only]
             + [f"{m.model} · replay {_when(v.started_at)}" for v, m in replays])
    plans = [promise.get((r.model, r.pool)) for r in pools] + planned_only
    series = {"measured": [r.requests_per_s for r in pools] + [None] * len(planned_only) + [m.offered_rps for _, m in replays],
              "planned": [p.planned_rps if p else None for p in plans] + [m.plan.planned_rps if m.plan else None for _, m in replays],
              "capacity": [p.capacity_rps if p else None for p in plans] + [m.plan.capacity_rps if m.plan else None for _, m in replays]}
    return bars(names, series, "request rate against the plan", fmt=lambda v: f"{v:.2f} req/s")


def _attainment(s: ServingSummary) -> Chart:
    rows = [(v, m) for v in s.replays for m in v.report.models]
    return bars([f"{m.model} · {_when(v.started_at)} ×{v.report.scale:g}" for v, m in rows],
                {"within SLO": [m.attainment for _, m in rows]}, "replayed requests within the SLO", fmt=percent,
                max_value=1.0, targets=[REPLAY_ATTAINMENT_TARGET] * len(rows), target_label="95 %")


def _replay_table(s: ServingSummary) -> str:
    if not s.replays:
        return "<p>No replay stored yet (<code>orchestrator replay --trace FILE</code>).</p>"
    body = "".join(
        f"<tr><td>{_when(v.started_at)}</td><td>{escape(m.model)}</td><td>{escape(PurePath(v.trace).name)} ×{v.report.scale:g}</td>"
        f"<td>{m.requests}</td>"
        f"<td>{m.errors}</td><td>{_ms_or_dash(m.ttft_p95_ms)} / {_ms(m.slo_ttft_p95_ms)}</td>"
        f"<td>{_ms_or_dash(m.tpot_p95_ms)} / {_ms(m.slo_tpot_p95_ms)}</td><td>{percent(m.attainment)}</td>"
        f'<td class="{"ok" if m.meets_slo else "over"}">{"met" if m.meets_slo else "missed"}</td></tr>'
        for v in s.replays for m in v.report.models)
    return ("<table><thead><tr><th>started</th><th>model</th><th>trace × scale</th><th>requests</th><th>errors</th>"
            "<th>TTFT p95 / SLO</th><th>TPOT p95 / SLO</th><th>within</th><th>SLO</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _ms_or_dash(value: float | None) -> str:
    return "—" if value is None else _ms(value)


def _number(value: float) -> str:
    return f"{value:g}"
