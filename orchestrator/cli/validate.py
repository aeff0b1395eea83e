"""`orchestrator validate`: check a spec against the catalogs and show what the planner will weigh."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from orchestrator.cli.catalog import load_catalog
from orchestrator.cli.common import EnvOption, FormatOption, OutputFormat, SpecOption, console, print_json, spec_path

if TYPE_CHECKING:
    from orchestrator.inputs import CapacityInput, FleetInputs


def validate(env: EnvOption = None, spec: SpecOption = None, output: FormatOption = OutputFormat.table) -> None:
    """Validate a fleet spec (--env NAME or --spec PATH) and show the plan inputs.

    Exit 0 when valid; exit 2 with every problem (file:line: path: what is wrong)
    otherwise. Nothing is written either way.
    """
    from orchestrator.inputs import load_inputs  # loads the latency and capacity models: only when needed

    path = spec_path(env, spec)
    fleet, inputs = load_inputs(path, load_catalog())
    if output is OutputFormat.json:
        print_json({"environment": inputs.environment, "valid": True, "file": str(path), "inputs": inputs.to_dict()})
        return
    render_inputs(inputs)
    console.print(f"[green]✓[/] {path} is valid: {len(fleet.pools)} pools, {len(fleet.models)} models, "
                  f"{len(fleet.demand)} demand entries.")


def _capacity_cell(c: CapacityInput | None) -> str:
    if c is None:
        return "—"
    gpus = f"{c.gpus_per_replica} GPU{'s' if c.gpus_per_replica > 1 else ''}"
    if c.rps_per_replica == 0:
        return f"[yellow]SLO unmet ({gpus}, {c.binding})[/]"
    return f"{c.rps_per_replica:.2f} ({gpus}{', ' + c.source if c.source != 'estimate' else ''})"


def render_inputs(inputs: FleetInputs) -> None:
    """Rich tables of the resolved pools, replica capacity and user-to-pool latency."""
    pools = Table(title=f"Pools of '{inputs.environment}'", header_style="bold")
    for column in ("pool", "provider", "region/zone", "GPUs/node", "capacity", "nodes", "$/node-h", "$/GPU-h", "price from"):
        pools.add_column(column, justify="right" if column.startswith(("$", "GPUs", "nodes")) else "left")
    for p in inputs.pools:
        pools.add_row(p.pool, p.provider, p.zone or p.region, f"{p.gpus_per_node}x {p.gpu}", p.capacity,
                      f"{p.min_nodes}–{p.max_nodes}", f"{p.cost_per_node_hour:,.3f}",
                      f"{p.cost_per_node_hour / p.gpus_per_node:,.3f}", p.price_source)
    console.print(pools)

    capacity = Table(title="Replica capacity within each model's SLO (requests/s per replica)", header_style="bold")
    capacity.add_column("model")
    pool_names = [p.pool for p in inputs.pools]
    for name in pool_names:
        capacity.add_column(name, justify="right")
    cells = {(c.model, c.pool): c for c in inputs.capacity}
    for m in inputs.models:
        row = []
        for name in pool_names:
            c = cells.get((m.model, name))
            row.append(_capacity_cell(c))
        capacity.add_row(m.model, *row)
    console.print(capacity)
    console.print("[dim]— not allowed (residency) or does not fit the pool's nodes[/]")

    latency = Table(title="RTT from user regions to pools, ms (* = estimated, not measured)", header_style="bold")
    latency.add_column("user region")
    for name in pool_names:
        latency.add_column(name, justify="right")
    rtts = {(l.region, l.pool): l for l in inputs.latency}
    for region in dict.fromkeys(d.region for d in inputs.demand):
        latency.add_row(region, *[f"{rtts[region, n].rtt_ms:.0f}{'*' if rtts[region, n].source != 'measured' else ''}" for n in pool_names])
    console.print(latency)

    demand = Table(title="Demand", header_style="bold")
    for column in ("model", "region", "req/s", "in tokens", "out tokens", "max RTT ms"):
        demand.add_column(column, justify="left" if column in ("model", "region") else "right")
    slo = {m.model: m for m in inputs.models}
    for d in inputs.demand:
        demand.add_row(d.model, d.region, f"{d.rps:g}", str(d.input_tokens), str(d.output_tokens), f"{slo[d.model].max_rtt_ms:g}")
    console.print(demand)
