"""Serve the built autocap.js (``GET /autocap.js``, ``/autocap.min.js``) from the collector.

The site owner's one script tag points here, so the snippet is loaded from the same origin
it sends events to. Files are read once at start; answers carry an ETag (304 on a match),
``Cache-Control`` for an hour (a new release reaches visitors within that), and a gzip
body when the browser accepts one.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from pipeline.resources import resource_dir

__all__ = ["SNIPPET_FILES", "SnippetFile", "load_snippets", "snippet_response"]

SNIPPET_FILES = ("autocap.js", "autocap.min.js")
_CACHE_CONTROL = "public, max-age=3600"


@dataclass(frozen=True)
class SnippetFile:
    """One built file, with its gzip body and ETag worked out once."""

    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def read(cls, path: Path) -> SnippetFile:
        """Load ``path`` (fixed mtime in the gzip header, so bodies are reproducible)."""
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(body, gzip.compress(body, 9, mtime=0), f'"{digest}"')


def load_snippets(folder: Path | None = None) -> dict[str, SnippetFile]:
    """The built files by name; empty when the build is missing (answered with 404)."""
    try:
        folder = folder or resource_dir("js")
    except FileNotFoundError:
        return {}
    return {
        name: SnippetFile.read(folder / name) for name in SNIPPET_FILES if (folder / name).is_file()
    }


def snippet_response(request: Request, snippet: SnippetFile | None) -> Response:
    """The answer to ``GET`` of one snippet file."""
    if snippet is None:
        return Response(
            b"autocap.js is not built in this install (collectors/js/dist is missing)\n",
            status_code=404,
            media_type="text/plain",
        )
    headers = {
        "Cache-Control": _CACHE_CONTROL,
        "ETag": snippet.etag,
        "Vary": "Accept-Encoding",
        # Any site may load the script (it is public); CORS lets it use integrity checks.
        "Access-Control-Allow-Origin": "*",
    }
    if snippet.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = snippet.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = snippet.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)
