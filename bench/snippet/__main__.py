"""``python -m bench.snippet``: what autocap.js costs the host page, in headless Chromium.

Baseline, measured side by side in the same browser: the same page without the snippet.
Each run loads both pages and times, on the page's main thread:

- N synthetic clicks on the label inside a ``<button>`` in a 200-card product grid
  (``click()`` dispatches through every listener synchronously, so the snippet's capture
  work, including its rage-click detection and queueing, is inside the timing);
- the synchronous script tag in ``<head>``, between ``performance.now()`` marks: loading
  the script (loopback download, parse, run) and ``init`` (ids, stored queue, listeners,
  the first page view). The paste-in loader loads the script async, so a real page only
  pays the run and ``init`` part, after parsing.

Pages, the script and a stand-in collector answering 200 are served by a local HTTP
server, so only the snippet's own work is measured. Prints a Markdown table and medians.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
GRID = "".join(
    f'<div class="card" data-sku="sku-{i}"><h3>Product {i}</h3><p>Great product {i}</p>'
    f'<button class="btn add" data-sku="sku-{i}"><svg width="8" height="8"></svg>'
    f"<span>Add to cart</span></button></div>"
    for i in range(200)
)
PAGE = """<!doctype html><html><head><title>Bench</title>{head}</head>
<body><main><section class="grid">{grid}</section></main></body></html>"""
MARK_START = "<script>window.t0 = performance.now()</script>"
MARK_END = "<script>window.t1 = performance.now()</script>"
SNIPPET_HEAD = (
    '<script src="/autocap.min.js"></script>'
    "<script>window.tm = performance.now()</script>"
    '<script>autocap.init("wk_bench", {flushInterval: 1000});</script>'
)
CLICKS_JS = """(n) => {
  const target = document.querySelectorAll("button.add span")[150];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) target.click();
  return (performance.now() - t0) * 1000 / n;
}"""
HEAD_JS = "() => [(window.tm || window.t0) - window.t0, window.t1 - (window.tm || window.t0)]"


class _Site(BaseHTTPRequestHandler):
    """The bench pages, the built snippet, and a collector that accepts everything."""

    def do_GET(self) -> None:
        if self.path == "/autocap.min.js":
            body = (ROOT / "collectors" / "js" / "dist" / "autocap.min.js").read_bytes()
            self._answer(body, "application/javascript")
        else:
            snippet = SNIPPET_HEAD if self.path == "/with.html" else ""
            head = MARK_START + snippet + MARK_END
            self._answer(PAGE.format(head=head, grid=GRID).encode(), "text/html")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._answer(b'{"success":true}', "application/json")

    def _answer(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # a beacon's page may be gone before the answer

    def log_message(self, *args: Any) -> None:
        pass


def _measure(page: Page, url: str, clicks: int) -> tuple[float, float, float]:
    """µs per click, and ms holding <head>: loading the script, and init."""
    page.goto(url)
    page.wait_for_load_state("load")
    load_ms, init_ms = page.evaluate(HEAD_JS)
    page.evaluate(CLICKS_JS, 50)  # warm-up: JIT, first layout
    return float(page.evaluate(CLICKS_JS, clicks)), float(load_ms), float(init_ms)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints one row per run, then the medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.snippet", description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clicks", type=int, default=2000, help="clicks timed per page")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    rows: list[dict[str, float]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        for _ in range(args.runs):
            context = browser.new_context()  # a new visitor: empty storage each run
            page = context.new_page()
            base, _, _ = _measure(page, f"{origin}/without.html", args.clicks)
            click, load, init = _measure(page, f"{origin}/with.html", args.clicks)
            context.close()
            rows.append({"base": base, "click": click, "load": load, "init": init})
        browser.close()
    server.shutdown()
    print(
        "| run | click, no snippet (µs) | click, autocap.js (µs) | added (µs) "
        "| load script (ms) | init (ms) |"
    )
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(rows, 1):
        print(
            f"| {i} | {r['base']:.1f} | {r['click']:.1f} | {r['click'] - r['base']:.1f} "
            f"| {r['load']:.1f} | {r['init']:.1f} |"
        )
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(
        f"\nmedians of {len(rows)} runs: a click costs {med['click']:.1f} µs with autocap.js "
        f"vs {med['base']:.1f} µs on the same page without it (+{med['click'] - med['base']:.1f}"
        f" µs); the script tag holds <head> {med['load']:.1f} ms to load and "
        f"{med['init']:.1f} ms to init"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
