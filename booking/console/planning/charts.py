"""Server-rendered SVG charts: geometry computed here, drawn by templates (no JavaScript).

Colours are given as SVG presentation attributes, which the strict CSP allows (it forbids
``style`` attributes and inline ``<style>``). Every chart has a table beside it with the same
numbers, so nothing depends on telling colours apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

WIDTH = 720
BAR_HEIGHT = 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 16, 64
_LEGEND_STEP = 150
_MAX_X_LABELS = 16

# Okabe–Ito: told apart with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#009E73", "#D55E00", "#CC79A7", "#E69F00", "#56B4E9")


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LegendItem:
    x: float
    y: float
    fill: str
    label: str

    @property
    def text_x(self) -> float:
        return self.x + 20

    @property
    def text_y(self) -> float:
        return self.y + 12


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    rects: tuple[Rect, ...]
    y_ticks: tuple[Tick, ...]
    x_labels: tuple[Tick, ...]
    series: tuple[Series, ...]
    legend: tuple[LegendItem, ...]
    empty: bool

    @property
    def label_y(self) -> int:
        return self.plot_bottom + 20

    @property
    def center_x(self) -> float:
        return (self.plot_left + self.plot_right) / 2


def nice_ceiling(value: float) -> int:
    """1, 2 or 5 times a power of ten, at least ``value`` (and at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return int(10 * magnitude)


def axis_top(value: float, ticks: int = 4) -> int:
    """The axis maximum: ``ticks`` equal whole steps of a nice size (counts have no halves)."""
    return nice_ceiling(value / ticks) * ticks


def stacked_bars(
    *,
    categories: Sequence[str],
    series: Sequence[Series],
    values: Sequence[Mapping[str, int]],
    unit: str | None = None,
) -> BarChart:
    """One stacked bar per category, one segment per series."""
    unit = pgettext("count unit", "件") if unit is None else unit
    plot_left, plot_right = _LEFT, WIDTH - _RIGHT
    plot_top, plot_bottom = _TOP, BAR_HEIGHT - _BOTTOM
    totals = [sum(int(row.get(s.key, 0)) for s in series) for row in values]
    top = axis_top(max(totals, default=0))
    count = max(len(categories), 1)
    band = (plot_right - plot_left) / count
    bar_width = max(band * 0.7, 1.0)
    scale = (plot_bottom - plot_top) / top
    rects: list[Rect] = []
    for index, (category, row) in enumerate(zip(categories, values, strict=True)):
        x = plot_left + index * band + (band - bar_width) / 2
        base = float(plot_bottom)
        for s in series:
            value = int(row.get(s.key, 0))
            if value <= 0:
                continue
            height = value * scale
            base -= height
            rects.append(
                Rect(
                    round(x, 1),
                    round(base, 1),
                    round(bar_width, 1),
                    round(height, 1),
                    s.colour,
                    f"{category} {s.label} {value}{unit}",
                )
            )
    y_ticks = tuple(
        Tick(round(plot_bottom - (top * i // 4) * scale, 1), f"{top * i // 4:,}") for i in range(5)
    )
    every = max(1, math.ceil(len(categories) / _MAX_X_LABELS))
    x_labels = tuple(
        Tick(round(plot_left + index * band + band / 2, 1), category)
        for index, category in enumerate(categories)
        if index % every == 0
    )
    return BarChart(
        WIDTH,
        BAR_HEIGHT,
        plot_left,
        plot_right,
        plot_top,
        plot_bottom,
        tuple(rects),
        y_ticks,
        x_labels,
        tuple(series),
        tuple(
            LegendItem(plot_left + index * _LEGEND_STEP, BAR_HEIGHT - 22, s.colour, s.label)
            for index, s in enumerate(series)
        ),
        empty=not any(totals),
    )


# --- Heat map (fill rate per venue and day) ---------------------------------------------------

_HEAT_LEFT = 168
_HEAT_TOP = 28
_ROW = 30
# (lower bound of the fill rate in %, fill, text colour); dark cells get white text.
HEAT_STEPS = (
    (0, "#f1f5fb", "#111111"),
    (25, "#c6dbef", "#111111"),
    (50, "#6baed6", "#111111"),
    (75, "#2171b5", "#ffffff"),
    (100, "#08306b", "#ffffff"),
)
_HEAT_LABELS = ("0–24%", "25–49%", "50–74%", "75–99%", "100%")
NO_SLOTS_FILL = "#ffffff"


@dataclass(frozen=True)
class HeatCell:
    x: float
    y: float
    width: float
    height: float
    fill: str
    text_colour: str
    text: str
    title: str

    @property
    def text_x(self) -> float:
        return round(self.x + self.width / 2, 1)

    @property
    def text_y(self) -> float:
        return self.y + self.height / 2 + 4


@dataclass(frozen=True)
class HeatMap:
    width: int
    height: int
    left: int
    cells: tuple[HeatCell, ...]
    row_labels: tuple[Tick, ...]
    column_labels: tuple[Tick, ...]
    legend: tuple[LegendItem, ...]
    show_text: bool
    empty: bool

    @property
    def center_x(self) -> float:
        return self.width / 2


def _heat_colours(rate: float) -> tuple[str, str]:
    fill, text = HEAT_STEPS[0][1], HEAT_STEPS[0][2]
    for lower, step_fill, step_text in HEAT_STEPS:
        if rate * 100 >= lower:
            fill, text = step_fill, step_text
    return fill, text


def heat_map(
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    rates: Mapping[tuple[int, int], tuple[int, int]],
) -> HeatMap:
    """``rates[(row, column)] = (booked, capacity)``; a missing cell had no slots."""
    count = max(len(columns), 1)
    cell_width = (WIDTH - _HEAT_LEFT - _RIGHT) / count
    height = _HEAT_TOP + _ROW * max(len(rows), 1) + 44
    cells: list[HeatCell] = []
    for r, row_label in enumerate(rows):
        for c, column_label in enumerate(columns):
            booked, capacity = rates.get((r, c), (0, 0))
            x, y = _HEAT_LEFT + c * cell_width, _HEAT_TOP + r * _ROW
            if capacity <= 0:
                cells.append(
                    HeatCell(
                        round(x, 1),
                        y,
                        round(cell_width, 1),
                        _ROW,
                        NO_SLOTS_FILL,
                        "#444444",
                        "",
                        f"{row_label} {column_label} {_('枠なし')}",
                    )
                )
                continue
            rate = booked / capacity
            fill, text_colour = _heat_colours(rate)
            percent = f"{rate * 100:.0f}%"
            cells.append(
                HeatCell(
                    round(x, 1),
                    y,
                    round(cell_width, 1),
                    _ROW,
                    fill,
                    text_colour,
                    percent,
                    f"{row_label} {column_label} {percent}（{booked}/{capacity}）",
                )
            )
    every = max(1, math.ceil(len(columns) / _MAX_X_LABELS))
    column_labels = tuple(
        Tick(round(_HEAT_LEFT + c * cell_width + cell_width / 2, 1), label)
        for c, label in enumerate(columns)
        if c % every == 0
    )
    row_labels = tuple(
        Tick(_HEAT_TOP + r * _ROW + _ROW / 2 + 5, _shorten(label, 11))
        for r, label in enumerate(rows)
    )
    legend = tuple(
        LegendItem(_HEAT_LEFT + index * 100, height - 26, fill, _HEAT_LABELS[index])
        for index, (_lower, fill, _text) in enumerate(HEAT_STEPS)
    )
    return HeatMap(
        WIDTH,
        height,
        _HEAT_LEFT,
        tuple(cells),
        row_labels,
        column_labels,
        legend,
        show_text=cell_width >= 34,
        empty=not rates,
    )


def _shorten(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
