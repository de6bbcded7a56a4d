"""Scrape, the spider: discovery (links breadth first, sitemaps, pagination) and extraction.

It only reads pages and follows links; packshots are downloaded and products stored by
the pipelines. Pages never leave the shop's site (the start URLs' scheme, host and port);
image hosts are reached by the packshot pipeline only. Every fresh link passes the crawl
limits (``limits.LinkFilter``: page budget, trap rules) before it becomes a request.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap, sitemap_urls_from_robots
from twisted.internet.error import ConnectError, DNSLookupError, TimeoutError
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed

from garment.scrape import CrawlConfig, feeds
from garment.scrape.images import Picture, forbids_ai, rank_pictures
from garment.scrape.limits import Limits, LinkFilter, page_origin, scope_origins
from garment.scrape.polite import OutOfScope
from garment.scrape.profile import SiteProfile, load_profile
from garment.scrape.reader import PageReader, Reading, ReadOptions, clean_url
from garment.scrape.render import render_available, request_meta
from garment.store import Catalogue, site_of

logger = logging.getLogger(__name__)

#: Links a catalogue crawler has no business following.
DEFAULT_DENY = (r"/(cart|basket|checkout|account|login|logout|register|signin|wishlist)\b",
                r"[?&](add-to-cart|add_to_wishlist|sessionid|sid)=")
#: A feed may be this many times larger than a page.
FEED_PAGES = 10
#: Pages whose photos an image sitemap may name (bounded memory).
MAX_SITEMAP_IMAGES = 200_000


@dataclass
class ProductItem:
    """A product on its way through the pipelines."""

    product: dict[str, Any]
    noai: bool = False                      # page forbids AI use of its images
    pictures: list[Picture] | None = None   # candidate packshots, best evidence first
    image: dict[str, Any] | None = None     # set by the packshot pipeline


@dataclass
class Counters:
    """What the crawl has done so far (shown while running, stored at the end)."""

    pages: int = 0
    products: int = 0                       # stored
    rendered: int = 0                       # pages asked of the browser
    images: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


def failure_reason(failure: Failure) -> tuple[str, int | None]:
    """(reason, HTTP status) of a failed request, for the errors table."""
    exc = failure.value
    if isinstance(exc, HttpError):
        return f"http_{exc.response.status}", exc.response.status
    if isinstance(exc, IgnoreRequest):
        msg = str(exc)
        if "robots.txt" in msg:
            return "robots", None
        if "redirect" in msg:
            return "redirect_loop", None
        return "ignored", None
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return "timeout", None
    # Scrapy 2.14+ wraps Twisted's errors in its own (names, so older versions work too).
    name = type(exc).__name__
    if isinstance(exc, DNSLookupError) or name == "CannotResolveHostError":
        return "dns", None
    if isinstance(exc, ConnectError) or name == "DownloadConnectionRefusedError":
        return "connection", None
    if isinstance(exc, ResponseFailed) or name in ("ResponseDataLossError",
                                                   "DownloadFailedError"):
        return "response_failed", None
    return name, None


class ShopSpider(Spider):
    """Crawls one shop (one or more start URLs on its hosts) for product pages."""

    name = "garment"

    def __init__(self, config: CrawlConfig, catalogue: Catalogue, run_id: int,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.catalogue = catalogue
        self.run_id = run_id
        self.profile: SiteProfile | None = (load_profile(config.site) if config.site
                                            else None)
        self.start_urls = list(config.start_urls) or (self.profile.start_urls
                                                      if self.profile else [])
        self.sites = {site_of(u) for u in self.start_urls}  # host names, for messages
        self.origins = scope_origins(self.start_urls)      # page scope
        self.counters = Counters()
        self.emitted = 0                    # products handed to the pipelines
        self.stopping = False               # product budget reached
        self.done = catalogue.done_urls() if config.resume else set()
        self.seen_products: set[str] = set(self.done)
        deny = list(DEFAULT_DENY) + (self.profile.deny if self.profile else [])
        self.deny = [re.compile(d, re.I) for d in deny]
        # URLs already queued: the scheduler filters duplicates too, but only after the
        # spider middlewares, and a shop links every page to dozens of others.
        self.queued: set[str] = set()
        self.links = LinkFilter(Limits.from_config(config))
        # "never" as well when this machine cannot render (run.settings_for then installs
        # no browser handler; prepare() refused "always" already).
        self.render = config.render if render_available() is None else "never"
        self.sitemap_images: dict[str, list[str]] = {}  # page URL -> photos (image sitemaps)
        # Pages are read (parsed, extracted, pictures ranked) in worker processes.
        self.reader = PageReader(ReadOptions(
            profile=self.profile, deny=tuple(self.deny), render=self.render,
            max_links=self.links.limits.max_links_per_page,
            max_image_px=config.max_image_px), config.readers)
        self.shopify_checked: set[Any] = set()          # origins looked at for Shopify

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ShopSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.links.limits.max_url_length = crawler.settings.getint("URLLENGTH_LIMIT", 2083)
        crawler.signals.connect(spider._robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(spider.reader.close, signal=signals.spider_closed)
        return spider

    # -- requests ---------------------------------------------------------------------
    def _page(self, url: str, priority: int = 0, barren: int = 0) -> Request:
        meta: dict[str, Any] = {"kind": "page", "barren": barren}
        if self.render == "always":
            meta.update(request_meta(self.config.timeout))
            self.counters.rendered += 1
        return Request(url, callback=self.parse_page, errback=self.page_failed,
                       priority=priority, meta=meta)

    def _rendered(self, response: Response, why: str) -> Request:
        """The page again, rendered in the browser (``render.needs_render`` said why)."""
        logger.info("rendering %s: %s", response.url, why)
        self.counters.rendered += 1
        meta = {"kind": "page", "barren": response.meta.get("barren", 0),
                **request_meta(self.config.timeout)}
        return Request(response.url, callback=self.parse_page, errback=self.page_failed,
                       priority=response.request.priority if response.request else 0,
                       dont_filter=True, meta=meta)

    def _sitemap(self, url: str) -> Request:
        return Request(url, callback=self.parse_sitemap, errback=self.discovery_failed,
                       priority=5, meta={"kind": "sitemap"})

    def _feed(self, url: str, callback: Any, **meta: Any) -> Request:
        # A feed may be larger than a page (a shop's whole catalogue).
        return Request(url, callback=callback, errback=self.discovery_failed, priority=6,
                       meta={"kind": "feed", **meta,
                             "download_maxsize": FEED_PAGES * self.config.max_page_bytes})

    def on_site(self, url: str) -> bool:
        """True for a page URL in the shop's scope: a start URL's scheme, host and port."""
        return page_origin(url) in self.origins

    async def start(self) -> AsyncIterator[Any]:
        roots = []
        for url in self.start_urls:
            if re.search(r"\.xml(\.gz)?$|sitemap", urlsplit(url).path, re.I):
                yield self._sitemap(url)
            elif self.links.admit_start(clean_url(url)):
                self.queued.add(clean_url(url))
                yield self._page(clean_url(url), priority=10)
            parts = urlsplit(url)
            root = f"{parts.scheme}://{parts.netloc}"
            if root not in roots:
                roots.append(root)
        for feed in self.config.feeds:
            yield self._feed(feed, self.parse_merchant_feed)
        for root in roots:
            yield self._sitemap(f"{root}/sitemap.xml")
            if not self.settings.getbool("ROBOTSTXT_OBEY"):
                # The robots middleware reads robots.txt otherwise; its sitemaps arrive
                # through the robots_parsed signal.
                yield Request(f"{root}/robots.txt", callback=self.parse_robots,
                              errback=self.discovery_failed, meta={"kind": "sitemap"})

    def _robots_parsed(self, robotparser: Any, request: Request) -> None:
        rp = getattr(robotparser, "rp", None)
        if rp is None or not self.on_site(request.url) or self.crawler.engine is None:
            return
        for url in rp.sitemaps:
            if self.on_site(url):
                self.crawler.engine.crawl(self._sitemap(url))

    # -- callbacks --------------------------------------------------------------------
    def parse_robots(self, response: Response) -> Iterator[Request]:
        for url in sitemap_urls_from_robots(response.text, base_url=response.url):
            if self.on_site(url):
                yield self._sitemap(url)

    async def parse_sitemap(self, response: Response) -> AsyncIterator[Any]:
        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                body = gunzip(body, max_size=self.config.max_page_bytes)
            except (OSError, ValueError):
                return
        if b"<urlset" not in body[:2000] and b"<sitemapindex" not in body[:2000]:
            if isinstance(response, HtmlResponse):
                async for item in self.parse_page(response):  # a start URL that was a page
                    yield item
            return
        sitemap = Sitemap(body)
        if sitemap.type == "urlset" and len(self.sitemap_images) < MAX_SITEMAP_IMAGES:
            for page, photos in feeds.sitemap_images(body).items():
                self.sitemap_images[clean_url(page)] = photos[:10]
        for entry in sitemap:
            loc = entry.get("loc", "")
            if not self.on_site(loc):
                continue
            if sitemap.type == "sitemapindex":
                yield self._sitemap(loc)
            elif (url := clean_url(loc)) not in self.done and url not in self.queued \
                    and self.links.admit_start(url):
                self.queued.add(url)
                yield self._page(url)

    def _give_back(self, response: Response) -> bool:
        """Whether the page goes back to the shared frontier for another worker (this
        worker's product budget is spent; shared.FrontierScheduler requeues it) instead of
        being read here and its product dropped."""
        if self.stopping and self.config.frontier:
            response.meta["frontier_give_back"] = True
            return True
        return False

    async def parse_page(self, response: Response) -> AsyncIterator[Any]:
        if self._give_back(response):
            return
        if not isinstance(response, TextResponse):
            return
        if not isinstance(response, HtmlResponse) and b"<urlset" in response.body[:2000]:
            async for request in self.parse_sitemap(response):
                yield request
            return
        self.counters.pages += 1
        extra = [{"url": u, "source": "sitemap"} for u in
                 self.sitemap_images.get(clean_url(response.url), [])]
        reading = await self.reader.read(response.text, response.url,
                                         bool(response.meta.get("rendered")), extra)
        if self._give_back(response):  # the budget ran out while the page was read
            return
        if reading.render:
            yield self._rendered(response, reading.render)
            return
        product = reading.product
        if product is not None and not self.stopping:
            keys = {clean_url(response.url), product["canonical_url"]}
            if not keys & self.seen_products:
                self.seen_products.update(keys)
                tags = [v.decode("latin-1") for v in response.headers.getlist("X-Robots-Tag")]
                yield ProductItem(product=product, noai=reading.noai or forbids_ai(tags),
                                  pictures=reading.pictures)
                self.emitted += 1
                limit = self.config.max_products
                if limit is not None and self.emitted >= limit:
                    self.stopping = True
        if self.stopping and not self.config.frontier:  # a frontier's links are for all
            return
        for request in self._shopify(response):
            yield request
        for request in self._follow(response, reading, is_product=product is not None):
            yield request

    # -- feeds ------------------------------------------------------------------------
    def _shopify(self, response: TextResponse) -> Iterator[Request]:
        """On a Shopify storefront's first page, its /products.json feed, page 1."""
        origin = page_origin(response.url)
        if origin in self.shopify_checked:
            return
        self.shopify_checked.add(origin)
        headers = {k.decode("latin-1"): "" for k in response.headers}
        if feeds.is_shopify(response.text, headers):
            parts = urlsplit(response.url)
            root = f"{parts.scheme}://{parts.netloc}"
            yield self._feed(f"{root}/products.json?limit={feeds.SHOPIFY_PAGE}&page=1",
                             self.parse_shopify, root=root, page=1,
                             currency=feeds.shopify_currency(response.text))

    def parse_shopify(self, response: Response) -> Iterator[Any]:
        """One page of Shopify's /products.json: its products, then the next page."""
        meta = response.meta
        products = feeds.shopify_products(response.body, meta["root"], meta.get("currency"))
        for product in products:
            yield from self._feed_item(product)
        if products and meta["page"] < feeds.SHOPIFY_MAX_PAGES and not self.stopping:
            page = meta["page"] + 1
            yield self._feed(f"{meta['root']}/products.json?limit={feeds.SHOPIFY_PAGE}"
                             f"&page={page}", self.parse_shopify, root=meta["root"],
                             page=page, currency=meta.get("currency"))

    def parse_merchant_feed(self, response: Response) -> Iterator[Any]:
        """A Google Merchant feed (``--feed``): its products."""
        for product in feeds.merchant_products(response.body, response.url):
            yield from self._feed_item(product)

    def _feed_item(self, product: Any) -> Iterator[ProductItem]:
        """A feed's product, unless stored or seen already; its page is then not crawled."""
        url = clean_url(product.canonical_url)
        if self.stopping or url in self.seen_products:
            return
        self.seen_products.add(url)
        self.queued.add(url)  # the feed said what the page would: no need to fetch it
        product.canonical_url = product.url = url
        data = product.as_dict()
        candidates = data.get("image_candidates") or [
            {"url": u, "source": "feed"} for u in data["image_urls"]]
        yield ProductItem(product=data, pictures=rank_pictures(
            candidates, max_px=self.config.max_image_px))
        self.emitted += 1
        if self.config.max_products is not None and self.emitted >= self.config.max_products:
            self.stopping = True

    def _follow(self, response: Response, reading: Reading, is_product: bool
                ) -> Iterator[Request]:
        """Requests for the page's fresh links that the crawl limits admit."""
        if reading.over_cap:
            self.links.skip_links(response.url, reading.over_cap)
        pages = reading.pager
        fresh = [url for url in reading.links
                 if url not in self.queued and url not in self.done and self.on_site(url)]
        taken = fresh
        depth = response.meta.get("depth", 0) + 1
        # Hops through pages without a product since the last product page.
        barren = 0 if is_product else response.meta.get("barren", 0) + 1
        offers = False
        for url in [u for u in taken if u not in pages]:
            if self.links.admit(url, depth, barren):
                offers = True
                self.queued.add(url)
                yield self._page(url, barren=barren)
        # A pager link costs no hop while its listing offered other fresh links (products):
        # a real category is walked to its end, an endless pager of empty pages is not.
        hops = barren - 1 if offers else barren
        for url in [u for u in taken if u in pages]:
            if self.links.admit(url, depth, hops):
                self.queued.add(url)
                # Listing pages first: they lead to many products each.
                yield self._page(url, priority=2, barren=hops)

    # -- failures ---------------------------------------------------------------------
    def page_failed(self, failure: Failure) -> None:
        if isinstance(failure.value, OutOfScope):
            return
        reason, status = failure_reason(failure)
        if reason == "robots":
            return  # counted by the robots middleware, not an error
        self._record(failure, "page", reason, status)

    def discovery_failed(self, failure: Failure) -> None:
        reason, status = failure_reason(failure)
        if status == 404 or reason in ("robots", "ignored"):
            return  # a shop without /sitemap.xml is normal
        self._record(failure, "sitemap", reason, status)

    def _record(self, failure: Failure, kind: str, reason: str, status: int | None) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        self.counters.errors[reason] += 1
        self.catalogue.record_error(self.run_id, url, kind, reason, status,
                                    str(failure.value))
        logger.info("%s %s failed: %s", kind, url, reason)
