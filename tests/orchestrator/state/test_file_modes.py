"""Everything under GPUFLEET_HOME is the owner's alone: files 0600, directories 0700 (the WAL included)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from orchestrator.settings import Settings, keep_files_private
from orchestrator.state import open_state, state_url
from tests.conftest import REPO


def modes(home: Path) -> dict[str, str]:
    """Relative path -> octal mode of everything under `home` (itself included)."""
    found = {".": oct(stat.S_IMODE(home.stat().st_mode))}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = oct(stat.S_IMODE(path.stat().st_mode))
    return found


def test_plan_and_a_billing_import_leave_only_private_files(gpufleet_home: Path, focus_sample: Path) -> None:
    gpufleet_home.chmod(0o755)  # a home made before files were kept private is tightened
    env = {**os.environ, "GPUFLEET_HOME": str(gpufleet_home)}
    for argv in (["plan", "--env", "local"], ["spend", "import", str(focus_sample), "--env", "local"]):
        done = subprocess.run([sys.executable, "-m", "orchestrator", *argv], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    found = modes(gpufleet_home)
    assert "state/local/state.db" in found and "state/local/plans/latest.json" in found
    assert {p: m for p, m in found.items() if m != ("0o700" if (gpufleet_home / p).is_dir() else "0o600")} == {}


def test_the_wal_of_an_open_database_is_private(gpufleet_home: Path) -> None:
    previous = os.umask(0o022)
    try:
        keep_files_private()
        store = open_state(state_url(Settings(), "local"))
        with store.session() as session:
            session.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            session.execute(text("INSERT INTO probe VALUES (1)"))
        wal = gpufleet_home / "state" / "local" / "state.db-wal"
        assert wal.exists() and oct(stat.S_IMODE(wal.stat().st_mode)) == "0o600"
        store.close()
    finally:
        os.umask(previous)


def test_an_existing_world_readable_database_is_tightened(gpufleet_home: Path) -> None:
    directory = gpufleet_home / "state" / "local"
    directory.mkdir(parents=True)
    (directory / "state.db").touch(mode=0o644)
    (directory / "state.db").chmod(0o644)
    state_url(Settings(), "local")
    assert oct(stat.S_IMODE((directory / "state.db").stat().st_mode)) == "0o600"
    assert oct(stat.S_IMODE(directory.stat().st_mode)) == "0o700"
