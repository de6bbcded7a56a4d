"""Scrape, pipelines: download each product's packshot, then store product and packshot.

The packshot download goes through Scrapy's downloader middlewares (the address guard,
robots.txt of the image host, retries with Retry-After, redirects, size limits) via
``download_async``. Every outcome is data: a status in the images table, never an
exception; a page whose extraction fails is an error row too (``PageErrorMiddleware``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.http.request import NO_CALLBACK
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from garment.scrape.images import (
    GOOD_IMAGE_PX,
    TRY_NEXT,
    ImageCheck,
    check_image,
    forbids_ai,
    save_image,
)
from garment.scrape.netguard import AddressRefused
from garment.scrape.spider import ProductItem, ShopSpider, failure_reason

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

#: Candidates tried per product before giving up on its packshot.
MAX_CANDIDATES = 3


class PackshotPipeline:
    """Downloads the first acceptable candidate image of each product."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PackshotPipeline:
        return cls(crawler)

    @property
    def spider(self) -> ShopSpider:
        spider = self.crawler.spider
        assert isinstance(spider, ShopSpider)
        return spider

    async def process_item(self, item: ProductItem) -> ProductItem:
        candidates = list(item.product.get("image_urls") or [])
        if item.noai:
            item.image = {"url": candidates[0] if candidates else "", "status": "noai",
                          "error": "page says noai/noimageai"}
        elif not candidates:
            item.image = {"url": "", "status": "missing", "error": "no image on the page"}
        else:
            item.image = await self.choose(candidates[:MAX_CANDIDATES])
        assert item.image is not None
        self.spider.counters.images[item.image["status"]] += 1
        return item

    async def choose(self, candidates: list[str]) -> dict[str, Any]:
        """The images-table row of the product's packshot: the first acceptable candidate,
        or, when it is small (under ``GOOD_IMAGE_PX``), the largest of the candidates."""
        row: dict[str, Any] = {}
        best: tuple[dict[str, Any], bytes, ImageCheck] | None = None
        for url in candidates:
            row, body, check = await self.fetch(url)
            if row["status"] == "corrupt":
                # Cut short in transit, often: ask once more before the next candidate.
                row, body, check = await self.fetch(url, again=True)
            if check is not None and check.status == "ok" and (
                    best is None or check.short_side > best[2].short_side):
                best = (row, body, check)
            if best is not None and best[2].short_side >= GOOD_IMAGE_PX:
                break
            if best is None and row["status"] not in TRY_NEXT:
                break
        if best is None:
            return row
        row, body, check = best
        row["path"] = await maybe_deferred_to_future(deferToThread(
            save_image, self.spider.config.out, body, check))
        return row

    async def fetch(self, url: str, again: bool = False
                    ) -> tuple[dict[str, Any], bytes, ImageCheck | None]:
        """Download and check one image: its images-table row (no file yet), the bytes,
        and the check when it got that far. A first corrupt answer is not an error yet:
        ``choose`` asks ``again``, and only that answer counts."""
        config = self.spider.config
        request = Request(url, callback=NO_CALLBACK, priority=20, dont_filter=True,
                          meta={"kind": "image", "download_maxsize": config.max_image_bytes,
                                "download_warnsize": config.max_image_bytes})
        row: dict[str, Any] = {"url": url}
        try:
            response = await self.crawler.engine.download_async(request)
        except AddressRefused as exc:
            row.update(status="refused", error=str(exc))
            self._record(url, "refused", None, str(exc))
            return row, b"", None
        except IgnoreRequest as exc:
            reason, _ = failure_reason(Failure(exc))
            row.update(status="robots" if reason == "robots" else reason, error=str(exc))
            if reason != "robots":
                self._record(url, reason, None, str(exc))
            return row, b"", None
        except Exception as exc:  # every download failure is this product's data
            text = f"{type(exc).__name__}: {exc}"
            reason = "too_large" if "maxsize" in text.lower() else failure_reason(
                Failure(exc))[0]
            row.update(status="too_large" if reason == "too_large" else "failed", error=text)
            self._record(url, reason, None, text)
            return row, b"", None
        row.update(final_url=response.url,
                   content_type=(response.headers.get(b"Content-Type") or b"").decode(
                       "latin-1"))
        tags = [v.decode("latin-1") for v in response.headers.getlist(b"X-Robots-Tag")]
        if forbids_ai(tags):
            row.update(status="noai", error="X-Robots-Tag says noai/noimageai")
            return row, b"", None
        if response.status != 200:
            # 5xx after retries may pass on a later run; a 4xx will not.
            status = "failed" if response.status >= 500 or response.status == 429 \
                else "http_error"
            row.update(status=status, error=f"HTTP {response.status}")
            self._record(url, f"http_{response.status}", response.status, row["error"])
            return row, b"", None
        body = response.body
        check = await maybe_deferred_to_future(deferToThread(
            check_image, body, config.min_image_px, config.max_image_px,
            config.min_image_bytes))
        row.update(status=check.status, error=check.error, width=check.width,
                   height=check.height, format=check.format, sha256=check.sha256,
                   bytes=check.bytes)
        if check.status != "ok" and (check.status != "corrupt" or again):
            self._record(url, check.status, None, check.error)
        return row, body, check

    def _record(self, url: str, reason: str, status: int | None, detail: str | None) -> None:
        self.spider.counters.errors[f"image_{reason}"] += 1
        self.spider.catalogue.record_error(self.spider.run_id, url, "image", reason, status,
                                           detail)


class StorePipeline:
    """Writes each product with its packshot row in one transaction."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler)

    def process_item(self, item: ProductItem) -> ProductItem:
        spider = self.crawler.spider
        assert isinstance(spider, ShopSpider)
        spider.catalogue.save_product(item.product, item.image, spider.run_id)
        spider.counters.products += 1
        return item


class PageErrorMiddleware:
    """Spider middleware: a page whose parsing raised (JSON-LD nested beyond the bound,
    markup a library chokes on) is an error row and a count, never lost silently; the
    crawl goes on."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageErrorMiddleware:
        return cls(crawler)

    def process_spider_exception(self, response: Response,
                                 exception: Exception) -> list[Any] | None:
        if isinstance(exception, (HttpError, IgnoreRequest)):
            return None  # Scrapy's own middlewares handle these
        spider = self.crawler.spider
        if not isinstance(spider, ShopSpider):
            return None
        reason = getattr(exception, "reason", None) or f"parse_{type(exception).__name__}"
        detail = f"{type(exception).__name__}: {exception}"[:300]
        spider.counters.errors[reason] += 1
        spider.catalogue.record_error(spider.run_id, response.url, "page", reason,
                                      response.status, detail)
        logger.info("page %s could not be parsed: %s", response.url, detail)
        return []
