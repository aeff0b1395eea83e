"""FOCUS imports: the FinOps sample as CSV, Parquet and parts; exports of every shape; broken files named clearly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import func, select

from orchestrator.billing import import_focus
from orchestrator.errors import InputError
from orchestrator.ledger.tables import BilledDay

SAMPLE_BILLED = {"aws": 18.0066, "azure": 1.9765, "oracle": 0.5371}  # ../shared/data/focus_billing/SOURCE.md


def rewrite(source: Path, target: Path, select_sql: str = "*", where: str = "true") -> Path:
    """`source` (a FOCUS CSV) transformed by SQL and written as CSV or Parquet by `target`'s suffix."""
    kind = "parquet" if target.suffix == ".parquet" else "csv"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT {select_sql} FROM read_csv('{source}', all_varchar = true, nullstr = ['NULL', '']) WHERE {where}) "
                f"TO '{target}' (FORMAT {kind}{', HEADER true' if kind == 'csv' else ''})")
    con.close()
    return target


def stored_billed(store) -> dict[str, float]:
    with store.session() as session:
        return {p: round(v, 4) for p, v in session.execute(
            select(BilledDay.provider, func.sum(BilledDay.billed_cost)).group_by(BilledDay.provider))}


def test_the_finops_sample_imports_with_its_published_totals(store, focus_sample: Path) -> None:
    result = import_focus(store, "prod", focus_sample)
    assert (result.focus_version, result.rows) == ("1.0", 1000)
    assert result.tagged_rows == 42  # the sample's own tags: 42 rows carry {"env": "prod"}
    assert (result.first_day, result.last_day, result.currencies) == (dt.date(2024, 9, 1), dt.date(2024, 9, 30), ("USD",))
    assert {p: round(v, 4) for p, v in result.billed_by_provider.items()} == SAMPLE_BILLED
    assert stored_billed(store) == SAMPLE_BILLED


def test_parquet_and_a_folder_of_parts_import_the_same(store, focus_sample: Path, tmp_path: Path) -> None:
    parquet = rewrite(focus_sample, tmp_path / "sample.parquet", "* REPLACE (CAST(BilledCost AS DOUBLE) AS BilledCost)")
    assert {p: round(v, 4) for p, v in import_focus(store, "prod", parquet).billed_by_provider.items()} == SAMPLE_BILLED
    parts = tmp_path / "export"
    parts.mkdir()
    rewrite(focus_sample, parts / "part-0.csv", where="ProviderName = 'AWS'")
    rewrite(focus_sample, parts / "part-1.csv", where="ProviderName <> 'AWS'")
    (parts / "manifest.json").write_text("{}")  # exports ship manifests beside the parts
    assert import_focus(store, "prod", parts).rows == 1000


def test_importing_again_replaces_instead_of_adding(store, focus_sample: Path, tmp_path: Path) -> None:
    import_focus(store, "prod", focus_sample)
    again = import_focus(store, "prod", focus_sample)
    assert again.replaced_rows > 0 and stored_billed(store) == SAMPLE_BILLED
    restated = rewrite(focus_sample, tmp_path / "restated.csv", "* REPLACE (CAST(BilledCost AS DOUBLE) * 2 AS BilledCost)")
    import_focus(store, "prod", restated)  # a later export of the same days wins
    assert stored_billed(store) == pytest.approx({p: v * 2 for p, v in SAMPLE_BILLED.items()}, abs=1e-3)


def test_version_provider_names_and_tags_of_each_export_shape(store, tmp_path: Path) -> None:
    header = "billedcost,effectivecost,listcost,billingcurrency,billingaccountid,chargeperiodstart,chargeperiodend,chargecategory,"
    (tmp_path / "aws.csv").write_text(  # lower-case names, AWS's user: tag prefix, FOCUS 1.2's InvoiceId
        header + "ProviderName,ServiceCategory,Tags,InvoiceId\n"
        '5,5,5,USD,1,2026-11-02T10:00:00Z,2026-11-02T11:00:00Z,Usage,Amazon Web Services,Compute,"{""user:env"": ""prod"", ""user:pool"": ""p""}",I1\n')
    (tmp_path / "gcp.csv").write_text(  # FOCUS 1.1's ServiceSubcategory, 1.3's ServiceProviderName
        header + "ServiceProviderName,ServiceCategory,ServiceSubcategory,Tags\n"
        '2,2,2,USD,2,2026-11-02 10:00:00,2026-11-02 11:00:00,Usage,Google Cloud,Compute,Virtual Machines,"{""env"": ""prod""}"\n')
    aws, gcp = import_focus(store, "prod", tmp_path / "aws.csv"), import_focus(store, "prod", tmp_path / "gcp.csv")
    assert (aws.focus_version, aws.billed_by_provider, aws.tagged_rows) == ("1.2", {"aws": 5.0}, 1)
    assert (gcp.focus_version, gcp.billed_by_provider, gcp.tagged_rows) == ("1.1", {"gcp": 2.0}, 1)
    with store.session() as session:
        assert session.scalars(select(BilledDay.pool_tag).where(BilledDay.provider == "aws")).one() == "p"


@pytest.mark.parametrize(("select_sql", "message"), [
    ("* EXCLUDE (BilledCost, ChargePeriodStart)", "missing FOCUS columns BilledCost, ChargePeriodStart"),
    ("* REPLACE (CASE WHEN Id = '19384' THEN 'n/a' ELSE BilledCost END AS BilledCost)", "column BilledCost: row 2 is 'n/a', not a finite number"),
    ("* REPLACE (CASE WHEN Id = '21444' THEN 'yesterday' ELSE ChargePeriodEnd END AS ChargePeriodEnd)",
     "column ChargePeriodEnd: row 3 is 'yesterday', not a date and time"),
    ("* REPLACE (CASE WHEN Id = '11472' THEN NULL ELSE EffectiveCost END AS EffectiveCost)", "column EffectiveCost: row 1 is empty"),
])
def test_a_broken_export_is_named_by_file_column_and_row(store, focus_sample: Path, tmp_path: Path, select_sql: str, message: str) -> None:
    broken = rewrite(focus_sample, tmp_path / "broken.csv", select_sql)
    with pytest.raises(InputError) as caught:
        import_focus(store, "prod", broken)
    assert str(caught.value).startswith(f"{broken}: {message}")
    assert "To fix:" in str(caught.value)
    assert stored_billed(store) == {}  # nothing of a broken file is kept


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bill.txt", "BilledCost\n1\n", "not a CSV or Parquet file"),
    ("bill.parquet", "not parquet at all", "not a readable PARQUET file"),
    ("bill.csv", "", "missing FOCUS columns BilledCost, EffectiveCost"),
    ("absent.csv", None, "no such file or folder"),
])
def test_files_that_are_not_focus_exports(store, tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        import_focus(store, "prod", path)


def test_a_header_without_rows_is_an_empty_export(store, focus_sample: Path, tmp_path: Path) -> None:
    empty = rewrite(focus_sample, tmp_path / "empty.csv", where="false")
    with pytest.raises(InputError, match="no rows"):
        import_focus(store, "prod", empty)


@pytest.mark.parametrize(("column", "value", "message"), [
    ("BilledCost", "NaN", "column BilledCost: row 2 is 'NaN', not a finite number within ±1,000,000,000"),
    ("ListCost", "inf", "column ListCost: row 2 is 'inf', not a finite number"),
    ("EffectiveCost", "-Infinity", "column EffectiveCost: row 2 is '-Infinity', not a finite number"),
    ("BilledCost", "1e308", "column BilledCost: row 2 is '1e308', not a finite number within ±1,000,000,000"),
    ("ChargePeriodStart", "0000-01-01T00:00:00Z", "column ChargePeriodStart: row 2 is '0000-01-01T00:00:00Z', not a date and time (ISO 8601) in 1970-2199"),
    ("ChargePeriodEnd", "10000-01-01T00:00:00Z", "column ChargePeriodEnd: row 2 is '10000-01-01T00:00:00Z', not a date and time"),
    ("ChargePeriodStart", "infinity", "column ChargePeriodStart: row 2 is 'infinity', not a date and time"),
])
def test_non_finite_and_out_of_range_values_are_named_by_row(store, focus_sample: Path, tmp_path: Path,
                                                             column: str, value: str, message: str) -> None:
    broken = rewrite(focus_sample, tmp_path / "hostile.csv", f"* REPLACE (CASE WHEN Id = '19384' THEN '{value}' ELSE {column} END AS {column})")
    with pytest.raises(InputError) as caught:
        import_focus(store, "prod", broken)
    assert str(caught.value).startswith(f"{broken}: {message}")
    assert stored_billed(store) == {}


def test_a_second_billedcost_column_is_an_error(store, focus_sample: Path, tmp_path: Path) -> None:
    doubled = rewrite(focus_sample, tmp_path / "doubled.csv", "*, '0' AS billedcost")
    with pytest.raises(InputError, match="column BilledCost given more than once"):
        import_focus(store, "prod", doubled)


def test_a_path_is_a_path_not_a_glob(store, focus_sample: Path, tmp_path: Path) -> None:
    rewrite(focus_sample, tmp_path / "other.csv", where="ProviderName = 'AWS'")
    star = rewrite(focus_sample, tmp_path / "*.csv", where="ProviderName <> 'AWS'")
    result = import_focus(store, "prod", star)
    assert "aws" not in result.billed_by_provider and result.rows < 1000  # only the file named `*.csv`


def test_a_fifo_is_refused(store, tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "bill.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file or folder"):
        import_focus(store, "prod", fifo)
