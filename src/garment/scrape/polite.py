"""Scrape, politeness: Scrapy components that make the crawl a good guest.

- ``PoliteThrottle``: AutoThrottle that never goes below robots.txt's Crawl-delay.
- ``RetryAfterMiddleware``: Scrapy's retries, plus a pause of the whole host for
  ``Retry-After`` on 429/503 and an exponential backoff otherwise.
- ``RobotsTxtMiddleware``: Scrapy's, with every request that waits for a host's
  robots.txt given the parsed file (Scrapy hands it to the first waiter only: the others
  got None, "no robots.txt", and went out unchecked).
- ``ScopeMiddleware``: drops page requests off the shop's site (redirects included),
  beyond ``--max-pages`` or once ``--max-products`` is reached, so the crawl winds down
  without fetching them. (Scrapy's OffsiteMiddleware would also block the robots.txt
  requests of image hosts, which must be read.)
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from scrapy import Request, Spider, signals
from scrapy.downloadermiddlewares import robotstxt
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.extensions.throttle import AutoThrottle
from scrapy.http import Response
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class RobotsTxtMiddleware(robotstxt.RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware; each request waiting for a host's robots.txt gets
    its own Deferred off the shared one, which passes the parser on down its chain."""

    async def robot_parser(self, request: Request) -> Any:
        netloc = urlparse_cached(request).netloc
        pending = self._parsers.get(netloc)
        if isinstance(pending, Deferred):
            waiter: Deferred[Any] = Deferred()

            def hand_on(result: Any) -> Any:
                waiter.callback(result)
                return result  # for the next waiter

            pending.addBoth(hand_on)
            return await maybe_deferred_to_future(waiter)
        return await super().robot_parser(request)


class OutOfScope(IgnoreRequest):
    """A page request dropped: off the shop's site, or past the page or product budget."""


def pause_host(crawler: Crawler, key: str, seconds: float,
               until: dict[str, float] | None = None) -> None:
    """Hold every request to downloader slot ``key`` (a host) for ``seconds``.

    ``until`` remembers each host's pause end, so a short backoff never cuts a longer
    Retry-After pause short.
    """
    downloader = crawler.engine.downloader if crawler.engine else None
    slot = downloader.slots.get(key) if downloader else None
    if downloader is None or slot is None or seconds <= 0:
        return
    end = time.monotonic() + seconds
    if until is not None:
        if slot.latercall and until.get(key, 0.0) >= end:
            return
        until[key] = end
    if slot.latercall:
        slot.latercall.cancel()
    # The downloader processes a slot's queue only when no latercall is pending.
    slot.latercall = call_later(seconds, downloader._latercall, slot)


def parse_retry_after(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RetryAfterMiddleware(RetryMiddleware):
    """RetryMiddleware that waits before retrying, as the server asks or exponentially."""

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.backoff = settings.getfloat("GARMENT_RETRY_BACKOFF", 1.0)
        self.max_retry_after = settings.getfloat("GARMENT_MAX_RETRY_AFTER", 120.0)
        self.paused_until: dict[str, float] = {}

    def _pause(self, request: Request, seconds: float) -> None:
        key = request.meta.get("download_slot")
        if key:
            pause_host(self.crawler, key, seconds, self.paused_until)

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Request | Response:
        if request.meta.get("dont_retry") or response.status not in self.retry_http_codes:
            return response
        wait = None
        if response.status in (429, 503):
            wait = parse_retry_after(response.headers.get(b"Retry-After"))
            if wait is not None and wait > self.max_retry_after:
                logger.warning("%s asks to wait %.0f s (Retry-After), more than the %.0f s "
                               "allowed: giving up on it", request.url, wait,
                               self.max_retry_after)
                return response
        if wait is None:
            wait = self.backoff * 2 ** request.meta.get("retry_times", 0)
        retry = self._retry(request, f"HTTP {response.status}")
        if retry is not None:
            self._pause(request, wait)
            return retry
        return response

    def process_exception(self, request: Request, exception: Exception,
                          spider: Spider | None = None) -> Request | Response | None:
        result = super().process_exception(request, exception)
        if isinstance(result, Request):
            self._pause(request, self.backoff * 2 ** request.meta.get("retry_times", 0))
        return result


class ScopeMiddleware:
    """Downloader middleware: page requests out of scope become ``OutOfScope``."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.max_pages = crawler.settings.getint("GARMENT_MAX_PAGES", 0) or None
        self.pages = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ScopeMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        kind = request.meta.get("kind")
        if kind not in ("page", "sitemap"):
            return  # images and robots.txt may be on other hosts
        on_site = getattr(self.crawler.spider, "on_site", None)
        if on_site is not None and not on_site(request.url):
            raise OutOfScope(f"off the shop's site: {request.url}")
        if kind != "page":
            return
        if getattr(self.crawler.spider, "stopping", False):
            raise OutOfScope("product budget reached")
        if request.meta.get("retry_times") or request.meta.get("redirect_times"):
            return  # the same page again, already counted
        if self.max_pages is not None and self.pages >= self.max_pages:
            raise OutOfScope("page budget reached")
        self.pages += 1


class RedirectLoopMiddleware:
    """Turns a redirect back to a URL already in the chain into an error.

    Without it Scrapy's duplicate filter silently drops the looping request, and the
    page disappears without a trace. Sits before RedirectMiddleware (600) on responses.
    """

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Response:
        location = response.headers.get(b"Location")
        if response.status in (301, 302, 303, 307, 308) and location:
            target = urljoin(request.url, location.decode("latin-1"))
            chain = [*request.meta.get("redirect_urls", []), request.url]
            if target in chain:
                raise IgnoreRequest(f"redirect loop: {' -> '.join([*chain, target])}")
        return response


#: Statuses that may lower AutoThrottle's delay besides 200: the page is gone, the server is fine.
NOT_FOUND = frozenset({404, 410})


class PoliteThrottle(AutoThrottle):
    """AutoThrottle whose per-host delay never drops below robots.txt's Crawl-delay."""

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.floors: dict[str, float] = {}
        self.user_agent = crawler.settings.get("USER_AGENT", "")
        crawler.signals.connect(self._robots_parsed, signal=signals.robots_parsed)

    def _robots_parsed(self, robotparser: Any, request: Request) -> None:
        delay = getattr(robotparser, "crawl_delay", lambda ua: None)(self.user_agent)
        host = request.meta.get("download_slot") or (
            self.crawler.engine.downloader.get_slot_key(request) if self.crawler.engine
            else None)
        if delay and host:
            logger.info("robots.txt of %s asks for a Crawl-delay of %s s", host, delay)
            self.floors[host] = float(delay)
            self._apply_floor(host)

    def _apply_floor(self, key: str | None) -> None:
        if key is None or key not in self.floors or self.crawler.engine is None:
            return
        slot = self.crawler.engine.downloader.slots.get(key)
        if slot is not None and slot.delay < self.floors[key]:
            slot.delay = self.floors[key]
            slot.jitter = 0.0  # a floor is a floor: no random shortening

    def _response_downloaded(self, response: Response, request: Request,
                             spider: Spider) -> None:
        super()._response_downloaded(response, request, spider)
        self._apply_floor(request.meta.get("download_slot"))

    def _adjust_delay(self, slot: Any, latency: float, response: Response) -> None:
        # AutoThrottle lets only 200s lower a delay (small error pages would otherwise speed
        # up a failing server). A 404 or 410 is a healthy server's answer: when it may not
        # lower the delay either, a crawl whose last phase meets only dead links stays at
        # the delay of its slowest moment. 5xx, 429 and redirects keep Scrapy's rule.
        if response.status in NOT_FOUND:
            response = response.replace(status=200)
        super()._adjust_delay(slot, latency, response)
