"""`spend export --format focus`: the ledger as FOCUS 1.0 rows, so FinOps tools load it like a provider's bill.

One row per ledger entry (hour, pool, model): BilledCost = EffectiveCost = ListCost = the
accrued cost; PricingQuantity is node-hours, ConsumedQuantity GPU-hours; PricingCategory
says the capacity market (Standard on-demand, Dynamic spot, Committed reserved, Other
owned); Tags carry `env`, `pool` and `model` like the stacks' cloud tags, so importing the
export back reconciles to zero. Tokens and GPU-hours held ride along as `x_` columns.
Written by DuckDB: CSV (times as ISO 8601 UTC) or Parquet (UTC timestamps), by the file's suffix.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from sqlalchemy import DateTime, select, type_coerce

from orchestrator.billing.focus import PRICING_CATEGORIES, PROVIDER_NAMES
from orchestrator.errors import InputError
from orchestrator.ledger.tables import LedgerEntry
from orchestrator.state import StateStore

LEDGER_TYPES = {"hour": "TIMESTAMP", "pool": "VARCHAR", "model": "VARCHAR", "provider": "VARCHAR", "region": "VARCHAR",
                "capacity": "VARCHAR", "gpu": "VARCHAR", "node_hours": "DOUBLE", "gpu_hours": "DOUBLE", "used_gpu_hours": "DOUBLE",
                "cost_usd": "DOUBLE", "prompt_tokens": "BIGINT", "generation_tokens": "BIGINT"}
LEDGER_COLUMNS = tuple(LEDGER_TYPES)
NUMPY_TYPES = {"hour": "datetime64[us]", "node_hours": np.float64, "gpu_hours": np.float64, "used_gpu_hours": np.float64,
               "cost_usd": np.float64, "prompt_tokens": np.int64, "generation_tokens": np.int64}
CHUNK_ROWS = 100_000


def _mapping(values: dict[str, str]) -> str:
    """A SQL MAP literal from a Python dict (the names are gpufleet's own, no quoting needed)."""
    return "MAP {" + ", ".join(f"'{k}': '{v}'" for k, v in values.items()) + "}"


def _projection(environment: str, time: str) -> str:
    """FOCUS 1.0's columns over the table `ledger`; `time` formats a UTC TIMESTAMP column."""
    env = environment.replace("'", "''")
    provider = f"coalesce({_mapping(PROVIDER_NAMES)}[provider], provider)"
    price = "CASE WHEN node_hours > 0 THEN cost_usd / node_hours END"
    return f"""
        NULL::VARCHAR AS AvailabilityZone,
        cost_usd AS BilledCost,
        'gpufleet' AS BillingAccountId,
        'gpufleet' AS BillingAccountName,
        'USD' AS BillingCurrency,
        {time.format("date_trunc('month', hour) + INTERVAL 1 MONTH")} AS BillingPeriodEnd,
        {time.format("date_trunc('month', hour)")} AS BillingPeriodStart,
        'Usage' AS ChargeCategory,
        NULL::VARCHAR AS ChargeClass,
        printf('%.4f node-hours of %s (%s, %s)', node_hours, pool, gpu, capacity) AS ChargeDescription,
        'Usage-Based' AS ChargeFrequency,
        {time.format("hour + INTERVAL 1 HOUR")} AS ChargePeriodEnd,
        {time.format("hour")} AS ChargePeriodStart,
        NULL::VARCHAR AS CommitmentDiscountCategory,
        NULL::VARCHAR AS CommitmentDiscountId,
        NULL::VARCHAR AS CommitmentDiscountName,
        NULL::VARCHAR AS CommitmentDiscountStatus,
        NULL::VARCHAR AS CommitmentDiscountType,
        gpu_hours AS ConsumedQuantity,
        'GPU-Hours' AS ConsumedUnit,
        cost_usd AS ContractedCost,
        {price} AS ContractedUnitPrice,
        cost_usd AS EffectiveCost,
        {provider} AS InvoiceIssuerName,
        cost_usd AS ListCost,
        {price} AS ListUnitPrice,
        coalesce({_mapping(PRICING_CATEGORIES)}[capacity], 'Other') AS PricingCategory,
        node_hours AS PricingQuantity,
        'Hours' AS PricingUnit,
        {provider} AS ProviderName,
        {provider} AS PublisherName,
        region AS RegionId,
        region AS RegionName,
        'gpufleet/{env}/' || pool AS ResourceId,
        pool AS ResourceName,
        'GPU node pool' AS ResourceType,
        'AI and Machine Learning' AS ServiceCategory,
        'gpufleet LLM serving' AS ServiceName,
        gpu || ':' || capacity AS SkuId,
        NULL::VARCHAR AS SkuPriceId,
        '{env}' AS SubAccountId,
        '{env}' AS SubAccountName,
        CAST(json_object('env', '{env}', 'pool', pool, 'model', model, 'managed-by', 'gpufleet') AS VARCHAR) AS Tags,
        model AS x_Model,
        prompt_tokens AS x_PromptTokens,
        generation_tokens AS x_GenerationTokens,
        used_gpu_hours AS x_UsedGpuHours
    """


def export_focus(store: StateStore, environment: str, out: Path, start: dt.datetime | None = None,
                 end: dt.datetime | None = None) -> int:
    """Write the environment's ledger entries in [start, end) to `out` (.csv, .csv.gz or .parquet); rows written."""
    import duckdb

    name = out.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        time, options = "strftime({}, '%Y-%m-%dT%H:%M:%SZ')", "(FORMAT csv, HEADER true)"
    elif name.endswith(".parquet"):
        time, options = "timezone('UTC', {})", "(FORMAT parquet)"
    else:
        raise InputError(f"{out}: unknown export format. To fix: name the file *.csv, *.csv.gz or *.parquet")
    # naive UTC straight from the column: no per-row time zone handling on a million rows
    columns = [type_coerce(LedgerEntry.hour, DateTime()).label("hour"), *(getattr(LedgerEntry, c) for c in LEDGER_COLUMNS[1:])]
    query = select(*columns).where(LedgerEntry.environment == environment)
    if start is not None:
        query = query.where(LedgerEntry.hour >= start)
    if end is not None:
        query = query.where(LedgerEntry.hour < end)
    con = duckdb.connect()
    count = 0
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE TEMP TABLE ledger ({', '.join(f'{c} {t}' for c, t in LEDGER_TYPES.items())})")
        with store.session() as session:
            result = session.connection().execution_options(yield_per=CHUNK_ROWS).execute(
                query.order_by(LedgerEntry.hour, LedgerEntry.pool, LedgerEntry.model))
            for chunk in result.partitions():
                con.register("chunk", _arrays(chunk))
                con.execute("INSERT INTO ledger SELECT * FROM chunk")
                con.unregister("chunk")
                count += len(chunk)
        out.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY (SELECT {_projection(environment, time)} FROM ledger) TO '{_sql_path(out)}' {options}")
    finally:
        con.close()
    return count


def _arrays(rows: list) -> dict[str, np.ndarray]:
    """Rows as one array per column (DuckDB scans them without a copy)."""
    columns = zip(*rows, strict=True)
    return {name: np.array(values, dtype=NUMPY_TYPES.get(name, object)) for name, values in zip(LEDGER_COLUMNS, columns, strict=True)}


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
