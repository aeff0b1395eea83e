"""Replay a request trace against a running environment and measure it against each model's SLO.

`schedule` turns a trace into the requests to send (window, speed, scale, lengths clipped to
what a model serves); `runner` sends them with vLLM's serving benchmark (`timed_trace`
dataset: each request at its trace time, an exact prompt length in token ids, `ignore_eos`);
`report` compares what was measured with the SLO and the latest plan's promise;
`tables` keeps every run in the state database. See docs/replay.md.
"""

from orchestrator.replay.report import ModelReport, ReplayReport, build_report
from orchestrator.replay.runner import RequestResult, run_replay
from orchestrator.replay.schedule import ReplayRequest, Schedule, build_schedule

__all__ = ["ModelReport", "ReplayReport", "ReplayRequest", "RequestResult", "Schedule", "build_report",
           "build_schedule", "run_replay"]
