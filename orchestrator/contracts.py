"""The JSON documents gpufleet exchanges with programs (its contracts) and their JSON Schemas.

One registry (`CONTRACTS`) names each contract, the pydantic model that defines it and its
schema file in docs/, so the schemas are generated from the models and nowhere else:
`python -m orchestrator.contracts` writes them (`--check`: exit 1 naming each stale file),
`orchestrator spec schema --contract NAME` prints one. Versioning: docs/contracts.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

DOCS = Path(__file__).resolve().parent.parent / "docs"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


class Document(BaseModel):
    """A document gpufleet writes for programs: no field beyond the schema's, each field always written (so
    its schema lists every field as required, defaults included), and no NaN or Infinity (JSON has neither)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, json_schema_serialization_defaults_required=True)


@dataclass(frozen=True)
class Contract:
    """One contract: its model (`module:Class`), the schema file in docs/, and whether gpufleet reads it back.

    A document gpufleet reads (a spec, a placement) is described as its readers validate it (`validation`
    mode: fields with defaults may be left out); one it only writes, as it is written (`serialization`).
    """

    name: str
    model: str
    file: str
    title: str
    mode: Literal["validation", "serialization"]

    def schema(self) -> dict:
        """The JSON Schema (draft 2020-12, as pydantic writes it) of the contract's model."""
        module, _, attr = self.model.partition(":")
        model: type[BaseModel] = getattr(importlib.import_module(module), attr)
        schema = model.model_json_schema(mode=self.mode)
        schema["$schema"] = DRAFT
        schema["title"] = self.title
        return schema

    def text(self) -> str:
        return json.dumps(self.schema(), indent=2) + "\n"


CONTRACTS: dict[str, Contract] = {c.name: c for c in (
    Contract("fleet-spec", "orchestrator.spec:FleetSpec", "fleet-spec.schema.json", "gpufleet fleet spec", "validation"),
    Contract("placement", "orchestrator.planner.placement:Placement", "placement.schema.json", "gpufleet placement",
             "validation"),
    Contract("move", "orchestrator.rebalance.report:MoveReport", "move.schema.json", "gpufleet move", "serialization"),
    Contract("status", "orchestrator.status:FleetStatus", "status.schema.json", "gpufleet status", "serialization"),
    Contract("replay-report", "orchestrator.replay.report:ReplayReport", "replay-report.schema.json",
             "gpufleet replay report", "serialization"),
    Contract("rollout-report", "orchestrator.rollout.run:RolloutReport", "rollout-report.schema.json",
             "gpufleet rollout report", "serialization"),
)}


def stale(docs: Path) -> list[Path]:
    """The schema files under `docs` that are missing or differ from what the models generate."""
    return [docs / c.file for c in CONTRACTS.values()
            if not (docs / c.file).exists() or (docs / c.file).read_text() != c.text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.contracts",
                                     description="Write the contracts' JSON Schemas into docs/ from their models.")
    parser.add_argument("--docs", type=Path, default=DOCS, help="Directory of the schema files (default: the repository's docs/).")
    parser.add_argument("--check", action="store_true", help="Write nothing; exit 1 naming each stale or missing file.")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.docs)
        for path in outdated:
            print(f"stale: {path}. To fix: python -m orchestrator.contracts", file=sys.stderr)
        return 1 if outdated else 0
    for contract in CONTRACTS.values():
        (args.docs / contract.file).write_text(contract.text())
        print(f"wrote {args.docs / contract.file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
