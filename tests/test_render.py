"""JavaScript-built shops: the render decision (offline) and a crawl with Debian's Chromium of a
local shop on 127.0.0.1 whose listing and product data are built by its scripts."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from garment.scrape.extract import parse_html
from garment.scrape.render import needs_render, render_available
from shopsite import reply, serve

SHELL = ("<!DOCTYPE html><html><head><title>Shop</title></head><body><header><a href='/'>"
         "Shop</a><nav><a href='/c/a'>A</a><a href='/c/b'>B</a></nav></header>"
         "<div id='{root}'></div><noscript>Please enable JavaScript.</noscript>"
         "<script src='/{script}'></script></body></html>")


# -- the decision ----------------------------------------------------------------------------
def test_only_script_built_pages_without_products_or_links_are_rendered() -> None:
    shell = parse_html(SHELL.format(root="app", script="app.js"))
    assert needs_render(shell, has_product=False, mode="auto") == "empty application root #app"
    assert needs_render(shell, has_product=True, mode="auto") is None
    assert needs_render(shell, has_product=False, mode="never") is None
    listing = parse_html("<html><body><script src='/x.js'></script><main>" + "".join(
        f"<a href='/p/{i}'>Item {i}</a>" for i in range(6)) + "</main></body></html>")
    assert needs_render(listing, has_product=False, mode="auto") is None
    article = parse_html("<html><body><script>var a=1</script><p>" + "words " * 80 +
                         "</p></body></html>")
    assert needs_render(article, has_product=False, mode="auto") is None  # text, no shell
    bare = parse_html("<html><body><div class='x'></div><script>boot()</script></body></html>")
    assert "characters of text" in (needs_render(bare, False, "auto") or "")
    static = parse_html("<html><body><p>Hello</p></body></html>")
    assert needs_render(static, False, "auto") is None  # no scripts: nothing to render


# -- a crawl ---------------------------------------------------------------------------------
def photo() -> bytes:
    im = Image.new("RGB", (240, 320), (255, 255, 255))
    ImageDraw.Draw(im).rectangle((60, 50, 180, 270), fill=(30, 30, 80))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


APP_JS = """
fetch('/api/products.json').then(r => r.json()).then(items => {
  const root = document.getElementById('app');
  for (const p of items) {
    const a = document.createElement('a'); a.href = p.url; a.textContent = p.name;
    root.appendChild(a);
  }
  const pixel = document.createElement('img'); pixel.src = '/img/tracker.gif';
  root.appendChild(pixel);
});
"""
PRODUCT_JS = """
const id = location.pathname.split('/').pop();
fetch('/api/p/' + id + '.json').then(r => r.json()).then(p => {
  const s = document.createElement('script'); s.type = 'application/ld+json';
  s.textContent = JSON.stringify({'@context': 'https://schema.org', '@type': 'Product',
    name: p.name, sku: p.sku, image: p.image,
    offers: {'@type': 'Offer', price: p.price, priceCurrency: 'EUR'}});
  document.head.appendChild(s);
  const h = document.createElement('h1'); h.textContent = p.name;
  document.getElementById('root').appendChild(h);
});
"""


class JsShop:
    """A shop built by scripts: the home page lists products from /api/products.json,
    product pages fetch their data and write their own JSON-LD; /p/9 is plain HTML."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.photo = photo()
        self.server = serve(self._handle, protocol="HTTP/1.0")
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        self.hits.append(handler.path)
        reply(handler, *self.route(handler.path))

    def product(self, i: int) -> dict[str, object]:
        return {"url": f"/p/{i}", "name": f"Script coat {i}", "sku": f"JS-{i}",
                "price": f"{20 + i}.00", "image": f"{self.url}img/{i}.jpg"}

    def route(self, path: str) -> tuple[int, str, bytes]:
        html, js, data = "text/html; charset=utf-8", "application/javascript", "application/json"
        if path == "/":
            return 200, html, SHELL.format(root="app", script="app.js").encode()
        if path == "/app.js":
            return 200, js, APP_JS.encode()
        if path == "/product.js":
            return 200, js, PRODUCT_JS.encode()
        if path == "/api/products.json":
            items = [self.product(i) for i in (1, 2)] + [{"url": "/p/9", "name": "Static"}]
            return 200, data, json.dumps(items).encode()
        if path.startswith("/api/p/"):
            return 200, data, json.dumps(self.product(int(path[7:].split(".")[0]))).encode()
        if path in ("/p/1", "/p/2"):
            return 200, html, SHELL.format(root="root", script="product.js").encode()
        if path == "/p/9":
            ld = {"@context": "https://schema.org", "@type": "Product", "name": "Static shirt",
                  "sku": "S-9", "image": f"{self.url}img/9.jpg"}
            return 200, html, (f"<html><head><script type='application/ld+json'>"
                               f"{json.dumps(ld)}</script></head><body><h1>Static shirt</h1>"
                               f"</body></html>").encode()
        if path.startswith("/img/") and path.endswith(".jpg"):
            return 200, "image/jpeg", self.photo
        return 404, "text/plain", b"not found"


def _why_skip() -> str | None:
    return render_available()


needs_browser = pytest.mark.skipif(_why_skip() is not None, reason=str(_why_skip()))


@pytest.fixture(scope="module")
def js_shop() -> Iterator[JsShop]:
    shop = JsShop()
    yield shop
    shop.server.shutdown()


@needs_browser
@pytest.mark.timeout(180)
def test_auto_renders_the_script_built_pages_only(js_shop: JsShop, tmp_path: Path) -> None:
    from garment.scrape import CrawlConfig, crawl
    from garment.store import Catalogue

    js_shop.hits.clear()
    stats = crawl(CrawlConfig([js_shop.url], out=tmp_path, delay=0.0, concurrency=2))
    with Catalogue.open(tmp_path, create=False) as cat:
        products = {p["sku"]: p for p in cat.products()}
        images = {i["product_id"]: i for i in cat.images()}
    assert set(products) == {"JS-1", "JS-2", "S-9"}
    coat = products["JS-1"]
    assert coat["name"] == "Script coat 1" and coat["price"] == pytest.approx(21.0)
    assert images[coat["id"]]["status"] == "ok"
    # The home page and the two script-built product pages, not the static one.
    assert stats.rendered == 3
    assert js_shop.hits.count("/p/9") == 1 and js_shop.hits.count("/p/1") == 2
    assert "/api/products.json" in js_shop.hits and "/api/p/2.json" in js_shop.hits
    assert "/img/tracker.gif" not in js_shop.hits  # the browser loads no images


@needs_browser
@pytest.mark.timeout(120)
def test_never_reads_the_html_as_served(js_shop: JsShop, tmp_path: Path) -> None:
    from garment.scrape import CrawlConfig, crawl

    js_shop.hits.clear()
    stats = crawl(CrawlConfig([js_shop.url], out=tmp_path, delay=0.0, render="never"))
    assert stats.products == 0 and stats.rendered == 0
    assert "/app.js" not in js_shop.hits


def test_always_without_a_browser_is_one_clear_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from garment.errors import GarmentError
    from garment.scrape import CrawlConfig, prepare, render

    monkeypatch.setattr(render, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(GarmentError, match="--render always: .*no-chromium is missing"):
        prepare(CrawlConfig(["http://127.0.0.1:9/"], out=tmp_path / "c", render="always"))
    with pytest.raises(GarmentError, match="render 'sometimes': allowed auto, never, always"):
        CrawlConfig(["http://127.0.0.1:9/"], render="sometimes").validate()
