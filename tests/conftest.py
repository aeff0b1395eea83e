"""Shared fixtures: every test runs with its own gpufleet home, never the user's."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTS = REPO / "environments"


@pytest.fixture(autouse=True)
def gpufleet_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty GPUFLEET_HOME and the repository's environments directory."""
    home = tmp_path_factory.mktemp("gpufleet-home")
    monkeypatch.setenv("GPUFLEET_HOME", str(home))
    monkeypatch.setenv("GPUFLEET_ENVIRONMENTS_DIR", str(ENVIRONMENTS))
    return home


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the `orchestrator` command in-process as its console script does; (exit code, stdout, stderr)."""
    from orchestrator.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def focus_sample() -> Path:
    """The FinOps Foundation's FOCUS 1.0 sample (../shared/data/focus_billing), or a skip saying where it was looked for."""
    from orchestrator.settings import load_settings

    path = load_settings().shared_data / "focus_billing" / "focus_1.0_sample_1000.csv"
    if not path.exists():
        pytest.skip(f"the FinOps FOCUS sample is not at {path} (set GPUFLEET_SHARED_DATA)")
    return path


BASE_S = 0.01  # the recording backoff's first wait; doubling, no jitter, so the recorded waits are exact


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the backoff asked for, in order."""
    return []


@pytest.fixture
def backoff(sleeps: list[float]):
    """Four tries, waits of 0.01, 0.02, 0.04 s recorded in `sleeps` instead of slept (provider and route calls)."""
    from orchestrator.providers.retry import Backoff

    return Backoff(attempts=4, base_s=BASE_S, max_s=1.0, jitter=0.0, sleep=sleeps.append)
