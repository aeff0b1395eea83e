"""The documents the rules read, built from what gpufleet produced.

* **terraform**: one synthesized stack, `<stacks dir>/<env>-<provider>/cdk.tf.json`,
  exactly as cdktf wrote it (Terraform JSON).
* **placement**: the plan (the placement contract's JSON) with a `continent` added to
  every `pools` and `demand` row (null where the place is unknown), so residency rules
  compare continents instead of carrying region tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import InputError
from orchestrator.latency import Location, resolve, site_location
from orchestrator.policy.engine import Document
from orchestrator.spec import FleetSpec, Pool
from orchestrator.spec.models import CLOUDS

STACK_FILE = "cdk.tf.json"

if TYPE_CHECKING:
    from orchestrator.planner.placement import Placement


def stack_files(stacks_dir: Path, environment: str) -> list[Path]:
    """The environment's stacks: `<env>-<provider>/cdk.tf.json` (not those of `<env>-eu`, say)."""
    prefix = f"{environment}-"
    return sorted(
        path for path in stacks_dir.glob(f"{prefix}*/{STACK_FILE}")
        if "-" not in path.parent.name.removeprefix(prefix)
    )


def read_stack(path: Path) -> Document:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the synthesized stack ({exc}). To fix: synthesize it again (cdktf synth)") from None
    if not isinstance(content, dict):
        raise InputError(f"{path}: a synthesized stack is a JSON object (Terraform JSON). To fix: synthesize it again (cdktf synth)")
    return Document("terraform", path.parent.name, str(path), content)


def _place(pool: Pool | None, provider: str, region: str) -> Location:
    """Where a plan's pool is: the spec's site location for on-prem, else its region."""
    if pool is not None and pool.provider == "onprem":
        return site_location(pool.region, pool.location)
    return resolve(region, provider=provider if provider in CLOUDS else None)


def _continent(place: Callable[[], Location]) -> str | None:
    """A place's continent; None when the place is unknown."""
    try:
        return place().continent
    except InputError:
        return None


def placement_document(placement: Placement, spec: FleetSpec, source: str) -> Document:
    """The plan as the placement rules read it: its JSON plus each pool's and user region's continent."""
    content = placement.model_dump(mode="json")
    spec_pools = {p.name: p for p in spec.pools}
    for row in content["pools"]:
        row["continent"] = _continent(lambda: _place(spec_pools.get(row["pool"]), row["provider"], row["region"]))
    for row in content["demand"]:
        row["continent"] = _continent(lambda: resolve(row["region"]))
    return Document("placement", "plan", source, content)
