"""The SVG charts: axis ends, money labels, escaping, and what counts as a data point."""

from __future__ import annotations

import pytest

from orchestrator.dashboard.charts import bars, count, nice_max, share_bars, stacked_area, usd


@pytest.mark.parametrize(("value", "end"), [(0, 1.0), (0.7, 1.0), (3.1, 5.0), (12, 20.0), (2400, 2500.0), (5000, 5000.0)])
def test_axis_ends_are_round(value: float, end: float) -> None:
    assert nice_max(value) == end


def test_labels_are_short() -> None:
    assert [usd(v) for v in (1.234, 123.4, 12_345, 2_500_000, -5.671)] == ["$1.23", "$123", "$12.3k", "$2.5M", "−$5.67"]
    assert [count(v) for v in (12, 1_500, 2_400_000, 5_529_600_000)] == ["12", "1.5k", "2.4M", "5.5B"]


def test_bars_skip_missing_values_and_escape_names() -> None:
    chart = bars(["<model>", "b"], {"x&y": [1.0, None]}, "label")
    assert chart.points == 1 and chart.svg.count('class="mark"') == 1
    assert "&lt;model&gt;" in chart.svg and "x&amp;y" in chart.svg and "<model>" not in chart.svg


def test_nothing_to_draw_is_an_empty_chart() -> None:
    assert stacked_area([], {}, "x").points == 0
    assert stacked_area(["a", "b"], {"p": [0.0, 0.0]}, "x").svg == ""
    assert share_bars({"cost": {}}, "x").points == 0


def test_a_single_bucket_is_drawn_as_a_bar() -> None:
    chart = stacked_area(["Nov 02"], {"aws": [3.0], "gcp": [1.0]}, "x")
    assert chart.points == 2 and chart.svg.count("<polygon") == 2


def test_bar_labels_get_the_room_they_need_up_to_a_limit() -> None:
    short = bars(["a"], {"x": [1.0]}, "label")
    long_name = "llama-3.1-8b · aws-use1-l4-spot (2 replicas)"
    whole = bars([long_name], {"x": [1.0]}, "label")
    assert 'x="190"' in short.svg and f">{long_name}</text>" in whole.svg
    cut = bars([long_name + " and then some more"], {"x": [1.0]}, "label")
    assert f">{long_name[:43]}…</text>" in cut.svg
