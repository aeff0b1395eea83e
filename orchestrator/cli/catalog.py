"""`orchestrator catalog ...`: what GPUs cost where, and refreshing those prices."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from orchestrator.catalog.offers import CLOUD_PROVIDERS, PriceOffer
from orchestrator.catalog.price_catalog import PriceCatalog, load_price_catalog
from orchestrator.cli.common import FormatOption, OutputFormat, console, errors, print_json
from orchestrator.errors import CatalogError, InputError
from orchestrator.settings import load_settings

app = typer.Typer(help="GPU price catalog: show, filter, refresh from the clouds' price APIs.", no_args_is_help=True)

CAPACITIES = ("on_demand", "spot", "reserved")


def load_catalog() -> PriceCatalog:
    return load_price_catalog(load_settings().catalog_dir)


def _per_gpu(offer: PriceOffer, capacity: str) -> float:
    price = offer.price(capacity)
    return price / offer.gpu_count if price is not None else float("inf")


def offer_row(catalog: PriceCatalog, offer: PriceOffer) -> dict:
    """A catalog row as machine output: the offer plus its data-quality flags."""
    return {**offer.model_dump(mode="json"), "anomalies": catalog.anomalies(offer)}


@app.command()
def show(
    gpu: Annotated[str | None, typer.Option(help="GPU model, e.g. H100, A100-80GB, L4.")] = None,
    provider: Annotated[str | None, typer.Option(help="aws, gcp or azure.")] = None,
    region: Annotated[str | None, typer.Option(help="Region or zone, e.g. europe-west4, us-east-1.")] = None,
    instance_type: Annotated[str | None, typer.Option("--instance-type", help="Exact instance type.")] = None,
    capacity: Annotated[str, typer.Option(help="Sort and filter by this market: on_demand, spot or reserved.")] = "on_demand",
    limit: Annotated[int, typer.Option(help="Rows in the table (JSON output has all).", min=1)] = 40,
    output: FormatOption = OutputFormat.table,
) -> None:
    """List priced GPU instance types, cheapest GPU-hour first, with as-of dates and anomaly flags."""
    if capacity not in CAPACITIES:
        raise InputError(f"--capacity '{capacity}' is not a market; allowed: {', '.join(CAPACITIES)}")
    if provider is not None and provider not in CLOUD_PROVIDERS:
        raise InputError(f"--provider '{provider}' has no catalog; allowed: {', '.join(CLOUD_PROVIDERS)}")
    catalog = load_catalog()
    offers = [o for o in catalog.find(provider=provider, gpu=gpu, region=region, instance_type=instance_type)
              if o.price(capacity) is not None]
    offers.sort(key=lambda o: (_per_gpu(o, capacity), o.provider, o.region))
    if output is OutputFormat.json:
        print_json([offer_row(catalog, o) for o in offers])
        return
    table = Table(title=f"GPU offers, USD per hour (cheapest {capacity.replace('_', '-')} GPU-hour first; ! = flagged)",
                  header_style="bold", box=box.SIMPLE_HEAD)
    shown = offers[:limit]
    widths = {  # identifiers never wrap: a cut-off zone or instance type is useless
        "region/zone": max((len(o.zone or o.region) for o in shown), default=6),
        "instance type": max((len(o.instance_type) + 2 for o in shown), default=8),
        "as of": 10,
    }
    for column in ("provider", "region/zone", "instance type", "GPUs", "on-demand", "spot", "reserved", "per GPU", "as of"):
        table.add_column(column, justify="left" if column in ("provider", "region/zone", "instance type", "GPUs", "as of") else "right",
                         min_width=widths.get(column), no_wrap=column in widths)
    money = lambda v: "-" if v is None else f"{v:,.3f}"  # noqa: E731
    flagged = []
    for o in shown:
        if flags := catalog.anomalies(o):
            flagged.append(f"{o.provider} {o.zone or o.region} {o.instance_type}: {'; '.join(flags)}")
        table.add_row(
            o.provider, o.zone or o.region, o.instance_type + (" [yellow]![/]" if flags else ""),
            f"{o.gpu_count}x {o.gpu} {o.gpu_memory_gb:g}GB", money(o.on_demand_per_hour), money(o.spot_per_hour),
            money(o.reserved_per_hour), money(_per_gpu(o, capacity)), str(o.as_of),
        )
    console.print(table)
    for line in flagged:
        console.print(f"[yellow]![/] {line}", highlight=False)
    console.print(f"{len(offers)} offers match" + (f"; showing {limit} (use --limit or --format json)" if len(offers) > limit else ""))
    for source in catalog.sources:
        kind = "refreshed" if source.refreshed else "bundled" + (" (the refreshed file is ignored: see the warning)" if source.problem else "")
        console.print(f"[dim]{source.provider}: {source.rows} rows, {kind}, as of {source.as_of}: {source.source}[/]")


@app.command()
def refresh(
    provider: Annotated[list[str], typer.Option("--provider", "-p", help="aws, gcp, azure, or all (repeatable).")] = ["all"],  # noqa: B006
    region: Annotated[list[str] | None, typer.Option("--region", "-r", help="Only these regions (repeatable); default all.")] = None,
    deadline_s: Annotated[float, typer.Option("--deadline-s", min=1.0, help="Give up on a provider's price API after this many seconds.")] = 300.0,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Fetch today's GPU prices from each provider's price API; they replace its rows in the requested regions.

    AWS: Price List API and EC2 spot price history (needs pricing:GetProducts, ec2:DescribeSpotPriceHistory).

    GCP: Cloud Billing Catalog API (Application Default Credentials or GPUFLEET_GCP_API_KEY).

    Azure: the public Retail Prices API (no credentials).

    Every price is checked first (finite, positive, within sane bounds of the bundled price
    for the same GPU); one doubtful price, a failure or an answer slower than --deadline-s
    leaves that provider's previous catalog untouched, and the anomalies are listed (exit 1).
    Rows for regions not asked for are ignored and listed.
    """
    from orchestrator.catalog.price_checks import PricesRejected
    from orchestrator.catalog.refresh import refresh_catalog  # imports no SDK until a provider is fetched

    providers = list(CLOUD_PROVIDERS) if "all" in provider else provider
    for name in providers:
        if name not in CLOUD_PROVIDERS:
            raise InputError(f"--provider '{name}' has no price API; allowed: {', '.join(CLOUD_PROVIDERS)}, all")
    catalog_dir = load_settings().catalog_dir
    results, failures = [], []
    for name in providers:
        with errors.status(f"fetching {name} prices…"):
            try:
                results.append(refresh_catalog(name, region, catalog_dir=catalog_dir, deadline_s=deadline_s))
            except CatalogError as exc:
                failures.append((name, exc))
    if output is OutputFormat.json:
        print_json({
            "refreshed": [{**vars(r), "path": str(r.path), "ignored": [vars(a) for a in r.ignored]} for r in results],
            "failed": [{"provider": p, "error": str(e),
                        "anomalies": [vars(a) for a in e.anomalies] if isinstance(e, PricesRejected) else []}
                       for p, e in failures],
        })
    else:
        for r in results:
            console.print(f"[green]✓[/] {r.provider}: {r.rows} offers as of {r.as_of} from {r.source} → {r.path}")
            for anomaly in r.ignored:
                console.print(f"  [yellow]ignored[/] {anomaly}", highlight=False)
    for _name, exc in failures:
        errors.print(f"[red]failed:[/] {escape(str(exc))}", highlight=False)
    if failures:
        raise typer.Exit(1)  # each failure is printed above (and in the JSON report): no second error document
