"""The dashboard's histograms and example jobs, as plain functions (issue 16)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from backends.dashboard.examples import examples, readable
from backends.dashboard.histogram import MAX_BARS, PLOT_HEIGHT, histogram, series
from spooler.simulators import BACKENDS
from storage_providers.schemas import BackendConfigIn


def test_bars_are_scaled_to_the_most_frequent_outcome():
    chart = histogram("experiment_0", {"0 1": 30, "1 0": 10})
    assert [(bar.label, bar.count) for bar in chart.bars] == [("0 1", 30), ("1 0", 10)]
    tall, short = chart.bars
    assert tall.height == PLOT_HEIGHT and short.height == pytest.approx(PLOT_HEIGHT / 3, 0.01)
    assert tall.y + tall.height == short.y + short.height == chart.baseline
    assert (chart.total, chart.unit, chart.hidden_outcomes) == (40, "shot", 0)
    assert [tick.value for tick in chart.ticks] == [0, 15, 30]


def test_spin_outcomes_are_in_numeric_order_and_empty_ones_are_named():
    assert [bar.label for bar in histogram("e", {"10": 1, "9": 2, "100": 3}).bars] == [
        "9",
        "10",
        "100",
    ]
    assert [bar.label for bar in histogram("e", {"": 5}).bars] == ["(none)"]


def test_past_max_bars_the_rarest_outcomes_are_counted_not_drawn():
    counts = {format(i, "08b"): 1000 - i for i in range(MAX_BARS + 5)}
    chart = histogram("e", counts)
    assert len(chart.bars) == MAX_BARS
    assert chart.hidden_outcomes == 5
    assert chart.hidden_shots == sum(1000 - i for i in range(MAX_BARS, MAX_BARS + 5))
    assert chart.rotate_labels  # eight-character labels do not fit under 48 bars


def test_bars_never_overlap_and_stay_inside_the_picture():
    chart = histogram("e", {format(i, "04b"): i + 1 for i in range(16)})
    edges = [(bar.x, bar.x + bar.width) for bar in chart.bars]
    assert all(right <= left for (_, right), (left, _) in zip(edges, edges[1:], strict=False))
    assert edges[0][0] >= chart.left and edges[-1][1] <= chart.width


def test_a_series_keeps_its_order_and_unit():
    chart = series("jobs", ["22", "23", "00"], [0, 4, 2], unit="job")
    assert [bar.label for bar in chart.bars] == ["22", "23", "00"]
    assert (chart.total, chart.unit, chart.bars[0].height) == (6, "job", 0)


@pytest.mark.parametrize("display", sorted(BACKENDS))
def test_every_example_of_the_built_in_backends_runs(display):
    simulator = BACKENDS[display]
    offered = examples(BackendConfigIn.model_validate(simulator.config()))
    assert "Load and measure" in offered and len(offered) == 1 + len(simulator.gates)
    for text in offered.values():
        result = simulator.run(json.loads(text), job_id="example")
        (experiment,) = result["results"]
        assert sum(Counter(experiment["data"]["memory"]).values()) == 100


def test_a_job_reads_one_instruction_a_line_and_parses_back():
    job = {
        "experiment_0": {"instructions": [["load", [0], [3]], ["measure", [0], []]], "shots": 2},
        "experiment_1": {"instructions": [], "num_wires": 1},
    }
    text = readable(job)
    assert json.loads(text) == job
    assert '      ["load", [0], [3]],\n      ["measure", [0], []]\n' in text
