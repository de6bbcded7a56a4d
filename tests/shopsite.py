"""A small fashion shop for the crawler tests, served on 127.0.0.1 with its images on the
host name ``localhost`` (same port), full of the faults real shops have.

Product ``i`` (1..N) is marked up as JSON-LD (i % 3 == 1), microdata (i % 3 == 2) or
OpenGraph only (i % 3 == 0). Special products:

- 5: 503 with Retry-After: 1 on the first request      - 7: always 500 (never stored)
- 8: slow (0.4 s)                                       - 10: first image truncated, second ok
- 11: corrupt image bytes only                          - 12: image behind a 301
- 13: image answers X-Robots-Tag: noai                  - 14: page meta robots noimageai
- 15: image 20x20 (too small)                           - 16: also at /p/16/alt, same sku
- 17: image under /img/private/ (robots.txt forbids)    - 18: OpenGraph, no og:image:
  its photo is the only <img> in <main>                 - 19: JSON-LD image list starts
  with the logo; N+1: only in the sitemap                 with the logo
- a disallowed /private/ area (linked and in the sitemap), /p/404, a redirect loop,
  a link to an off-site page on ``localhost``, a logo and a tracking pixel everywhere.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image

CATEGORIES = ("women", "men")



def serve(handle: Callable[[BaseHTTPRequestHandler], None],
          protocol: str = "HTTP/1.1") -> ThreadingHTTPServer:
    """A test server on 127.0.0.1 (a free port), serving in a daemon thread: ``handle``
    answers every GET; ``server.shutdown()`` and ``server_close()`` stop it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = protocol

        def do_GET(self) -> None:  # noqa: N802
            handle(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def reply(handler: BaseHTTPRequestHandler, status: int, ctype: str, body: bytes) -> None:
    """Answer with ``body``, its type and length."""
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)

@dataclass
class Hit:
    host: str
    path: str
    status: int
    at: float


def make_jpeg(i: int, size: tuple[int, int] = (200, 260)) -> bytes:
    im = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    for x in range(0, size[0], 7):  # some detail, so each image is distinct and real
        im.putpixel((x, (x * i) % size[1]), (255, 255, 255))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class ShopSite:
    n_products: int = 24
    per_page: int = 6
    latency: float = 0.0                   # seconds added to every response
    crawl_delay: float | None = None       # Crawl-delay in the pages host's robots.txt
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.images = {i: make_jpeg(i) for i in range(1, self.n_products + 2)}
        self.logo = make_png((120, 40))
        self.pixel = make_png((1, 1))
        self.tiny = make_jpeg(0, (20, 20))
        self._first_503 = True
        self._lock = threading.Lock()

    # -- server -------------------------------------------------------------------------
    def start(self) -> ShopSite:
        self.server = serve(self.handle)
        self.port = self.server.server_address[1]
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def img(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def page_ids(self) -> list[int]:
        """Products a crawl can reach and store."""
        return [i for i in range(1, self.n_products + 2) if i != 7]

    def requested(self, host: str | None = None) -> list[str]:
        return [h.path for h in self.hits if host is None or h.host == host]

    # -- routing ------------------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler) -> None:
        host = (req.headers.get("Host") or "").split(":")[0]
        parts = urlsplit(req.path)
        if self.latency:
            time.sleep(self.latency)
        if host == "localhost":
            status, headers, body = self.image_host(parts.path)
        else:
            status, headers, body = self.page_host(parts.path, parse_qs(parts.query))
        with self._lock:
            self.hits.append(Hit(host, req.path, status, time.monotonic()))
        req.send_response(status)
        headers.setdefault("Content-Type", "text/html; charset=utf-8")
        for k, v in headers.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def image_host(self, path: str) -> tuple[int, dict[str, str], bytes]:
        jpeg = {"Content-Type": "image/jpeg"}
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /img/private/\n"
        if path == "/static/logo.png":
            return 200, {"Content-Type": "image/png"}, self.logo
        if path.startswith("/pixel.gif"):
            return 200, {"Content-Type": "image/png"}, self.pixel
        if path.startswith("/img/r/"):
            return 301, {"Location": f"{self.img}/img/{path.rsplit('/', 1)[1]}"}, b""
        name = path.rsplit("/", 1)[-1]
        if not name.endswith(".jpg") or not name[:-4].split("-")[0].isdigit():
            return 404, {}, b"not found"
        i = int(name[:-4].split("-")[0])
        if i not in self.images:
            return 404, {}, b"not found"
        if name == "10-a.jpg":
            return 200, jpeg, self.images[10][: len(self.images[10]) // 2]
        if i == 11:
            return 200, jpeg, bytes(range(256)) * 20
        if i == 13:
            return 200, {**jpeg, "X-Robots-Tag": "noai, noimageai"}, self.images[i]
        if i == 15:
            return 200, jpeg, self.tiny
        return 200, jpeg, self.images[i]

    def page_host(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str],
                                                                           bytes]:
        html = {"Content-Type": "text/html; charset=utf-8"}
        xml = {"Content-Type": "application/xml"}
        if path == "/robots.txt":
            body = ("User-agent: *\nDisallow: /private/\nDisallow: /cart\n"
                    + (f"Crawl-delay: {self.crawl_delay}\n" if self.crawl_delay else "")
                    + f"\nSitemap: {self.url}sitemap_index.xml\n")
            return 200, {"Content-Type": "text/plain"}, body.encode()
        if path == "/sitemap_index.xml":
            return 200, xml, (f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns='
                              f'"http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>'
                              f'{self.url}sitemap-products.xml</loc></sitemap>'
                              f'</sitemapindex>').encode()
        if path == "/sitemap-products.xml":
            ids = [self.n_products + 1, 1, 2]
            locs = "".join(f"<url><loc>{self.url}p/{i}</loc></url>" for i in ids)
            locs += f"<url><loc>{self.url}private/p/99</loc></url>"
            return 200, xml, (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns='
                              f'"http://www.sitemaps.org/schemas/sitemap/0.9">{locs}'
                              f'</urlset>').encode()
        if path in ("/", "/index.html"):
            return 200, html, self.home().encode()
        if path.startswith("/c/") and path[3:] in CATEGORIES:
            key = "page" if path[3:] == "women" else "p"
            page = int((query.get(key) or ["1"])[0])
            return 200, html, self.listing(path[3:], page).encode()
        if path == "/loop-a":
            return 302, {"Location": "/loop-b"}, b""
        if path == "/loop-b":
            return 302, {"Location": "/loop-a"}, b""
        if path.startswith("/p/"):
            rest = path[3:].split("/")
            if rest[0].isdigit() and 1 <= int(rest[0]) <= self.n_products + 1:
                return self.product_response(int(rest[0]), alt=len(rest) > 1)
        return 404, html, b"<html><body><h1>Not found</h1></body></html>"

    def product_response(self, i: int, alt: bool) -> tuple[int, dict[str, str], bytes]:
        html = {"Content-Type": "text/html; charset=utf-8"}
        if i == 5:
            with self._lock:
                first, self._first_503 = self._first_503, False
            if first:
                return 503, {**html, "Retry-After": "1"}, b"busy"
        if i == 7:
            return 500, html, b"oops"
        if i == 8:
            time.sleep(0.4)
        return 200, html, self.product_page(i, alt).encode()

    # -- pages --------------------------------------------------------------------------
    def frame(self, title: str, body: str, head: str = "") -> str:
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
                f"{head}</head><body><header><a href='/'><img src='{self.img}/static/logo"
                f".png' alt='Shop' width='120' height='40'></a><nav><a href='/c/women'>Women"
                f"</a> <a href='/c/men'>Men</a> <a href='/cart'>Cart</a> <a href='/private/'"
                f">Staff</a></nav></header><main>{body}</main><footer><a href='{self.img}/"
                f"offsite'>Partner</a> <a href='http://127.0.0.2:9/elsewhere'>Elsewhere</a>"
                f"<img src='{self.img}/pixel.gif?t=1' width='1' height='1' alt=''>"
                f"</footer></body></html>")

    def home(self) -> str:
        return self.frame("Shop", "<h1>New season</h1><a href='/c/women'>Shop women</a>"
                                  "<a href='/private/p/99'>Secret sale</a>")

    def category_ids(self, cat: str) -> list[int]:
        ids = list(range(1, self.n_products + 1))
        return ids[: len(ids) // 2] if cat == "women" else ids[len(ids) // 2:]

    def listing(self, cat: str, page: int) -> str:
        ids = self.category_ids(cat)
        pages = max(1, -(-len(ids) // self.per_page))
        chunk = ids[(page - 1) * self.per_page: page * self.per_page]
        key = "page" if cat == "women" else "p"
        items = "".join(f"<li><a href='/p/{i}?utm_source=list'><img src='{self.img}/img/"
                        f"{i}.jpg' width='100'>Item {i}</a></li>" for i in chunk)
        if cat == "men" and page == 1:
            items += ("<li><a href='/p/16/alt'>16 again</a></li><li><a href='/p/404'>Gone"
                      "</a></li><li><a href='/loop-a'>Loop</a></li>")
        head = ""
        if cat == "women" and page < pages:
            head = f"<link rel='next' href='/c/{cat}?{key}={page + 1}'>"
        pager = "".join(f"<a href='/c/{cat}?{key}={n}'>{n}</a>" for n in range(1, pages + 1))
        return self.frame(f"{cat} page {page}", f"<ul class='products'>{items}</ul>"
                          f"<div class='pagination'>{pager}</div>", head)

    def image_urls(self, i: int) -> list[str]:
        if i == 10:
            return [f"{self.img}/img/10-a.jpg", f"{self.img}/img/10.jpg"]
        if i == 12:
            return [f"{self.img}/img/r/12.jpg"]
        if i == 17:
            return [f"{self.img}/img/private/17.jpg"]
        if i == 19:
            return [f"{self.img}/static/logo.png", f"{self.img}/img/19.jpg"]
        return [f"{self.img}/img/{i}.jpg"]

    def product_page(self, i: int, alt: bool = False) -> str:
        name, sku, price = f"Garment {i}", f"SKU-{i:04d}", f"{10 + i}.99"
        cat = "Women" if i in self.category_ids("women") else "Men"
        images = self.image_urls(i)
        head = "<meta name='robots' content='index, noimageai'>" if i == 14 else ""
        if not alt:
            head += f"<link rel='canonical' href='{self.url}p/{i}'>"
        body = f"<h1>{name}</h1><a href='/c/{cat.lower()}'>Back</a>"
        if i % 3 == 1:
            product = {"@context": "https://schema.org", "@type": "Product", "name": name,
                       "sku": sku, "brand": {"@type": "Brand", "name": "Acme"},
                       "description": f"A fine garment\tnumber {i}", "image": images,
                       "offers": {"@type": "Offer", "price": price, "priceCurrency": "EUR"}}
            crumbs = {"@context": "https://schema.org", "@type": "BreadcrumbList",
                      "itemListElement": [{"@type": "ListItem", "position": 1,
                                           "name": "Home"},
                                          {"@type": "ListItem", "position": 2, "name": cat}]}
            text = json.dumps({"@graph": [product, crumbs]} if i % 2 else product)
            if i % 2 == 0:  # malformed: raw tab inside a string, trailing comma and ';'
                text = text.replace("\\t", "\t")[:-1] + ",};"
                head += f"<script type='application/ld+json'>{json.dumps(crumbs)}</script>"
            head += f"<script type='application/ld+json'>{text}</script>"
        elif i % 3 == 2:
            body += (f"<div itemscope itemtype='https://schema.org/Product'>"
                     f"<h2 itemprop='name'>{name}</h2><span itemprop='sku'>{sku}</span>"
                     f"<div itemprop='brand' itemscope itemtype='https://schema.org/Brand'>"
                     f"<span itemprop='name'>Acme</span></div>"
                     f"<img itemprop='image' src='{images[0]}'>"
                     f"<div itemprop='offers' itemscope itemtype='https://schema.org/Offer'>"
                     f"<meta itemprop='price' content='{price}'><meta itemprop='priceCurrency'"
                     f" content='EUR'></div></div>")
        else:
            head += (f"<meta property='og:type' content='product'><meta property='og:title' "
                     f"content='{name}'><meta property='product:price:amount' "
                     f"content='{price}'><meta property='product:price:currency' "
                     f"content='EUR'>")
            if i == 18:
                body += f"<img class='product-photo' src='{images[0]}'>"
            else:
                head += "".join(f"<meta property='og:image' content='{u}'>" for u in images)
        return self.frame(name, body, head)
