"""The geometry of a counts histogram, drawn on the server as SVG (no script, no CDN).

The template only places what is computed here; every length is in the units of the
SVG's viewBox. A chart is as wide as its bars need (at least MIN_WIDTH), so that its
text stays readable when a phone scales it down; a wider one scrolls there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

FIT_WIDTH = 640  # bars share this width while they can
MIN_WIDTH = 320
MIN_PITCH = 20  # the narrowest slot a bar gets: past FIT_WIDTH, the chart grows
MAX_BAR = 48
TOP = 24  # room for the count above the tallest bar
LEFT = 48  # room for the axis labels
RIGHT = 8
PLOT_HEIGHT = 180
MAX_BARS = 48  # beyond this, the rarest outcomes are left out and counted in a note
CHAR = 6.6  # the width of one character of the 11-unit monospace labels


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    x: float
    y: float
    width: float
    height: float

    @property
    def middle(self) -> float:
        return round(self.x + self.width / 2, 2)

    @property
    def count_y(self) -> float:
        return round(self.y - 4, 2)


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class Histogram:
    """One experiment's counts: bars, axis ticks, and what did not fit."""

    name: str
    total: int
    bars: list[Bar]
    ticks: list[Tick]
    height: float
    baseline: float
    rotate_labels: bool
    hidden_outcomes: int
    hidden_shots: int
    unit: str = "shot"
    width: int = MIN_WIDTH
    left: int = LEFT

    @property
    def wide(self) -> bool:
        return self.width > FIT_WIDTH

    @property
    def label_y(self) -> float:
        return self.baseline + 14

    @property
    def axis_x(self) -> int:
        return self.left - 6


def outcome_label(key: str) -> str:
    """How an outcome reads under its bar; an experiment without `measure` gives ''."""
    return key if key != "" else "(none)"


def _order(keys: list[str]) -> list[str]:
    """Numeric outcomes (spins: atoms flipped) in numeric order, others as strings."""
    if all(k.lstrip("-").isdigit() for k in keys):
        return sorted(keys, key=int)
    return sorted(keys)


def histogram(name: str, counts: dict[str, int]) -> Histogram:
    """Bars for `counts`, the `MAX_BARS` most frequent outcomes when there are more."""
    kept = sorted(counts, key=lambda k: (-counts[k], k))[:MAX_BARS]
    keys = _order(kept)
    hidden = [k for k in counts if k not in set(kept)]
    chart = series(name, [outcome_label(k) for k in keys], [counts[k] for k in keys])
    return replace(
        chart,
        total=sum(counts.values()),
        hidden_outcomes=len(hidden),
        hidden_shots=sum(counts[k] for k in hidden),
    )


def series(name: str, labels: list[str], values: list[int], unit: str = "shot") -> Histogram:
    """Bars for `values` in the order given, each under its label."""
    slots = max(len(labels), 1)
    longest = max((len(label) for label in labels), default=1)
    shared = (FIT_WIDTH - LEFT - RIGHT) / slots
    pitch = max(MIN_PITCH, min(shared, max(MAX_BAR + 16, longest * CHAR + 8)))
    rotate = longest * CHAR > pitch - 2
    width = max(MIN_WIDTH, round(LEFT + RIGHT + slots * pitch))
    first = LEFT + (width - LEFT - RIGHT - slots * pitch) / 2  # few bars stand in the middle
    below = 24 + (longest * CHAR * 0.72 if rotate else 0)  # sin 46°: a label at -45°, roughly
    baseline = TOP + PLOT_HEIGHT
    peak = max(values, default=0)
    bars = []
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = PLOT_HEIGHT * value / peak if peak else 0.0
        bar = min(pitch - min(pitch * 0.2, 12), MAX_BAR)
        bars.append(
            Bar(
                label=label,
                count=value,
                x=round(first + index * pitch + (pitch - bar) / 2, 2),
                y=round(baseline - height, 2),
                width=round(bar, 2),
                height=round(height, 2),
            )
        )
    ticks = [Tick(round(baseline - PLOT_HEIGHT * f, 2), round(peak * f)) for f in (0, 0.5, 1)]
    if peak < 2:
        ticks = [ticks[0], ticks[2]] if peak else [ticks[0]]
    return Histogram(
        name=name,
        total=sum(values),
        unit=unit,
        bars=bars,
        ticks=ticks,
        height=round(baseline + below, 2),
        baseline=baseline,
        rotate_labels=rotate,
        hidden_outcomes=0,
        hidden_shots=0,
        width=width,
    )
