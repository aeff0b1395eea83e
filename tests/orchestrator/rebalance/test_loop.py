"""The rebalance loop (`orchestrator.rebalance.loop`) runs without a terminal: what it shows goes through the UI passed in."""

from __future__ import annotations

import contextlib

import pytest

from orchestrator.planner import PlanOptions
from orchestrator.rebalance.loop import RebalanceUI, rebalance_once
from orchestrator.settings import load_settings
from tests.conftest import ENVIRONMENTS, REPO


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # policies are read from where orchestrator runs


def test_a_declined_move_shows_nothing_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    seen = []
    move, run_id = rebalance_once(ENVIRONMENTS / "local.yaml", load_settings(), PlanOptions(), decide=lambda m: seen.append(m) or False,
                                  step_timeout_s=5, routes=False)
    assert run_id is None and seen == [move] and move.steps and move.target.replicas
    assert capsys.readouterr() == ("", "")


def test_the_ui_hears_each_phase() -> None:
    heard: list[tuple[str, str]] = []

    @contextlib.contextmanager
    def status(text: str):
        heard.append(("status", text))
        yield

    class Steps:
        def waiting(self, seq, step, note):
            heard.append(("waiting", note))

        def done(self, seq, step):
            heard.append(("done", str(seq)))

    ui = RebalanceUI(note=lambda text, kind: heard.append((kind, text)), status=status,
                     progress=lambda title, steps, current: (heard.append(("progress", title)), contextlib.nullcontext(Steps()))[1])
    rebalance_once(ENVIRONMENTS / "local.yaml", load_settings(), PlanOptions(), decide=lambda m: False, step_timeout_s=5, ui=ui,
                   routes=False)
    assert heard == [("progress", "finishing an interrupted rebalance"), ("status", "observing and planning…")]
