"""`autocap up --demo --days N` as a newcomer runs it: the demo site with the snippet, its
history imported and live traffic in the warehouse, the example funnel, `autocap report`
rendered in real headless Chromium, and a real browser's visit to the demo site landing in
the warehouse."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from pipeline.processes import free_port
from pipeline.settings import Settings
from tests.conftest import wait_until
from tests.integration.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.integration.test_up import Up

PAGES = ["/", "/pricing", "/signup", "/docs", "/app", "/shop", "/shop/hoodie", "/cart", "/checkout"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One `autocap up --demo --days 3` for the module, with history and live traffic in."""
    root = tmp_path_factory.mktemp("demo")
    settings = Settings(
        data_dir=root / "data",
        definitions_path=root / "none.yaml",  # none: up --demo uses the demo's example
        topic_prefix="t" + uuid.uuid4().hex[:10],
        collector_port=free_port(),
        demo_port=free_port(),
        worker_metrics_port=free_port(),
        sink_metrics_port=free_port(),
        health_metrics_port=free_port(),
        materializer_metrics_port=free_port(),
        write_keys=(),  # as a newcomer: up generates the key
        consumer_session_timeout_s=3.0,
        sink_batch_max_seconds=0.2,
        materialize_interval_s=2.0,
        partitions=2,
    )
    up = Up(settings, "--demo", "--days", "3", "--rate", "20")
    try:
        up.wait_up(90)
        yield up
    finally:
        up.proc.send_signal(signal.SIGINT)
        try:
            up.proc.wait(30)
        except subprocess.TimeoutExpired:
            up.proc.kill()


def _key(up: Up) -> str:
    return (up.settings.data_dir / "write_key").read_text().strip()


def _query(up: Up, sql: str) -> list[tuple]:
    con = duckdb.connect(str(up.settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _cli(up: Up, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "AUTOCAP_DATA_DIR": str(up.settings.data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )


def test_demo_site_serves_its_pages_with_the_snippet(demo: Up) -> None:
    site = f"http://127.0.0.1:{demo.settings.demo_port}"
    collector = f"http://127.0.0.1:{demo.settings.collector_port}"
    assert f"{site}/" in demo.output
    for path in PAGES:
        page = httpx.get(site + path, timeout=10)
        assert page.status_code == 200, path
        assert f'"{collector}/autocap.min.js"' in page.text
        assert f'autocap.init("{_key(demo)}");' in page.text
    assert httpx.get(site + "/shop/nothing", timeout=10).status_code == 404
    # The generated key allows the site's origin: a browser on the site may post.
    answer = httpx.post(
        collector + "/v1/batch",
        content=json.dumps(
            {
                "writeKey": _key(demo),
                "batch": [{"type": "track", "event": "x", "anonymousId": "cors-check"}],
            }
        ),
        headers={"Origin": site, "Content-Type": "text/plain"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == site


def test_history_and_live_traffic_reach_the_warehouse_with_defined_events(demo: Up) -> None:
    def counts() -> tuple | None:
        if not demo.settings.warehouse_path.exists():
            return None
        row = _query(
            demo,
            "SELECT count(*) FILTER (WHERE timestamp < now() - INTERVAL 1 DAY),"
            " count(*) FILTER (WHERE timestamp > now() - INTERVAL 5 MINUTE),"
            " count(DISTINCT account_id) FROM events",
        )[0]
        return row if row[0] > 100 and row[1] > 0 and row[2] >= 3 else None

    wait_until(counts, 60, interval=1, what="imported history and live demo traffic")
    wait_until(
        lambda: _query(demo, "SELECT count(*) FROM defined_events WHERE name = 'Signed Up'")[0][0],
        30,
        interval=1,
        what="the demo's defined events",
    )
    funnel = _cli(
        demo,
        "funnel",
        "--steps",
        "Viewed Pricing,Signed Up,Upgraded",
        "--window",
        "14d",
        "--format",
        "json",
    )
    assert funnel.returncode == 0, funnel.stderr
    steps = json.loads(funnel.stdout)["steps"]
    assert steps[0]["count"] > steps[1]["count"] > 0
    accounts = _cli(
        demo,
        "query",
        "--format",
        "json",
        "SELECT traits->>'industry' AS industry, count(DISTINCT account_id) AS accounts"
        " FROM events WHERE type = 'group' GROUP BY 1",
    )
    assert accounts.returncode == 0, accounts.stderr
    assert len(json.loads(accounts.stdout)) >= 2


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_report_charts_render_in_chromium(demo: Up, browser: Browser, tmp_path: Path) -> None:
    wait_until(
        lambda: _query(demo, "SELECT count(*) FROM events WHERE event = 'Order Completed'")[0][0],
        60,
        interval=1,
        what="orders in the warehouse",
    )
    out = tmp_path / "report.html"
    made = _cli(demo, "report", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert 150_000 < out.stat().st_size < 2_000_000
    context = browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-charts-drawn]", timeout=15_000)
    painted = page.evaluate(
        """() => [...document.querySelectorAll('canvas')].map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
            return [c.id, c.width * c.height, n];
        })"""
    )
    assert len(painted) >= 10  # 4 activity, 4 funnels, 2 B2B, 1 B2C
    for canvas, area, pixels in painted:
        assert area > 0 and pixels > area * 0.02, (canvas, area, pixels)  # drawn, not blank
    assert not errors
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 100_000
    context.close()


def test_a_browser_on_the_demo_site_lands_in_the_warehouse(demo: Up, browser: Browser) -> None:
    site = f"http://127.0.0.1:{demo.settings.demo_port}"
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site + "/pricing")
    page.wait_for_function("window.autocap && window.autocap.anonymousId")
    anon = str(page.evaluate("autocap.anonymousId"))
    page.click("#request-demo")
    page.evaluate("autocap.flush()")
    context.close()
    assert not errors
    wait_until(
        lambda: _query(
            demo,
            "SELECT count(*) FROM defined_events JOIN events USING (event_id)"
            f" WHERE name = 'Requested Demo' AND events.anonymous_id = '{anon}'",  # ours, no input
        )[0][0],
        30,
        interval=1,
        what="the browser's click as the defined event Requested Demo",
    )


DOCS = Path(__file__).parents[2] / "docs"


def _doc_commands(text: str) -> list[list[str]]:
    """The `autocap funnel|query ...` lines of a doc's bash blocks, continuations joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if len(words) > 1 and words[0].endswith("autocap") and words[1] in ("funnel", "query"):
                commands.append(words[1:])
    return commands


def test_the_docs_sql_and_commands_run_on_the_demo_warehouse(demo: Up) -> None:
    wait_until(
        lambda: _query(demo, "SELECT count(*) FROM events WHERE event = 'Order Completed'")[0][0],
        60,
        interval=1,
        what="orders in the warehouse",
    )
    for doc in ("quickstart.md", "analyst-guide.md"):
        text = (DOCS / doc).read_text()
        blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
        assert blocks, doc
        for sql in blocks:
            assert _query(demo, sql), f"{doc}: no rows from\n{sql}"
        commands = _doc_commands(text)
        for args in commands:
            done = _cli(demo, *args)
            assert done.returncode == 0, (args, done.stderr)
            assert done.stdout.strip(), args
    assert len(_doc_commands((DOCS / "analyst-guide.md").read_text())) >= 5
