"""Scrape, the Scrapy side of a shared frontier (``--frontier``): scheduler and host slots.

- ``FrontierScheduler``: scrapy-redis's scheduler (its priority queue and RFPDupeFilter,
  requests as JSON through ``reqjson``) whose pop and push go through ``frontier.Frontier``
  so that each popped request is tracked in flight until processed; a heartbeat (the
  worker's lease, its counters); dead workers' requests requeued; the crawl ends when the
  frontier is empty and no worker holds work, after a short grace.
- ``SharedSlotHandler``: a download handler in front of Scrapy's own (or the browser's)
  that waits for the host's shared slot right before a request goes out, after Scrapy's
  per-process slot let it through, and holds the host for every worker on 429/503.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy_redis.scheduler import Scheduler

from garment.scrape import CrawlConfig, frontier
from garment.scrape.polite import OutOfScope, parse_retry_after

logger = logging.getLogger(__name__)

HTTP_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"
IDLE_GRACE_S = 3.0      # the frontier stays empty this long before a worker ends
ENGINE_POLL_S = 1.0     # an idle worker asks the frontier for work this often
RATE_WINDOW_S = 60.0    # rates in --status: over the last minute


def settings(config: CrawlConfig, base: dict[str, Any]) -> dict[str, Any]:
    """Settings that put the crawl ``base`` (run.settings_for) on ``config.frontier``."""
    from scrapy.core.engine import ExecutionEngine

    # Scrapy asks an idle scheduler for requests every 5 s; a worker waiting for work the
    # others will queue should not sit idle that long.
    ExecutionEngine._SLOT_HEARTBEAT_INTERVAL = ENGINE_POLL_S
    inner = (base.get("DOWNLOAD_HANDLERS") or {}).get("http", HTTP_HANDLER)
    hosts = {urlsplit(u).netloc for u in config.start_urls}
    handler = f"{__name__}.SharedSlotHandler"
    return {**base,
            "SCHEDULER": f"{__name__}.FrontierScheduler",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
            "SCHEDULER_QUEUE_KEY": frontier.QUEUE_KEY,
            "SCHEDULER_DUPEFILTER_KEY": frontier.SEEN_KEY,
            "SCHEDULER_SERIALIZER": "garment.scrape.reqjson",
            "SCHEDULER_PERSIST": True,          # one worker's end is not the crawl's
            # A worker takes from the frontier only what its own per-host slots can send
            # now: requests waiting in one worker's memory would idle the others.
            "CONCURRENT_REQUESTS": config.concurrency * max(1, len(hosts)),
            "REDIS_URL": config.frontier,
            "REDIS_PARAMS": frontier.client_options(config.frontier or ""),
            "DOWNLOAD_HANDLERS": {"http": handler, "https": handler},
            "GARMENT_FRONTIER_INNER": inner,
            "GARMENT_FRONTIER_DELAY": config.delay}


class FrontierScheduler(Scheduler):  # type: ignore[misc]
    """scrapy-redis's scheduler with in-flight tracking, leases and a shared end."""

    ticker: Any = None  # the heartbeat's looping call
    full = False        # this worker's page or product budget is spent

    @classmethod
    def from_crawler(cls, crawler: Any) -> FrontierScheduler:
        scheduler: FrontierScheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        scheduler.frontier = frontier.Frontier(scheduler.server)
        scheduler.popped = 0
        scheduler.rejected = 0
        scheduler.empty_since = None
        scheduler.samples = collections.deque()
        scheduler.started = time.time()
        crawler.signals.connect(scheduler._idle, signal=signals.spider_idle)
        crawler.signals.connect(scheduler._opened, signal=signals.spider_opened)
        return scheduler

    def open(self, spider: Any) -> None:
        super().open(spider)
        from scrapy.utils.asyncio import create_looping_call

        self._beat()
        self.ticker = create_looping_call(self._beat)
        self.ticker.start(frontier.HEARTBEAT_S, now=False)

    def _opened(self, spider: Any) -> None:
        """Wrap the scraper's end of a response: its request leaves the in-flight hash
        only once the callback's output is queued and its items are stored."""
        slot = self.crawler.engine.scraper.slot
        finish = slot.finish_response

        def finish_response(result: Any, request: Request) -> None:
            try:
                finish(result, request)
            finally:
                token = request.meta.get("frontier_token")
                if request.meta.get("frontier_give_back") or isinstance(
                        getattr(result, "value", None), OutOfScope) and "budget" in str(
                        result.value):
                    # This worker's page or product budget is spent: the request was not
                    # sent, and goes back for the others; this worker takes no more.
                    self.full = True
                    self.frontier.push(self.queue._encode_request(request), request.priority,
                                       token)
                elif token:
                    self.frontier.done(token)

        slot.finish_response = finish_response

    def enqueue_request(self, request: Request) -> bool:
        token = request.meta.pop("frontier_token", None)  # a retry or redirect of ours
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            if token:
                self.frontier.done(token)
            return False
        self.frontier.push(self.queue._encode_request(request), request.priority, token)
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Request | None:
        if self.full or getattr(self.spider, "stopping", False):
            return None  # budget spent: the frontier's work is the other workers'
        while (popped := self.frontier.pop()) is not None:
            token, data = popped
            try:
                request = self.queue._decode_request(data)
            except (ValueError, KeyError, TypeError) as exc:  # not ours: never run, counted
                logger.warning("frontier entry refused: %s", exc)
                self.frontier.done(token)
                self.rejected += 1
                continue
            request.meta["frontier_token"] = token
            if request.meta.get("playwright") and "playwright_page_methods" not in request.meta:
                from garment.scrape.render import request_meta

                # The browser's page methods are objects, not JSON: made again here.
                request.meta.update(request_meta(self.spider.config.timeout))
            self.popped += 1
            if self.stats:
                self.stats.inc_value("scheduler/dequeued/redis")
            return request
        return None

    def has_pending_requests(self) -> bool:
        if self.full or getattr(self.spider, "stopping", False):
            return False  # nothing more for this worker: it may go idle and end
        return bool(super().has_pending_requests())

    def close(self, reason: str) -> None:
        if self.ticker is not None and self.ticker.running:
            self.ticker.stop()
        if reason == "finished" and self.frontier.pending() == 0:
            self.frontier.mark_finished()
        returned = self.frontier.leave()
        if returned:
            logger.info("frontier: %d in-flight requests returned to the queue", returned)
        if self.stats:
            self.stats.set_value("frontier/popped", self.popped)
            self.stats.set_value("frontier/refused", self.rejected)
            self.stats.set_value("frontier/redis_round_trips", frontier.ROUND_TRIPS[0])
        super().close(reason)

    def _beat(self) -> None:
        """Renew the lease with this worker's counters; requeue dead workers' requests.
        A Redis error is logged and the next beat tries again (an error would stop the
        looping call, and the lease would lapse while the worker goes on)."""
        from redis.exceptions import RedisError

        try:
            self._renew()
        except RedisError as exc:
            logger.warning("frontier heartbeat failed: %s", exc)

    def _renew(self) -> None:
        now = time.time()
        counters = getattr(getattr(self, "spider", None), "counters", None)
        products = getattr(counters, "products", 0)
        self.samples.append((now, self.popped, products))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.popleft()
        t0, popped0, products0 = self.samples[0]
        span = max(now - t0, 1e-9)
        self.frontier.heartbeat({
            "host": socket.gethostname(), "pid": os.getpid(),
            "started": round(self.started, 3), "requests": self.popped,
            "pages": getattr(counters, "pages", 0), "products": products,
            "requests_per_s": round((self.popped - popped0) / span, 2) if span > 1 else 0.0,
            "products_per_s": round((products - products0) / span, 2) if span > 1 else 0.0})
        if (reaped := self.frontier.reap()):
            logger.warning("frontier: %d requests of stopped workers requeued", reaped)

    def _idle(self, spider: Any) -> None:
        """Keep the worker open while the frontier holds work anywhere; end it after the
        frontier has been empty, with nothing in flight, for ``IDLE_GRACE_S``."""
        if self.full or getattr(spider, "stopping", False):
            return  # this worker's budget is spent: it ends, the crawl goes on
        self.frontier.reap()
        if (leaked := self.frontier.forget_inflight()):
            logger.warning("frontier: %d in-flight entries of this idle worker dropped", leaked)
        if self.frontier.pending() > 0:
            self.empty_since = None
            raise DontCloseSpider
        now = time.monotonic()
        if self.empty_since is None:
            self.empty_since = now
        if now - self.empty_since < IDLE_GRACE_S:
            raise DontCloseSpider


class SharedSlotHandler(BaseDownloadHandler):
    """Waits until it takes the host's shared slot (requests ``delay`` apart across
    workers, robots.txt's Crawl-delay as a floor), then downloads with the handler it
    wraps."""

    lazy = False

    def __init__(self, crawler: Any):
        super().__init__(crawler)
        settings = crawler.settings
        self.frontier = frontier.Frontier(frontier.connect(settings["REDIS_URL"]),
                                          worker="slots")
        self.inner = build_from_crawler(load_object(settings["GARMENT_FRONTIER_INNER"]),
                                        crawler)
        self.delay = settings.getfloat("GARMENT_FRONTIER_DELAY", 1.0)
        self.backoff = settings.getfloat("GARMENT_RETRY_BACKOFF", 1.0)
        self.max_retry_after = settings.getfloat("GARMENT_MAX_RETRY_AFTER", 120.0)
        self.user_agent = settings.get("USER_AGENT", "")
        self.floors: dict[str, float] = {}  # host -> robots.txt Crawl-delay
        crawler.signals.connect(self._robots_parsed, signal=signals.robots_parsed)

    def _robots_parsed(self, robotparser: Any, request: Request) -> None:
        delay = getattr(robotparser, "crawl_delay", lambda ua: None)(self.user_agent)
        if delay:
            self.floors[urlparse_cached(request).netloc] = float(delay)

    async def download_request(self, request: Request) -> Response:
        host = urlparse_cached(request).netloc
        # Wait (without blocking the reactor) until this worker takes the host's slot.
        while (wait := self.frontier.claim(host, max(self.delay, self.floors.get(host, 0.0)))):
            await asyncio.sleep(wait)
        result = self.inner.download_request(request)
        if not inspect.isawaitable(result):  # pragma: no cover - Deferred-style handlers
            result = maybe_deferred_to_future(result)
        response: Response = await result
        if response.status in (429, 503):
            hold = parse_retry_after(response.headers.get(b"Retry-After"))
            if hold is None:
                hold = self.backoff * 2 ** request.meta.get("retry_times", 0)
            self.frontier.hold(host, min(hold, self.max_retry_after))
        return response

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result
        self.frontier.redis.close()
