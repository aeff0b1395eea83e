"""`spend import`: a FOCUS billing export (CSV or Parquet, a file or a folder of parts) into the ledger.

DuckDB reads and checks the file and sums it per provider, billing account, UTC day, `env`
and `pool` tag, service category and currency; only those sums reach the state database,
so a million-row export becomes a few hundred rows. Importing a file again replaces it, and
a later export covering the same provider, account and day replaces the earlier one
(providers restate a month until it closes).

Bad input is an `InputError` naming the file and the column: a required column missing or
given twice, a cost that is not a finite number within ±`MAX_ROW_COST`, a charge period that is
not a time within `CHARGE_YEARS` (each with its row number). A path is a path: `*` or `?` in a
file name is that character, never a pattern.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert, select

from orchestrator.billing.focus import (
    NUMERIC_COLUMNS, PROVIDER_1_3, REQUIRED_COLUMNS, TAGS_COLUMN, TIME_COLUMNS, focus_version, provider_id,
)
from orchestrator.errors import InputError
from orchestrator.ledger.tables import BilledDay, BillingImport
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
MAX_ROW_COST = 1e9
"""Largest cost one row may carry, USD either way (a credit is negative); more is a broken export, not a bill."""
CHARGE_YEARS = (1970, 2199)
"""Years a charge period may fall in (first and last)."""
FIX_EXPORT = ("To fix: export with the FOCUS schema (AWS Data Exports 'FOCUS 1.0', an Azure 'FOCUS cost' export, "
              "or GCP's FOCUS BigQuery view saved as CSV or Parquet)")


@dataclass(frozen=True)
class ImportResult:
    path: str
    focus_version: str
    rows: int
    tagged_rows: int  # rows whose `env` tag names the environment imported into
    billed_by_provider: dict[str, float]
    first_day: dt.date
    last_day: dt.date
    currencies: tuple[str, ...]
    replaced_rows: int  # BilledDay rows of earlier imports this one replaced


def import_focus(store: StateStore, environment: str, path: Path) -> ImportResult:
    """Check and load one FOCUS export into `environment`'s ledger (see module docstring)."""
    import duckdb

    files, reader = _files(path)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        found = _describe(con, files, reader, path)
        _load(con, _columns(found, path), found, path)
        _check(con, path)
        sums = _sums(con)
    finally:
        con.close()
    if not sums:
        raise InputError(f"{path}: no rows. To fix: pass an export that holds charges")
    return _store(store, environment, path, _digest(files), focus_version(set(found)), sums)


def _files(path: Path) -> tuple[list[Path], str]:
    """The files to read (a folder: every CSV or Parquet part in it) and which of the two they are."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder. To fix: pass a FOCUS export (CSV or Parquet)")
    if not path.is_dir() and not path.is_file():  # a FIFO or a device would block or never end
        raise InputError(f"{path}: not a regular file or folder. {FIX_EXPORT}")
    files = sorted(p for p in path.iterdir() if _kind(p) and p.is_file()) if path.is_dir() else [path]
    kinds = {_kind(p) for p in files}
    if not files or None in kinds:
        raise InputError(f"{path}: not a CSV or Parquet file ({', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}). {FIX_EXPORT}")
    if len(kinds) > 1:
        raise InputError(f"{path}: holds both CSV and Parquet parts. To fix: import one kind at a time")
    return files, kinds.pop()


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    return "csv" if name.endswith(CSV_SUFFIXES) else "parquet" if name.endswith(PARQUET_SUFFIXES) else None


def _describe(con, files: list[Path], reader: str, path: Path) -> dict[str, str]:  # noqa: ANN001 (a DuckDB connection)
    """Open the files as the view `focus`; its columns and their types."""
    import duckdb

    listed = "[" + ", ".join(_literal(_no_glob(str(f))) for f in files) + "]"
    source = (f"read_csv({listed}, header = true, all_varchar = true, nullstr = ['NULL', ''])" if reader == "csv"
              else f"read_parquet({listed}, union_by_name = true)")
    try:
        con.execute(f"CREATE VIEW focus AS SELECT * FROM {source}")
        return {name: kind for name, kind, *_ in con.execute("DESCRIBE focus").fetchall()}
    except duckdb.Error as exc:
        raise InputError(f"{path}: not a readable {reader.upper()} file ({_first_line(exc)}). {FIX_EXPORT}") from None


def _columns(found: dict[str, str], path: Path) -> dict[str, str]:
    """FOCUS column -> the file's column of that name (any letter case); every required one or an error."""
    twice = sorted(c for c in (*REQUIRED_COLUMNS, TAGS_COLUMN)
                   if sum(1 for name in found if re.fullmatch(rf"{c}(_\d+)?", name, re.IGNORECASE)) > 1)
    if twice:  # DuckDB renames a repeated header to NAME_1, NAME_2 (any letter case)
        raise InputError(f"{path}: column{'s' if len(twice) > 1 else ''} {', '.join(twice)} given more than once "
                         f"(in any letter case); allowed: each FOCUS column once. {FIX_EXPORT}")
    by_lower = {name.lower(): name for name in found}
    columns = {c: by_lower[c.lower()] for c in (*REQUIRED_COLUMNS, TAGS_COLUMN) if c.lower() in by_lower}
    if "ProviderName" not in columns and PROVIDER_1_3.lower() in by_lower:
        columns["ProviderName"] = by_lower[PROVIDER_1_3.lower()]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        names = list(found)
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise InputError(f"{path}: missing FOCUS column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"(required by FOCUS 1.0-1.2; the file has {len(names)}: {shown}). {FIX_EXPORT}")
    return columns


def _q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _no_glob(path: str) -> str:
    """`path` as a DuckDB glob that matches only itself: each of `*`, `?`, `[` in a character class of its own."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def _literal(text: str) -> str:
    """A quoted SQL string (views take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _load(con, columns: dict[str, str], found: dict[str, str], path: Path) -> None:  # noqa: ANN001
    """The columns gpufleet uses, under their FOCUS names, numbered by row, in the table `charges` (one read)."""
    import duckdb

    selected = [f"{_q(columns[c])} AS {c}" for c in REQUIRED_COLUMNS]
    tags = columns.get(TAGS_COLUMN)
    if tags is None:
        selected.append("CAST(NULL AS VARCHAR) AS Tags")
    elif found[tags] in ("VARCHAR", "JSON"):
        selected.append(f"CAST({_q(tags)} AS VARCHAR) AS Tags")
    else:  # a MAP or STRUCT in Parquet
        selected.append(f"CAST(to_json({_q(tags)}) AS VARCHAR) AS Tags")
    try:
        con.execute(f"CREATE TEMP TABLE charges AS SELECT row_number() OVER () AS n, {', '.join(selected)} FROM focus")
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot be read ({_first_line(exc)}). {FIX_EXPORT}") from None


def _check(con, path: Path) -> None:  # noqa: ANN001
    """Costs must be finite numbers within ±MAX_ROW_COST and charge periods times within CHARGE_YEARS, in
    every row; the first bad value is named."""
    first_year, last_year = CHARGE_YEARS
    casts = {c: f"TRY_CAST({c} AS DOUBLE)" for c in NUMERIC_COLUMNS} | {c: f"TRY_CAST({c} AS TIMESTAMPTZ)" for c in TIME_COLUMNS}
    flags = [f"coalesce(NOT (isfinite({cast}) AND abs({cast}) <= {MAX_ROW_COST}), true)" if c in NUMERIC_COLUMNS else
             f"coalesce(NOT (isfinite({cast}) AND {cast} >= TIMESTAMPTZ '{first_year}-01-01 00:00:00+00' "
             f"AND {cast} < TIMESTAMPTZ '{last_year + 1}-01-01 00:00:00+00'), true)"
             for c, cast in casts.items()]
    first = con.execute(f"SELECT n, {', '.join(f'CAST({c} AS VARCHAR)' for c in casts)}, {', '.join(flags)} "
                        f"FROM charges WHERE {' OR '.join(flags)} ORDER BY n LIMIT 1").fetchone()
    if first is None:
        return
    row, values, bad = first[0], first[1:1 + len(casts)], first[1 + len(casts):]
    column, value = next((c, v) for c, v, b in zip(casts, values, bad, strict=True) if b)
    kind = (f"a finite number within ±{MAX_ROW_COST:,.0f}" if column in NUMERIC_COLUMNS
            else f"a date and time (ISO 8601) in {first_year}-{last_year}")
    shown = "empty" if value is None else repr(value[:40])
    raise InputError(f"{path}: column {column}: row {row} is {shown}, not {kind}. "
                     "To fix: re-export the file; FOCUS requires such a value there in every row")


def _sums(con) -> list[tuple]:  # noqa: ANN001
    """(provider name, account, day, env tag, pool tag, service category, currency, billed, effective, list, rows)."""
    tag = ("coalesce(CASE WHEN json_valid(Tags) THEN coalesce(json_extract_string(Tags, '$.{key}'), "
           "json_extract_string(Tags, '$.\"user:{key}\"')) END, '')")  # AWS prefixes user-defined tags
    return con.execute(f"""
        SELECT coalesce(ProviderName, ''), coalesce(CAST(BillingAccountId AS VARCHAR), ''),
               CAST(CAST(ChargePeriodStart AS TIMESTAMPTZ) AS DATE) AS day,
               {tag.format(key='env')}, {tag.format(key='pool')},
               coalesce(ServiceCategory, ''), upper(coalesce(BillingCurrency, '')),
               sum(CAST(BilledCost AS DOUBLE)), sum(CAST(EffectiveCost AS DOUBLE)), sum(CAST(ListCost AS DOUBLE)), count(*)
        FROM charges
        GROUP BY ALL
    """).fetchall()


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _store(store: StateStore, environment: str, path: Path, sha256: str, version: str, sums: list[tuple]) -> ImportResult:
    rows = [dict(environment=environment, provider=provider_id(p), billing_account=a, day=d, env_tag=e, pool_tag=t,
                 service_category=s, currency=cur, billed_cost=b, effective_cost=ef, list_cost=li, rows=n)
            for p, a, d, e, t, s, cur, b, ef, li, n in sums]
    days_by_account: dict[tuple[str, str], set[dt.date]] = defaultdict(set)
    for r in rows:
        days_by_account[(r["provider"], r["billing_account"])].add(r["day"])
    replaced = 0
    with store.session() as session:
        for old in session.scalars(select(BillingImport).where(BillingImport.environment == environment, BillingImport.sha256 == sha256)):
            replaced += session.execute(delete(BilledDay).where(BilledDay.import_id == old.id)).rowcount
            session.delete(old)
        for (provider, account), days in days_by_account.items():
            replaced += session.execute(delete(BilledDay).where(
                BilledDay.environment == environment, BilledDay.provider == provider,
                BilledDay.billing_account == account, BilledDay.day.in_(sorted(days)))).rowcount
        record = BillingImport(environment=environment, path=str(path), sha256=sha256, focus_version=version,
                               rows=sum(r["rows"] for r in rows), imported_at=dt.datetime.now(dt.UTC))
        session.add(record)
        session.flush()
        session.execute(insert(BilledDay), [{**r, "import_id": record.id} for r in rows])
    billed: dict[str, float] = defaultdict(float)
    for r in rows:
        billed[r["provider"]] += r["billed_cost"]
    days = [r["day"] for r in rows]
    logger.info("billing %s: imported %s (FOCUS %s, %d rows)", environment, path, version, record.rows)
    return ImportResult(path=str(path), focus_version=version, rows=record.rows,
                        tagged_rows=sum(r["rows"] for r in rows if r["env_tag"] == environment),
                        billed_by_provider=dict(sorted(billed.items())), first_day=min(days), last_day=max(days),
                        currencies=tuple(sorted({r["currency"] for r in rows})), replaced_rows=replaced)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200]
