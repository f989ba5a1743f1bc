"""Chart.js configurations built from query results. Pure: rows in, JSON-ready dicts out.

Every chart is a ``Chart``: a title, what it shows, the SQL (or command) behind it and a
Chart.js config. Colours are computed here (the page's script only draws), so a chart's
look is testable without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PALETTE",
    "Chart",
    "Table",
    "bar",
    "funnel_bars",
    "heat_color",
    "line",
    "overlap",
    "pivot_bar",
    "retention",
]

PALETTE = ("#3358ff", "#f2a541", "#2bb673", "#e5484d", "#8e4ec6", "#12a5b8", "#7b8599")


@dataclass(frozen=True)
class Table:
    """A query's columns and rows."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def column(self, name: str) -> list[Any]:
        """The values of one column, in row order."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


@dataclass(frozen=True)
class Chart:
    """One chart of the report."""

    key: str
    title: str
    about: str
    sql: str
    config: dict[str, Any]
    table: Table
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No rows: the chart is drawn with empty axes and says so."""
        return not self.table.rows


def _options(stacked: bool = False, horizontal: bool = False, y_title: str = "") -> dict[str, Any]:
    value_axis = "x" if horizontal else "y"
    scales: dict[str, Any] = {
        "x": {"stacked": stacked},
        "y": {"stacked": stacked},
    }
    scales[value_axis]["beginAtZero"] = True
    if y_title:
        scales[value_axis]["title"] = {"display": True, "text": y_title}
    return {
        "animation": False,
        "responsive": True,
        "maintainAspectRatio": False,
        "indexAxis": "y" if horizontal else "x",
        "scales": scales,
        "plugins": {"legend": {"position": "bottom"}},
    }


def bar(
    table: Table,
    label: str,
    values: Sequence[str],
    *,
    horizontal: bool = False,
    stacked: bool = False,
    y_title: str = "",
) -> dict[str, Any]:
    """A bar chart: one bar per row (labelled by column ``label``), one dataset per value
    column."""
    datasets = [
        {"label": name, "data": table.column(name), "backgroundColor": PALETTE[i % len(PALETTE)]}
        for i, name in enumerate(values)
    ]
    return {
        "type": "bar",
        "data": {"labels": [str(v) for v in table.column(label)], "datasets": datasets},
        "options": _options(stacked, horizontal, y_title),
    }


def pivot_bar(table: Table, label: str, series: str, value: str) -> dict[str, Any]:
    """A stacked bar chart: bars by ``label``, stacked by ``series`` (e.g. industry by
    employee band)."""
    labels = sorted({str(v) for v in table.column(label)})
    names = sorted({str(v) for v in table.column(series)})
    cells = {(str(r[0]), str(r[1])): r[2] for r in _pick(table, label, series, value)}
    datasets = [
        {
            "label": name,
            "data": [cells.get((lab, name), 0) for lab in labels],
            "backgroundColor": PALETTE[i % len(PALETTE)],
        }
        for i, name in enumerate(names)
    ]
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": datasets},
        "options": _options(stacked=True),
    }


def _pick(table: Table, *names: str) -> list[tuple[Any, ...]]:
    indexes = [table.columns.index(n) for n in names]
    return [tuple(row[i] for i in indexes) for row in table.rows]


def line(
    table: Table, label: str, values: Sequence[str], y_titles: Sequence[str]
) -> dict[str, Any]:
    """A line chart over ``label`` (days), one line per value column, each on its own axis
    when ``y_titles`` gives two."""
    datasets = []
    for i, name in enumerate(values):
        color = PALETTE[i % len(PALETTE)]
        datasets.append(
            {
                "label": name,
                "data": table.column(name),
                "borderColor": color,
                "backgroundColor": color,
                "yAxisID": "y" if i == 0 else "y1",
                "tension": 0.2,
            }
        )
    options = _options(y_title=y_titles[0] if y_titles else "")
    if len(values) > 1:
        options["scales"]["y1"] = {
            "beginAtZero": True,
            "position": "right",
            "grid": {"drawOnChartArea": False},
            "title": {"display": True, "text": y_titles[1] if len(y_titles) > 1 else values[1]},
        }
    return {
        "type": "line",
        "data": {"labels": [str(v) for v in table.column(label)], "datasets": datasets},
        "options": options,
    }


def funnel_bars(steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Funnel bars, as ``autocap funnel --format json`` reports the steps: each bar is the
    people who reached that step, split into those who went on to the next step (on the
    last bar: converted), those who dropped before it, and those still in flight."""
    labels = [str(s["step"]) for s in steps]
    counts = [int(s["count"]) for s in steps]
    # Step k+1's `dropped` and `in_flight` are the people who reached step k but not k+1.
    went_on = counts[1:] + counts[-1:]
    dropped = [int(s["dropped"]) for s in steps[1:]] + [0]
    in_flight = [int(s["in_flight"]) for s in steps[1:]] + [0]
    datasets = [
        {"label": "went on (last step: converted)", "data": went_on, "backgroundColor": PALETTE[0]},
        {"label": "dropped before the next step", "data": dropped, "backgroundColor": PALETTE[3]},
        {"label": "in flight", "data": in_flight, "backgroundColor": PALETTE[6]},
    ]
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": datasets},
        "options": _options(stacked=True, y_title="people reaching the step"),
    }


def heat_color(share: float) -> str:
    """The cell colour of a retention share (0..1): white to the palette's blue."""
    share = min(max(share, 0.0), 1.0)
    r, g, b = (int(255 - (255 - c) * share) for c in (0x33, 0x58, 0xFF))
    return f"rgba({r},{g},{b},1)"


def retention(table: Table) -> dict[str, Any]:
    """A matrix (heatmap): cohort week by weeks since first seen, coloured by share retained."""
    rows = _pick(table, "cohort_week", "week_offset", "retained", "people", "cohort_size")
    cohorts = sorted({str(r[0]) for r in rows})
    offsets = max((int(r[1]) for r in rows), default=0) + 1
    data = [
        {"x": f"week {int(r[1])}", "y": f"{r[0]} ({r[4]})", "v": float(r[2]), "people": r[3]}
        for r in rows
    ]
    y_labels = [f"{c} ({next(r[4] for r in rows if str(r[0]) == c)})" for c in cohorts]
    return _matrix(
        "share of the cohort active",
        data,
        [heat_color(float(r[2])) for r in rows],
        [f"week {i}" for i in range(offsets)],
        y_labels,
    )


def overlap(names: Sequence[str], cells: Sequence[tuple[str, str, float]]) -> dict[str, Any]:
    """A matrix (heatmap) of pairwise overlaps (0..1) between ``names``."""
    data = [{"x": a, "y": b, "v": v} for a, b, v in cells]
    colors = [heat_color(v) for _, _, v in cells]
    return _matrix("overlap (Jaccard)", data, colors, list(names), list(names))


def _matrix(
    label: str,
    data: list[dict[str, Any]],
    colors: list[str],
    x_labels: list[str],
    y_labels: list[str],
) -> dict[str, Any]:
    return {
        "type": "matrix",
        "data": {
            "datasets": [
                {
                    "label": label,
                    "data": data,
                    "backgroundColor": colors,
                    "borderColor": "#dde2ec",
                    "borderWidth": 1,
                }
            ]
        },
        "options": {
            "animation": False,
            "responsive": True,
            "maintainAspectRatio": False,
            "plugins": {"legend": {"display": False}},
            "scales": {
                "x": {"type": "category", "labels": x_labels},
                "y": {"type": "category", "labels": y_labels, "offset": True},
            },
        },
        # Read by the page script to size the cells (Chart.js needs functions for that).
        "grid": {"columns": max(len(x_labels), 1), "rows": max(len(y_labels), 1)},
    }
