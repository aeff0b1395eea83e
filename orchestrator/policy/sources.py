"""Where the checked documents come from.

Stacks: the environment's synth output under `cdktf.out/stacks/`, synthesized first
(`python -m stacks`, the app cdktf.json names) when it is missing or older than the spec
or the stacks code; or a directory given explicitly, read as it is.

Plan: a placement file given explicitly; else the latest stored plan
(`<state dir>/plans/latest.json`); else one planned now, as `orchestrator plan` plans it
(within the placement guardrails: `orchestrator.planning`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import InputError
from orchestrator.policy.documents import placement_document, read_stack, stack_files
from orchestrator.policy.engine import Document
from orchestrator.policy.errors import SynthFailed
from orchestrator.settings import load_settings
from orchestrator.spec import FleetSpec
from orchestrator.spec.models import CLOUDS

if TYPE_CHECKING:
    from orchestrator.planner.placement import Placement

SYNTH_OUTPUT = Path("cdktf.out") / "stacks"
STACKS_APP = Path("stacks") / "__main__.py"
SYNTH_TIMEOUT_S = 600
"""A synth takes seconds (node starts the jsii kernel); ten minutes means it hangs."""


def _newest_mtime(paths: list[Path]) -> float:
    return max((p.stat().st_mtime for p in paths), default=0.0)


def synthesize(root: Path, spec_path: Path) -> None:
    """Run the stacks app cdktf.json names (`python -m stacks`) for one spec, writing `cdktf.out/`."""
    try:
        done = subprocess.run([sys.executable, "-m", "stacks", "--spec", str(spec_path.resolve())], cwd=root,
                              capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise SynthFailed(f"`python -m stacks` did not finish in {SYNTH_TIMEOUT_S} s. To fix: run it yourself to see where it hangs") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise SynthFailed(f"`python -m stacks` failed (exit {done.returncode}):\n{tail}\nTo fix: run it yourself to see the whole error")


def stack_documents(root: Path, spec: FleetSpec, spec_path: Path, stacks_dir: Path | None = None) -> list[Document]:
    """The environment's synthesized stacks (none for an environment without cloud pools)."""
    environment = spec.environment or ""
    if stacks_dir is not None:
        files = stack_files(stacks_dir, environment)
        if not files:
            raise InputError(f"no stacks of environment '{environment}' in {stacks_dir} (looked for {environment}-<provider>/cdk.tf.json). "
                             "To fix: pass the directory cdktf synthesized them into (cdktf.out/stacks)")
        return [read_stack(f) for f in files]
    output = root / SYNTH_OUTPUT
    files = stack_files(output, environment)
    if not files and not any(p.provider in CLOUDS for p in spec.pools):
        return []
    app = root / STACKS_APP
    if app.exists():
        sources = [spec_path, *app.parent.rglob("*.py")]
        if not files or min(f.stat().st_mtime for f in files) < _newest_mtime(sources):
            synthesize(root, spec_path)
            files = stack_files(output, environment)
        if not files:
            raise InputError(f"`python -m stacks` wrote no stacks of environment '{environment}' under {SYNTH_OUTPUT}/{environment}-<provider>/. "
                             "To fix: make the stacks app synthesize this environment, or pass --stacks DIR")
    elif not files:
        raise InputError(f"no synthesized stacks of environment '{environment}' under {SYNTH_OUTPUT}, and there is no stacks app "
                         f"({STACKS_APP}) to synthesize them. To fix: synthesize them (cdktf synth) and pass --stacks DIR, "
                         "or check the plan alone with --only placement")
    return [read_stack(f) for f in files]


def _plan_now(spec_path: Path, root: Path) -> Placement:
    """Plan the environment now, when no plan is given or stored: as `orchestrator plan` does (`orchestrator.planning`),
    within the placement policies' guardrails, so the check is of the plan `plan` would store."""
    try:
        from orchestrator.planning import load_planning
    except ImportError as exc:
        raise InputError(f"no plan to check: none given, none stored, and the planner cannot run ({exc}). "
                         "To fix: pass --plan FILE") from None
    from orchestrator.catalog.price_catalog import load_price_catalog

    settings = load_settings()
    how, _notes = load_planning(spec_path, load_price_catalog(settings.catalog_dir), root=root, profiles_dir=settings.profiles_dir)
    return how.plan()


def plan_document(spec: FleetSpec, spec_path: Path, plan_file: Path | None = None, root: Path | None = None) -> Document:
    """The plan to check, as the placement rules read it; a plan made now reads the policies under `root` (default: here)."""
    from orchestrator.plan_store import LATEST, plans_dir, read_placement  # imports the planner (HiGHS): only when a plan is read

    environment = spec.environment or ""
    latest = plans_dir(load_settings(), environment) / LATEST
    if plan_file is not None:
        placement, source = read_placement(plan_file), str(plan_file)
    elif latest.exists():
        placement, source = read_placement(latest), str(latest)
    else:
        placement, source = _plan_now(spec_path, root or Path.cwd()), "planned now (no stored plan)"
    if placement.environment != environment:
        raise InputError(f"{source}: the plan is for environment '{placement.environment}', not '{environment}'. "
                         "To fix: pass that environment's spec, or a plan of this one")
    return placement_document(placement, spec, source)
