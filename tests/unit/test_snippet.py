"""autocap.js: its node unit tests, its build, its size budget, and the collector serving it.

The JavaScript unit tests (``collectors/js/test``, node's test runner with jsdom) run from
here so the README's one test command covers them; ``ops/bootstrap.sh --test`` installs
their npm packages.
"""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_collector_app import KEY, RecordingProducer, batch, build

ROOT = Path(__file__).parents[2]
JS = ROOT / "collectors" / "js"
DIST = JS / "dist"
#: The issue's budget for what a visitor downloads: minified, then gzipped.
SIZE_BUDGET_BYTES = 8 * 1024


def _node(*args: str) -> subprocess.CompletedProcess[str]:
    if not (JS / "node_modules").is_dir():
        pytest.fail("collectors/js/node_modules is missing: run ./ops/bootstrap.sh --test")
    return subprocess.run(
        ["node", *args], cwd=JS, capture_output=True, text=True, timeout=120, check=False
    )


def test_node_unit_tests_pass() -> None:
    tests = sorted(str(p.relative_to(JS)) for p in (JS / "test").glob("*.test.js"))
    assert len(tests) >= 4
    run = _node("--test", *tests)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    passed = re.search(r"^# pass (\d+)$", run.stdout, re.M)
    assert passed and int(passed.group(1)) >= 25, run.stdout[-2000:]


def test_committed_dist_is_the_build_of_src(tmp_path: Path) -> None:
    run = _node("build.mjs", str(tmp_path))
    assert run.returncode == 0, run.stderr
    for name in ("autocap.js", "autocap.min.js"):
        assert (tmp_path / name).read_bytes() == (DIST / name).read_bytes(), (
            f"collectors/js/dist/{name} is stale: run `node build.mjs` in collectors/js"
        )


def test_minified_gzipped_size_within_budget() -> None:
    size = len(gzip.compress((DIST / "autocap.min.js").read_bytes(), 9))
    assert size <= SIZE_BUDGET_BYTES, f"autocap.min.js is {size} bytes gzipped"


def test_readme_loader_is_loader_html() -> None:
    loader = (JS / "loader.html").read_text()
    script = re.search(r"<script>.*?</script>", loader, re.S)
    assert script is not None
    assert script.group(0) in (ROOT / "README.md").read_text()


def test_collector_serves_the_snippet_with_caching(tmp_path: Path) -> None:
    with build(tmp_path, RecordingProducer()) as client:
        for name in ("autocap.js", "autocap.min.js"):
            resp = client.get(f"/{name}", headers={"Accept-Encoding": "identity"})
            assert resp.status_code == 200
            assert resp.content == (DIST / name).read_bytes()
            assert resp.headers["content-type"].startswith("application/javascript")
            assert resp.headers["cache-control"] == "public, max-age=3600"
            etag = resp.headers["etag"]
            again = client.get(f"/{name}", headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b""
        zipped = client.get("/autocap.min.js", headers={"Accept-Encoding": "gzip, br"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == (DIST / "autocap.min.js").read_bytes()  # httpx inflated it
        assert int(zipped.headers["content-length"]) < len(zipped.content) / 2


def test_refusals_are_readable_by_the_page(tmp_path: Path) -> None:
    """The snippet must see a 401 as a 401 (dropped), not as a network error (retried)."""
    with build(tmp_path, RecordingProducer()) as client:
        resp = client.post(
            "/v1/batch",
            content=batch({"type": "track", "event": "x", "anonymousId": "a"}, writeKey="wk_nope"),
            headers={"Origin": "https://elsewhere.example", "Content-Type": "text/plain"},
        )
        assert resp.status_code == 401
        assert resp.headers["access-control-allow-origin"] == "*"
        assert resp.headers["access-control-expose-headers"] == "Retry-After"
        ok = client.post(
            "/v1/batch",
            content=batch({"type": "track", "event": "x", "anonymousId": "a"}, writeKey=KEY),
            headers={"Origin": "https://shop.example", "Content-Type": "text/plain"},
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://shop.example"
