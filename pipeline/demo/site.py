"""The Nimbus demo website (``autocap up --demo``): a SaaS product site and a shop, with the
autocap snippet installed. Pages are small static files in ``site/``; the collector's URL and
the write key are filled in when a page is served.

``render(path, collector, write_key)`` is pure (tests call it directly); ``serve_site`` runs
it behind a threaded stdlib HTTP server until ``stop`` is set.
"""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.settings import Settings

__all__ = [
    "DEMO_DEFINITIONS",
    "PAGES",
    "PRODUCTS",
    "Page",
    "Product",
    "render",
    "serve_site",
    "site_origins",
]

SITE_DIR = Path(__file__).resolve().parent / "site"
#: The example definitions ``autocap up --demo`` uses when the user has none.
DEMO_DEFINITIONS = Path(__file__).resolve().parent / "definitions.yaml"


@dataclass(frozen=True)
class Product:
    """One thing the shop sells."""

    slug: str
    name: str
    price: int


PRODUCTS = (
    Product("hoodie", "Cloud Hoodie", 59),
    Product("stickers", "Sticker Pack", 9),
    Product("mug", "Desk Mug", 19),
    Product("sneakers", "Trail Sneakers", 129),
)


@dataclass(frozen=True)
class Page:
    """A page of the site: its file in ``site/`` and its title."""

    file: str
    title: str


PAGES = {
    "/": Page("index.html", "Team analytics"),
    "/pricing": Page("pricing.html", "Pricing"),
    "/signup": Page("signup.html", "Start your trial"),
    "/docs": Page("docs.html", "Docs"),
    "/app": Page("app.html", "Workspace"),
    "/shop": Page("shop.html", "Shop"),
    "/cart": Page("cart.html", "Cart"),
    "/checkout": Page("checkout.html", "Checkout"),
}
_ASSETS = {"/site.css": "text/css", "/site.js": "text/javascript"}


def _read(name: str) -> str:
    return (SITE_DIR / name).read_text(encoding="utf-8")


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def render(path: str, collector: str, write_key: str) -> tuple[str, bytes] | None:
    """(content type, body) of the page or asset at ``path``; None when there is none.

    ``collector`` is the collector's base URL as the browser reaches it.
    """
    path = urlsplit(path).path.rstrip("/") or "/"
    if path in _ASSETS:
        return _ASSETS[path], _read(path.lstrip("/")).encode()
    values: dict[str, str] = {}
    page = PAGES.get(path)
    if page is None and path.startswith("/shop/"):
        product = next((p for p in PRODUCTS if p.slug == path.removeprefix("/shop/")), None)
        if product is None:
            return None
        page = Page("product.html", product.name)
        values = {
            "product": product.slug,
            "product_name": product.name,
            "price": str(product.price),
        }
    if page is None:
        return None
    snippet = _fill(
        _read("_snippet.html"),
        {"collector": html.escape(collector), "write_key": html.escape(write_key)},
    )
    body = _fill(_read(page.file), {k: html.escape(v) for k, v in values.items()})
    document = _fill(
        _read("_layout.html"),
        {"title": html.escape(page.title), "snippet": snippet, "page": page.file[:-5]},
    )
    return "text/html; charset=utf-8", document.replace("{{body}}", body).encode()


def site_origins(settings: Settings) -> tuple[str, ...]:
    """The origins a browser sees the demo site at (for the write key's CORS list)."""
    return (f"http://127.0.0.1:{settings.demo_port}", f"http://localhost:{settings.demo_port}")


def _collector_url(settings: Settings, host_header: str | None) -> str:
    # The browser reaches the collector on the host it reached this site on (localhost,
    # 127.0.0.1 or a LAN name), at the collector's port.
    host = (host_header or settings.collector_host).rsplit(":", 1)[0] or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # a bind address, not a host to browse to
        host = "127.0.0.1"
    return f"http://{host}:{settings.collector_port}"


def _handler(settings: Settings) -> type[BaseHTTPRequestHandler]:
    key = settings.write_keys[0].key if settings.write_keys else "NO_WRITE_KEY"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = render(self.path, _collector_url(settings, self.headers.get("Host")), key)
            content_type, body = found or ("text/plain; charset=utf-8", b"not found\n")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the collector's access log is the one that matters

    return Handler


def serve_site(settings: Settings, stop: threading.Event) -> None:
    """Serve the demo site on ``collector_host:demo_port`` until ``stop`` is set."""
    server = ThreadingHTTPServer((settings.collector_host, settings.demo_port), _handler(settings))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.start()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
