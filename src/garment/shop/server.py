"""Shop server: the demo shop served over HTTP, for crawling, tests and benchmarks.

Pages are served on ``http://HOST:PORT/`` and images on a second host name,
``http://IMAGE_HOST:PORT/img/...`` (the same server; only the Host differs), as shops serve
images from a CDN. ``localhost`` must resolve to 127.0.0.1: the server listens on IPv4 only,
and a client that tries ::1 first falls back to 127.0.0.1 (urllib, browsers; Scrapy's default
resolver asks for IPv4 only).

    with start_shop(ShopConfig(n_products=200)) as shop:
        print(shop.url, shop.products[0].url)
"""

from __future__ import annotations

import collections
import functools
import hashlib
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from garment.errors import GarmentError
from garment.shop.catalogue import (
    CLASS_CATEGORIES,
    IMAGE_SUFFIXES,
    SCRIPT_NAME,
    SHOP_CATEGORIES,
    Product,
    blind_products,
    category_label,
    fmnist_products,
    folder_products,
)
from garment.shop.pages import SHOP_NAME, Pages, Response

__all__ = ["CLASS_CATEGORIES", "SCRIPT_NAME", "SHOP_CATEGORIES", "Hit", "Product", "Shop",
           "ShopConfig", "category_label", "start_shop"]

log = logging.getLogger(__name__)

MARKUPS = ("jsonld", "microdata", "opengraph", "mixed")
MAX_FMNIST_PRODUCTS = 10_000  # the size of Fashion-MNIST's test split
_CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
                  ".webp": "image/webp", ".gif": "image/gif"}


@dataclass
class ShopConfig:
    """How the demo shop is built and served."""

    images: Path | None = None  # folder of product photos; None: render Fashion-MNIST test items
    n_products: int = 60  # built-in catalogue size (1..10000); every photo is used with images
    host: str = "127.0.0.1"  # pages host; loopback only
    port: int = 0  # 0: a free port
    image_host: str = "localhost"  # host name in image URLs: a second host, same server
    per_page: int = 24  # products per category listing page
    latency_ms: float = 0.0  # added to every response
    fault_rate: float = 0.0  # share of requests answered 503 + Retry-After, and of images cut short
    seed: int = 0  # catalogue, colours and faults all follow from it
    markup: str = "jsonld"  # product-page structured data: jsonld, microdata, opengraph or mixed
    # Pages name no class: only the name, description and a coarse department (women, men,
    # footwear, accessories); see catalogue.blind_products. The products keep the truth.
    blind: bool = False
    data_dir: Path | None = None  # Fashion-MNIST folder; None: the usual places (garment.data)
    image_cache: int = 1024  # rendered images kept in memory (~20 KB each)
    log_size: int = 100_000  # requests remembered in Shop.log

    def validate(self) -> None:
        """Raise GarmentError naming the bad field and the allowed values."""
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise GarmentError(f"host {self.host!r}: the demo shop serves on a loopback address "
                               "only, e.g. 127.0.0.1")
        if self.images is not None and not Path(self.images).is_dir():
            raise GarmentError(f"--images {self.images}: not a folder of product photos")
        if self.images is None and not 1 <= self.n_products <= MAX_FMNIST_PRODUCTS:
            raise GarmentError(f"n_products {self.n_products}: use 1 to {MAX_FMNIST_PRODUCTS}")
        if not 1 <= self.per_page <= 500:
            raise GarmentError(f"per_page {self.per_page}: use 1 to 500")
        if self.latency_ms < 0 or not 0.0 <= self.fault_rate <= 1.0:
            raise GarmentError(f"latency_ms {self.latency_ms} must be >= 0 and fault_rate "
                               f"{self.fault_rate} in [0, 1]")
        if self.markup not in MARKUPS:
            raise GarmentError(f"markup {self.markup!r}: use one of {', '.join(MARKUPS)}")
        if not 0 <= self.port <= 65535:
            raise GarmentError(f"port {self.port}: use 0 (any free port) to 65535")


@dataclass(frozen=True)
class Hit:
    """One request the shop answered."""

    method: str
    host: str  # the Host header
    path: str  # with query string
    status: int
    user_agent: str


@functools.lru_cache(maxsize=4)
def _fmnist_test(data_dir: str | None):
    """Fashion-MNIST's test split, loaded once per process (never the training split)."""
    from garment.data import load_split

    return load_split("test", data_dir)


class Shop:
    """A running demo shop: its URLs, its products (the ground truth) and its request log."""

    def __init__(self, config: ShopConfig, server: ThreadingHTTPServer):
        self.config = config
        port = server.server_address[1]
        self.url = f"http://{config.host}:{port}/"
        self.image_url = f"http://{config.image_host}:{port}/"
        if config.images is not None:
            self._items = None
            self.products = folder_products(Path(config.images), config.seed, self.url,
                                            self.image_url, config.markup)
            if not self.products:
                raise GarmentError(f"--images {config.images}: no photos "
                                   f"({', '.join(sorted(IMAGE_SUFFIXES))}) found")
        else:
            images, labels = _fmnist_test(str(config.data_dir) if config.data_dir else None)
            self._items = images
            self.products = fmnist_products(labels, config.n_products, config.seed, self.url,
                                            self.image_url, config.markup)
        if config.blind:
            self.products = blind_products(self.products, config.seed, self.url, self.image_url)
        self.pages = Pages(self.products, self.url, self.image_url, config.per_page,
                           blind=config.blind)
        # Image path -> (product, view); views are rendered on first request and cached.
        self._images: dict[str, tuple[Product, str]] = {}
        for p in self.products:
            views = [str(k) for k in range(1, len(p.image_urls) + 1)]
            for url, view in zip((*p.image_urls, p.thumb_url), (*views, "small"), strict=True):
                self._images["/" + url.split("/", 3)[3]] = (p, view)
        self._site: dict[str, bytes] | None = None
        self.image = functools.lru_cache(maxsize=config.image_cache)(self._render)
        self.log: collections.deque[Hit] = collections.deque(maxlen=config.log_size)
        self._seen: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._server = server
        self._thread: threading.Thread | None = None

    def _render(self, path: str) -> bytes | None:
        """Bytes of the image at ``path`` ('/img/...'), or None when there is none."""
        from garment.shop import render as shop_render

        if path.startswith("/img/site/"):
            if self._site is None:
                self._site = shop_render.site_images(SHOP_NAME)
            return self._site.get(path.removeprefix("/img/site/"))
        if path not in self._images:
            return None
        product, view = self._images[path]
        if product.image_path is not None:
            return shop_render.file_image(product.image_path, view)
        assert self._items is not None and product.fmnist_index is not None
        seed = self.config.seed * 100_003 + product.fmnist_index
        return shop_render.fmnist_image(self._items[product.fmnist_index], product.rgb, seed,
                                        view)

    def prerender(self) -> int:
        """Render every product's packshot into the image cache now (benchmarks: the shop's
        own CPU work then stays out of what a crawl is timed on). Returns how many."""
        paths = [path for path, (_, view) in self._images.items() if view == "1"]
        for path in paths[: self.config.image_cache]:
            self.image(path)
        return min(len(paths), self.config.image_cache)

    def fault(self, kind: str, target: str) -> bool:
        """Whether this request of ``target`` fails: a deterministic draw per (seed, kind,
        target, how many times it was asked before), so a retry gets a fresh draw."""
        if self.config.fault_rate <= 0:
            return False
        with self._lock:
            nth = self._seen[f"{kind} {target}"]
            self._seen[f"{kind} {target}"] += 1
        digest = hashlib.blake2b(f"{self.config.seed}|{kind}|{target}|{nth}".encode(),
                                 digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.config.fault_rate

    def product(self, product_id: str) -> Product:
        """The product with id ``product_id`` (e.g. 'p00042')."""
        return next(p for p in self.products if p.id == product_id)

    def start(self) -> Shop:
        self._thread = threading.Thread(target=self._server.serve_forever, name="garment-shop",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Shop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as crawlers expect
    server_version = "garment-shop"
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    shop: Shop  # set on the per-shop subclass

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
        self.rfile.read(length)
        self._answer(head=False, response=Response(303, b"", headers=(("Location", "/cart/"),)))

    def _answer(self, head: bool, response: Response | None = None) -> None:
        shop = self.shop
        if shop.config.latency_ms:
            time.sleep(shop.config.latency_ms / 1000)
        parts = urlsplit(self.path)
        if response is None and parts.path != "/robots.txt" and shop.fault("503", self.path):
            # robots.txt is spared so that a polite crawler always knows the rules.
            response = Response(503, b"Service temporarily unavailable\n", "text/plain",
                                (("Retry-After", "1"),))
        if response is None:
            response = self._respond(parts.path, dict(parse_qsl(parts.query)))
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(response.body)
        shop.log.append(Hit(self.command, self.headers.get("Host", ""), self.path,
                            response.status, self.headers.get("User-Agent", "")))

    def _respond(self, path: str, query: dict[str, str]) -> Response:
        shop = self.shop
        if path.startswith("/img/"):
            body = shop.image(path)
            if body is None:
                return Response(404, b"Not found\n", "text/plain")
            if shop.fault("truncate", self.path):
                # A cut-short file with a matching Content-Length: the download succeeds,
                # the image does not decode.
                body = body[: len(body) * 3 // 5]
            ctype = _CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")
            return Response(200, body, ctype, (("Cache-Control", "max-age=86400"),))
        if path == "/favicon.ico":
            return Response(301, b"", headers=(("Location", f"{shop.image_url}img/site/favicon.png"),))
        return shop.pages.route(path, query)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a crawler opens many connections at once


def start_shop(config: ShopConfig | None = None) -> Shop:
    """Build the catalogue and serve it from a background thread; ``shop.stop()`` ends it.

    Usable as a context manager: ``with start_shop(cfg) as shop: ...``.
    """
    config = config or ShopConfig()
    config.validate()
    handler: type[_Handler] = type("ShopHandler", (_Handler,), {})
    try:
        server = _Server((config.host, config.port), handler)
    except OSError as exc:
        raise GarmentError(f"cannot serve on {config.host}:{config.port} ({exc}); "
                           "choose another --port or 0 for any free one") from exc
    try:
        shop = Shop(config, server)
    except BaseException:
        server.server_close()
        raise
    handler.shop = shop
    return shop.start()
