"""The synthesized Terraform JSON of every stack, committed so that a change shows in review.

After an intended change: GPUFLEET_UPDATE_SNAPSHOTS=1 python -m pytest tests/stacks/test_snapshots.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("GPUFLEET_UPDATE_SNAPSHOTS") == "1"


def test_every_stack_matches_its_snapshot(synthesized):
    stale = []
    for name in synthesized.names():
        text = json.dumps(synthesized.json(name), indent=2, sort_keys=True) + "\n"
        path = SNAPSHOTS / f"{name}.json"
        if UPDATE:
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(name)
    assert not stale, f"synthesized stacks differ from tests/stacks/snapshots: {', '.join(stale)}. " \
                      "If intended: GPUFLEET_UPDATE_SNAPSHOTS=1 python -m pytest tests/stacks/test_snapshots.py"
    assert sorted(p.stem for p in SNAPSHOTS.glob("*.json")) == synthesized.names(), "a snapshot without a stack: delete it"
