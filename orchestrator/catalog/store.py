"""Offers on disk: one CSV format for the bundled catalog and for refreshed ones.

A CSV (not a database) so that the bundled catalog diffs readably in review and a
refreshed catalog can be inspected or edited with any tool.
"""

from __future__ import annotations

import csv
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from orchestrator.catalog.offers import PriceOffer
from orchestrator.errors import CatalogError

FIELDS: tuple[str, ...] = tuple(PriceOffer.model_fields)
MAX_BYTES = 64 * 2**20  # a whole-cloud refresh is a few MB; anything larger is not a catalog


def write_offers(path: Path, offers: Iterable[PriceOffer]) -> int:
    """Write offers atomically (a failed refresh never leaves half a catalog); returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
            writer.writeheader()
            for offer in offers:
                writer.writerow({k: ("" if v is None else v) for k, v in offer.model_dump().items()})
                rows += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rows


def read_offers(path: Path) -> list[PriceOffer]:
    """Read offers written by `write_offers`; empty cells are missing values.

    Every row is validated as it was when written (finite, positive prices); anything else,
    or a file that is not a regular file of at most `MAX_BYTES`, is a CatalogError naming
    the file, the line and the field.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            raise CatalogError(f"{path}: not a price catalog (a regular file of at most {MAX_BYTES // 2**20} MiB)")
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != FIELDS:
                raise CatalogError(f"{path}:1: the header is not a price catalog's; expected: {','.join(FIELDS)}")
            return [_row(path, reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CatalogError(f"{path}: cannot be read as a price catalog: {exc}") from exc


def _row(path: Path, line: int, row: dict) -> PriceOffer:
    if None in row or any(v is None for v in row.values()):
        raise CatalogError(f"{path}:{line}: {len(FIELDS)} columns expected")
    try:
        return PriceOffer.model_validate({k: (v if v != "" else None) for k, v in row.items()})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r:.40})" for e in exc.errors())
        raise CatalogError(f"{path}:{line}: {problems}") from exc
