"""The report's HTML: one file, the charting libraries and data inlined, so it opens
offline. Pure: charts in, a string out."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from pipeline.report.charts import Chart

__all__ = ["Section", "render_page", "vendored_scripts"]

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f7f8fb; }
header { padding: 1.2rem 2rem; background: #1d2330; color: #e8ecf5; }
header h1 { margin: 0 0 .2rem; font-size: 1.4rem; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem 2rem 3rem; }
section > h2 { margin-top: 2rem; border-bottom: 1px solid #dde2ec; }
.chart { background: #fff; border: 1px solid #dde2ec; border-radius: 8px; padding: 1rem;
  margin: 1rem 0; }
.chart h3 { margin: 0 0 .3rem; }
.canvas { position: relative; height: 320px; }
.empty { color: #a33; }
.missing { background: #fff8e6; border: 1px solid #f2d48a; border-radius: 8px;
  padding: .8rem 1rem; }
details pre { background: #f1f3f8; padding: .8rem; overflow-x: auto; font-size: 12.5px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #dde2ec; padding: .2rem .5rem; text-align: right; }
"""

# Draws every chart from the JSON data block; only functions (matrix cell sizes, tooltips)
# are added here, since JSON cannot carry them.
_DRAW = """
(function () {
  var charts = JSON.parse(document.getElementById("autocap-charts").textContent);
  charts.forEach(function (spec) {
    var config = spec.config;
    if (config.type === "matrix") {
      var grid = config.grid, ds = config.data.datasets[0];
      ds.width = function (c) {
        var a = c.chart.chartArea; return a ? a.width / grid.columns - 2 : 10; };
      ds.height = function (c) {
        var a = c.chart.chartArea; return a ? a.height / grid.rows - 2 : 10; };
      config.options.plugins.tooltip = { callbacks: {
        title: function () { return ""; },
        label: function (c) { var v = c.raw, pct = Math.round(v.v * 100) + "%";
          return v.y + ", " + v.x + ": " +
            (v.people === undefined ? pct : v.people + " people (" + pct + ")"); } } };
      delete config.grid;
    }
    new Chart(document.getElementById("chart-" + spec.key), config);
  });
  document.body.dataset.chartsDrawn = String(charts.length);
})();
"""


@dataclass(frozen=True)
class Section:
    """A heading with its charts, or a note when what it needs is not built yet."""

    title: str
    intro: str
    charts: Sequence[Chart] = ()
    missing: str = ""


def vendored_scripts() -> str:
    """Chart.js and its matrix (heatmap) plugin, as pinned in ``vendor/versions.txt``."""
    names = ("chart.umd.min.js", "chartjs-chart-matrix.min.js")
    return "\n".join((VENDOR_DIR / n).read_text(encoding="utf-8") for n in names)


def _script_json(value: object) -> str:
    # Inside <script>, "</script>" or "<!--" in the data (event names are user input) would
    # end the block: escape every "<".
    return orjson.dumps(value).decode().replace("<", "\\u003c")


def _table(chart: Chart, limit: int = 12) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in chart.table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in chart.table.rows[:limit]
    )
    more = len(chart.table.rows) - limit
    tail = f"<p>... and {more} more rows</p>" if more > 0 else ""
    return f"<table><tr>{head}</tr>{body}</table>{tail}"


def _chart(chart: Chart) -> str:
    empty = '<p class="empty">No data yet.</p>' if chart.empty else ""
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in chart.notes)
    return f"""<div class="chart" id="{chart.key}">
<h3>{html.escape(chart.title)}</h3><p>{html.escape(chart.about)}</p>{empty}{notes}
<div class="canvas"><canvas id="chart-{chart.key}" role="img"
 aria-label="{html.escape(chart.title)}"></canvas></div>
<details><summary>SQL behind this chart</summary><pre><code>{html.escape(chart.sql)}</code></pre>
</details>
<details><summary>Data</summary>{_table(chart)}</details>
</div>"""


def _section(section: Section) -> str:
    body = "".join(_chart(c) for c in section.charts)
    if section.missing:
        body += f'<p class="missing">{html.escape(section.missing)}</p>'
    heading = f"<h2>{html.escape(section.title)}</h2><p>{html.escape(section.intro)}</p>"
    return f"<section>{heading}{body}</section>"


def render_page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole report as one HTML document."""
    charts = [{"key": c.key, "config": c.config} for s in sections for c in s.charts]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
</head><body>
<header><h1>{html.escape(title)}</h1><div>{html.escape(subtitle)}</div></header>
<main>{"".join(_section(s) for s in sections)}</main>
<script type="application/json" id="autocap-charts">{_script_json(charts)}</script>
<script>{vendored_scripts()}</script>
<script>{_DRAW}</script>
</body></html>
"""
