"""Offers on disk: one CSV format for the bundled catalog and for refreshed ones.

A CSV (not a database) so that the bundled catalog diffs readably in review and a
refreshed catalog can be inspected or edited with any tool.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from orchestrator.catalog.offers import PriceOffer

FIELDS: tuple[str, ...] = tuple(PriceOffer.model_fields)


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
    """Read offers written by `write_offers`; empty cells are missing values."""
    with path.open(newline="") as handle:
        return [
            PriceOffer.model_validate({k: (v if v != "" else None) for k, v in row.items()})
            for row in csv.DictReader(handle)
        ]
