"""A hostile shop for the crawl-limit tests and benchmark, served on 127.0.0.1: 60 real
products hidden among crawler traps that never end.

- ``/c/all?page=N``: the real listing, ``per_page`` products a page; every page, also past
  the last product, has a next page (``rel=next``).
- ``/c/sale?page=N``: an endless listing whose every page shows a fresh promotion link
  (``/promo/N``) besides its next page, so it never looks empty.
- ``/events/YYYY/MM/DD``: a calendar, each day linking the next day, the previous day and
  the same day next month; no products.
- ``/s/<session>/...``: any page of the shop under a session id minted anew on every
  visit: all its links carry a new id (products there declare their canonical URL).
- ``/info/``: a relative link ``more/`` that resolves against itself (``/info/more/more/``).
- ``/search?q=a``: links a search eight times longer, soon past any URL length limit.
- ``/links``: a page with ``n_links`` (100,000) links to empty pages ``/x/N``.
- ``/p/<i>`` (1..60): products in JSON-LD, packshot ``/img/<i>.jpg`` (200x260 JPEG).
- ``offsite``: a link from the home page to another site (another port of 127.0.0.1), and
  ``/moved``, a redirect there.

``hits`` counts the requests each section received.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from shopsite import make_jpeg, serve

HTML = {"Content-Type": "text/html; charset=utf-8"}


@dataclass
class TrapShop:
    n_products: int = 60
    per_page: int = 12
    n_links: int = 100_000                 # links on /links
    offsite: str = ""                      # a URL the home page links to (another port)
    hits: Counter[str] = field(default_factory=Counter)  # requests by section (/events)

    def __post_init__(self) -> None:
        self.images = {i: make_jpeg(i) for i in range(1, self.n_products + 1)}
        self._links_page = self.frame("Everything", "".join(
            f"<a href='/x/{n}'>{n}</a> " for n in range(self.n_links))).encode()
        self._lock = threading.Lock()

    # -- server -------------------------------------------------------------------------
    def start(self) -> TrapShop:
        self.server = serve(self.handle)
        self.port = self.server.server_address[1]
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> TrapShop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        status, headers, body = self.route(parts.path, parse_qs(parts.query))
        section = "/" + (parts.path.strip("/").split("/") or [""])[0]
        with self._lock:
            self.hits[section] += 1
        req.send_response(status)
        for k, v in {**HTML, **headers}.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    # -- routing ------------------------------------------------------------------------
    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str],
                                                                       bytes]:
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /cart\n"
        if path.startswith("/img/") and path.endswith(".jpg"):
            i = path[5:-4]
            if i.isdigit() and int(i) in self.images:
                return 200, {"Content-Type": "image/jpeg"}, self.images[int(i)]
        if path == "/links":
            return 200, {}, self._links_page
        if path == "/moved" and self.offsite:
            return 302, {"Location": self.offsite + "?moved=1"}, b""
        if path.startswith("/s/"):
            # A minted session: the page under it, every link under a new session id.
            rest = "/" + path[3:].partition("/")[2]
            status, headers, body = self.route(rest, query)
            sid = uuid.uuid4().hex
            return status, headers, re.sub(rb"href='/(?!/)", f"href='/s/{sid}/".encode(), body)
        page = self.page(path, query)
        if page is None:
            return 404, {}, b"<html><body><h1>Not found</h1></body></html>"
        return 200, {}, page.encode()

    def page(self, path: str, query: dict[str, list[str]]) -> str | None:
        number = int((query.get("page") or ["1"])[0] or 1)
        if path in ("/", "/index.html"):
            return self.frame("Trap shop", "<h1>Welcome</h1><a href='/links'>Everything</a>"
                              "<a href='/info/'>About</a><a href='/search?q=a'>Search</a>"
                              + (f"<a href='{self.offsite}'>Partner</a><a href='/moved'>"
                                 "Moved</a>" if self.offsite else ""))
        if path == "/c/all":
            return self.listing(number)
        if path == "/c/sale":
            return self.frame(f"Sale page {number}", f"<a href='/promo/{number}'>Deal of "
                              f"page {number}</a> <a href='/c/sale?page={number + 1}'>Next"
                              f"</a>", self.next_link("sale", number))
        if m := re.fullmatch(r"/events/(\d{4})/(\d\d)/(\d\d)", path):
            return self.day(dt.date(int(m[1]), int(m[2]), int(m[3])))
        if m := re.fullmatch(r"/p/(\d+)", path):
            i = int(m[1])
            return self.product(i) if 1 <= i <= self.n_products else None
        if path.startswith("/info/"):
            return self.frame("About us", "<a href='more/'>More about us</a>")
        if path == "/search":
            q = (query.get("q") or ["a"])[0]
            return self.frame(f"Search {q[:20]}", f"<a href='/search?q={q * 8}'>More</a>")
        if path.startswith(("/x/", "/promo/")):
            return self.frame("Nothing here", "<p>Nothing to see.</p>")
        return None

    # -- pages --------------------------------------------------------------------------
    def frame(self, title: str, body: str, head: str = "") -> str:
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
                f"{head}</head><body><nav><a href='/'>Home</a> <a href='/c/all'>All</a> "
                f"<a href='/c/sale'>Sale</a> <a href='/events/2024/01/01'>Events</a> "
                f"<a href='/s/{uuid.uuid4().hex}/'>My account</a> <a href='/cart'>Cart</a>"
                f"</nav><main>{body}</main></body></html>")

    @staticmethod
    def next_link(listing: str, number: int) -> str:
        return f"<link rel='next' href='/c/{listing}?page={number + 1}'>"

    def listing(self, number: int) -> str:
        first = (number - 1) * self.per_page + 1
        ids = range(first, min(first + self.per_page, self.n_products + 1))
        items = "".join(f"<li><a href='/p/{i}'>Trap item {i}</a></li>" for i in ids)
        return self.frame(f"All, page {number}", f"<ul>{items or 'No more products'}</ul>"
                          f"<a href='/c/all?page={number + 1}'>Next</a>",
                          self.next_link("all", number))

    def day(self, date: dt.date) -> str:
        def href(d: dt.date) -> str:
            return f"/events/{d.year:04d}/{d.month:02d}/{d.day:02d}"

        month = date.replace(day=min(date.day, 28))
        next_month = (month + dt.timedelta(days=31)).replace(day=month.day)
        links = [("Next day", date + dt.timedelta(days=1)),
                 ("Previous day", date - dt.timedelta(days=1)), ("Next month", next_month)]
        return self.frame(f"Events {date}", "".join(f"<a href='{href(d)}'>{label}</a> "
                                                    for label, d in links))

    def product(self, i: int) -> str:
        base = self.url.rstrip("/")
        data = {"@context": "https://schema.org", "@type": "Product", "name": f"Trap item {i}",
                "sku": f"TRAP-{i:03d}", "image": [f"{base}/img/{i}.jpg"],
                "offers": {"@type": "Offer", "price": f"{10 + i}.00", "priceCurrency": "EUR"}}
        head = (f"<link rel='canonical' href='{base}/p/{i}'>"
                f"<script type='application/ld+json'>{json.dumps(data)}</script>")
        related = i % self.n_products + 1
        return self.frame(f"Trap item {i}", f"<h1>Trap item {i}</h1><a href='/c/all'>Back</a>"
                          f"<a href='/p/{related}'>Related</a>", head)
