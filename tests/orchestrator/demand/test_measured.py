"""Demand measured from recorded counter samples: window boundaries, restarts, region split, fallbacks, a live scrape."""

from __future__ import annotations

import datetime as dt

import pytest
from werkzeug.wrappers import Request, Response

from orchestrator.demand import demand_for
from orchestrator.demand.measured import MeasuredRates, measure_rates, with_measured_demand
from orchestrator.errors import InputError
from orchestrator.ledger import ReplicaTokens, TokenScrape, open_ledger, record_tokens
from orchestrator.ledger.tokens import counter_samples
from orchestrator.settings import load_settings
from orchestrator.spec import load_spec
from orchestrator.state import ReplicaRecord, ReplicaStatus
from tests.conftest import ENVIRONMENTS
from tests.fakes.openai_worker import FakeOpenAiWorker

NOW = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


@pytest.fixture
def store():
    store = open_ledger(load_settings(), "test")
    yield store
    store.close()


def sample(store, seconds_ago: float, *replicas: tuple, model: str = "m", waiting: float | None = None) -> None:
    """Record one scrape: replicas as (replica, requests, prompt tokens, generated tokens)."""
    record_tokens(store, "test", TokenScrape(at=ago(seconds_ago), replicas=[
        ReplicaTokens(replica=name, model=model, pool="p", provider="aws", requests_total=n, prompt_tokens_total=pt,
                      generation_tokens_total=gt, requests_waiting=waiting)
        for name, n, pt, gt in replicas]))


def rates(store, window_s: float = 300) -> dict[str, tuple]:
    return {m: (r.requests, r.prompt_tokens, r.generation_tokens, r.seconds, r.replicas)
            for m, r in measure_rates(store, "test", window_s, NOW).items()}


# --- measuring ------------------------------------------------------------------------------------


def test_requests_and_tokens_are_counter_increases_over_the_time_between_samples(store) -> None:
    sample(store, 300, ("r1", 100, 10_000, 2_000), ("r2", 0, 0, 0))
    sample(store, 0, ("r1", 400, 40_000, 8_000), ("r2", 150, 30_000, 1_500))
    [m] = measure_rates(store, "test", 300, NOW).values()
    assert (m.requests, m.prompt_tokens, m.generation_tokens, m.replicas) == (450, 60_000, 7_500, 2)
    assert (m.start, m.end, m.requests_per_second) == (ago(300), NOW, pytest.approx(1.5))
    assert (m.input_tokens_mean, m.output_tokens_mean) == (pytest.approx(133.33, abs=0.01), pytest.approx(16.67, abs=0.01))


def test_the_start_is_the_sample_nearest_one_window_before_the_latest(store) -> None:
    for seconds_ago, served in ((700, 0), (320, 10), (250, 30), (100, 60), (0, 90)):
        sample(store, seconds_ago, ("r1", served, served, served))
    assert rates(store) == {"m": (80, 80, 80, 320, 1)}  # from 320 s ago (20 s off the boundary; 250 s ago is 50 s off)
    assert rates(store, window_s=200) == {"m": (60, 60, 60, 250, 1)}  # 250 s ago is nearer 200 than 100 s ago is


def test_the_start_is_looked_for_at_most_two_windows_back(store) -> None:
    sample(store, 601, ("r1", 0, 0, 0))
    sample(store, 0, ("r1", 60, 60, 60))
    assert rates(store) == {}  # the only earlier sample is 601 s ago: outside two windows
    sample(store, 600, ("r1", 10, 10, 10))
    assert rates(store) == {"m": (50, 50, 50, 600, 1)}  # exactly two windows back is inside


def test_the_latest_sample_must_lie_inside_the_window(store) -> None:
    sample(store, 500, ("r1", 0, 0, 0))
    sample(store, 301, ("r1", 10, 10, 10))
    assert rates(store) == {}  # both before the window: nothing served in it is known
    sample(store, 300, ("r1", 20, 20, 20))
    # the window's first instant counts; the start nearest 300 s before it is 500 s ago, not 301
    assert rates(store) == {"m": (20, 20, 20, 200, 1)}


def test_a_restart_counts_the_whole_new_counter_and_a_replica_seen_once_counts_nothing(store) -> None:
    sample(store, 300, ("r1", 100, 100, 100))
    sample(store, 150, ("r1", 400, 400, 400))
    sample(store, 0, ("r1", 50, 50, 50), ("r2-new", 999, 999, 999))  # r1 restarted; r2 has no earlier sample
    assert rates(store) == {"m": (350, 350, 350, 300, 1)}


def test_replicas_without_a_request_counter_are_not_used(store) -> None:
    sample(store, 300, ("r1", None, 0, 0))
    sample(store, 0, ("r1", None, 500, 500))
    assert rates(store) == {}


def test_other_environments_samples_are_not_read(store) -> None:
    sample(store, 300, ("r1", 0, 0, 0))
    record_tokens(store, "other", TokenScrape(at=NOW, replicas=[ReplicaTokens(
        replica="r1", model="m", pool="p", provider="aws", requests_total=900, prompt_tokens_total=1, generation_tokens_total=1)]))
    assert rates(store) == {}


def test_samples_older_than_the_retention_are_deleted_as_new_ones_are_recorded(store) -> None:
    sample(store, 9 * 86400, ("old", 1, 1, 1))
    sample(store, 7 * 86400, ("kept", 1, 1, 1))
    sample(store, 0, ("r1", 1, 1, 1))
    assert [s.replica for s in counter_samples(store, "test", ago(10 * 86400), NOW)] == ["kept", "r1"]


@pytest.mark.parametrize("window_s", [-1, 0, float("inf"), 5 * 86400])
def test_bad_windows_are_input_errors(store, window_s: float) -> None:
    with pytest.raises(InputError, match="measured window"):
        measure_rates(store, "test", window_s, NOW)


# --- the spec's demand replaced -------------------------------------------------------------------


@pytest.fixture
def hybrid():
    return load_spec(ENVIRONMENTS / "hybrid.yaml")


def measured(model: str, requests: float, seconds: float = 300, prompt: float = 0, generation: float = 0,
             waiting: float | None = None, replicas: int = 2) -> dict[str, MeasuredRates]:
    return {model: MeasuredRates(model=model, requests=requests, prompt_tokens=prompt, generation_tokens=generation,
                                 start=ago(seconds), end=NOW, replicas=replicas, max_waiting=waiting)}


def note(notes: list[str], model: str) -> str:
    [found] = [n for n in notes if n.startswith(f"{model}: ")]
    return found


def by_region(spec, model: str) -> dict[str, tuple[float, int, int]]:
    return {d.region: (d.requests_per_second, d.input_tokens, d.output_tokens) for d in spec.demand if d.model == model}


def test_a_measured_rate_is_split_over_the_models_regions_in_the_specs_proportions(hybrid) -> None:
    # llama-3.3-70b: virginia 6, san-francisco 4, london 5, frankfurt 5 (of 20) in the spec; 10 req/s measured
    spec, notes = with_measured_demand(hybrid, measured("llama-3.3-70b", 3000, prompt=3000 * 812.4, generation=3000 * 99.6),
                                       window_s=300, scale=1.5)
    assert by_region(spec, "llama-3.3-70b") == {
        "virginia": (pytest.approx(4.5), 812, 100), "san-francisco": (pytest.approx(3.0), 812, 100),
        "london": (pytest.approx(3.75), 812, 100), "frankfurt": (pytest.approx(3.75), 812, 100)}
    assert by_region(spec, "qwen2.5-32b") == by_region(hybrid, "qwen2.5-32b")  # no samples: the spec's
    assert note(notes, "llama-3.3-70b") == ("llama-3.3-70b: measured 10 req/s (3000 requests in 300 s, 2026-11-02 11:55:00-12:00:00 UTC, 2 replicas), "
                        "mean 812 prompt / 100 generated tokens; x1.5 = 15 req/s; split by the spec's shares: "
                        "virginia 30%, san-francisco 20%, london 25%, frankfurt 25%.")
    assert note(notes, "llama-3.1-8b").startswith("llama-3.1-8b: no counter samples in the last 300 s to measure from; keeping the spec's "
                               "demand (140 req/s).")


def test_a_model_the_spec_gives_no_demand_is_split_like_the_whole_spec(hybrid) -> None:
    spec = hybrid.model_copy(update={"demand": [d for d in hybrid.demand if d.model == "qwen2.5-32b"]})  # virginia 8, frankfurt 10, stockholm 4
    out, notes = with_measured_demand(spec, measured("llama-3.1-8b", 660, prompt=660, generation=660), window_s=300)
    assert by_region(out, "llama-3.1-8b") == {"virginia": (pytest.approx(0.8), 1, 1), "frankfurt": (pytest.approx(1.0), 1, 1),
                                             "stockholm": (pytest.approx(0.4), 1, 1)}
    assert "split by the spec's shares (as the whole spec's demand): virginia 36%, frankfurt 45%, stockholm 18%" in note(notes, "llama-3.1-8b")


def test_a_model_that_finished_no_request_keeps_the_specs_demand(hybrid) -> None:
    spec, notes = with_measured_demand(hybrid, measured("qwen2.5-32b", 0), window_s=300)
    assert spec == hybrid
    assert note(notes, "qwen2.5-32b") == "qwen2.5-32b: no request finished in 300 s, 2026-11-02 11:55:00-12:00:00 UTC; keeping the spec's demand (22 req/s)."


def test_queued_requests_are_called_out_and_unknown_models_ignored(hybrid) -> None:
    rates = measured("qwen2.5-32b", 300, prompt=300, generation=300, waiting=7) | measured("mystery", 300)
    spec, notes = with_measured_demand(hybrid, rates, window_s=300)
    assert "Requests were queued (up to 7 on a replica): this is what was served, demand may be higher" in note(notes, "qwen2.5-32b")
    assert notes[-1] == "mystery: served by replicas but not a model of the spec; ignored."
    assert {d.model for d in spec.demand} == {"llama-3.1-8b", "llama-3.3-70b", "qwen2.5-32b"}


def test_a_spec_without_any_demand_has_no_region_to_put_a_measurement_in(hybrid) -> None:
    spec = hybrid.model_copy(update={"demand": []})
    out, notes = with_measured_demand(spec, measured("qwen2.5-32b", 300, prompt=1, generation=1), window_s=300)
    assert out.demand == []
    assert "but the spec has no demand region to put it in; keeping the spec's (none)" in note(notes, "qwen2.5-32b")


# --- end to end: a replica's /metrics scraped now, against a sample recorded earlier --------------


class CountingWorker(FakeOpenAiWorker):
    """A fake vLLM replica whose Prometheus counters the test sets (two engines, two finish reasons)."""

    served = prompt = generation = 0

    def handle(self, request: Request) -> Response:
        if request.path != "/metrics":
            return super().handle(request)
        m = f'model_name="{self.model}"'
        text = "\n".join([
            "# TYPE vllm:request_success_total counter",
            f'vllm:request_success_total{{engine="0",finished_reason="stop",{m}}} {self.served - 1}.0',
            f'vllm:request_success_total{{engine="0",finished_reason="length",{m}}} 1.0',
            "# TYPE vllm:prompt_tokens_total counter",
            f'vllm:prompt_tokens_total{{engine="0",{m}}} {self.prompt}.0',
            f'vllm:prompt_tokens_created{{engine="0",{m}}} 1.7e+09',
            "# TYPE vllm:generation_tokens_total counter",
            f'vllm:generation_tokens_total{{engine="0",{m}}} {self.generation // 2}.0',
            f'vllm:generation_tokens_total{{engine="1",{m}}} {self.generation - self.generation // 2}.0',
            "# TYPE vllm:num_requests_waiting gauge",
            f'vllm:num_requests_waiting{{engine="0",{m}}} 0.0',
        ]) + "\n"
        return Response(text, 200, content_type="text/plain")


def test_demand_for_scrapes_the_replicas_now_and_measures_against_the_recorded_sample() -> None:
    spec = load_spec(ENVIRONMENTS / "local.yaml")
    store = open_ledger(load_settings(), "local")
    worker = CountingWorker("tiny-llama")
    with worker.serve() as url:
        with store.session() as session:
            session.add(ReplicaRecord(environment="local", model="tiny-llama", pool="local", provider="local", url=url,
                                      pid=7, status=ReplicaStatus.ready))
        earlier = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
        record_tokens(store, "local", TokenScrape(at=earlier, replicas=[ReplicaTokens(
            replica=f"{url}#7", model="tiny-llama", pool="local", provider="local", requests_total=10,
            prompt_tokens_total=1_000, generation_tokens_total=200)]))
        worker.served, worker.prompt, worker.generation = 130, 25_000, 6_200  # +120 requests, 200 and 50 tokens each
        out, notes = demand_for(spec, measured_window_s=60, store=store)
    [scraped] = [s for s in counter_samples(store, "local", earlier, dt.datetime.now(dt.UTC)) if s.at > earlier]
    store.close()
    assert (scraped.requests_total, scraped.prompt_tokens_total, scraped.generation_tokens_total) == (130, 25_000, 6_200)
    seconds = (scraped.at - earlier).total_seconds()
    [demand] = out.demand
    assert (demand.region, demand.input_tokens, demand.output_tokens) == ("local", 200, 50)
    assert demand.requests_per_second == pytest.approx(120 / seconds)
    assert notes[0].startswith(f"tiny-llama: measured {120 / seconds:.4g} req/s (120 requests in {seconds:.0f} s")
    assert notes[0].endswith("1 replica), mean 200 prompt / 50 generated tokens; all from local.")
