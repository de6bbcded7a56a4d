"""Scrape, pipelines: download each product's packshot, then store product and packshot.

The packshot download goes through Scrapy's downloader middlewares (the address guard,
robots.txt of the image host, retries with Retry-After, redirects, size limits) via
``download_async``. Every outcome is data: a status in the images table, never an
exception; a page whose extraction fails is an error row too (``PageErrorMiddleware``).
"""

from __future__ import annotations

import json
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
    CONTENT_WEIGHT,
    EVIDENCE,
    GOOD_IMAGE_PX,
    TRY_NEXT,
    ImageCheck,
    Picture,
    Scored,
    check_and_score,
    forbids_ai,
    rank_pictures,
    save_image,
)
from garment.scrape.netguard import AddressRefused
from garment.scrape.spider import ProductItem, ShopSpider, failure_reason

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


#: Pictures of a product downloaded and judged by their content, at most; renditions of
#: one picture tried (largest first) before the next picture.
MAX_PICTURES = 3
MAX_RENDITIONS = 3
#: A downloaded picture whose content scores this (``packshot_score``) at a usable size
#: ends the search: no later candidate is downloaded.
GOOD_CONTENT = 0.75


class PackshotPipeline:
    """Chooses each product's packshot: its candidate pictures ranked by markup evidence
    (``images.rank_pictures``), the top few downloaded and judged by content
    (``convert.packshot_score``: one product on a plain background), the best kept with
    the reasons for the choice (the images table's ``choice``)."""

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
        pictures = item.pictures
        if pictures is None:  # an item made without the spider's ranking
            pictures = rank_pictures([{"url": u} for u in item.product.get("image_urls") or []],
                                     max_px=self.spider.config.max_image_px)
        if item.noai:
            item.image = {"url": pictures[0].url if pictures else "", "status": "noai",
                          "error": "page says noai/noimageai"}
        elif not pictures:
            item.image = {"url": "", "status": "missing", "error": "no image on the page"}
        else:
            item.image = await self.choose(pictures)
        assert item.image is not None
        self.spider.counters.images[item.image["status"]] += 1
        return item

    async def choose(self, pictures: list[Picture]) -> dict[str, Any]:
        """The images-table row of the product's packshot: of the first ``MAX_PICTURES``
        pictures (best evidence first), the downloaded one with the highest evidence plus
        content score; a later picture is not downloaded once the best so far is a good
        packshot or no later one could beat it. ``choice`` (JSON) says why."""
        row: dict[str, Any] = {}
        best: tuple[float, dict[str, Any], bytes, ImageCheck, Picture, float, list[str]] | None
        best = None
        judged: list[dict[str, Any]] = []
        for pic in pictures[:MAX_PICTURES]:
            if best is not None and best[0] >= pic.evidence + CONTENT_WEIGHT:
                break  # not even a perfect packshot here could win
            row, body, check, scored = await self.download(pic)
            if check is None or check.status != "ok" or scored is None:
                judged.append({"url": row.get("url"), "status": row.get("status")})
                if best is None and row.get("status") not in TRY_NEXT | {"failed"}:
                    break  # robots.txt or noai said no: not another picture either
                continue
            content, why = scored
            small = check.short_side < GOOD_IMAGE_PX
            total = pic.evidence + CONTENT_WEIGHT * content + (EVIDENCE["small"] if small else 0)
            judged.append({"url": row["url"], "status": "ok", "evidence": pic.evidence,
                           "content": content, "total": round(total, 3)})
            if best is None or total > best[0]:
                best = (total, row, body, check, pic, content, why)
            if content >= GOOD_CONTENT and not small:
                break
        if best is None:
            return row
        total, row, body, check, pic, content, why = best
        reasons = pic.reasons + [f"content {content:.2f}: " + "; ".join(why)]
        if check.short_side < GOOD_IMAGE_PX:
            reasons.append(f"small: {check.width}x{check.height} ({EVIDENCE['small']:+g})")
        row["choice"] = json.dumps({
            "score": round(total, 3), "evidence": pic.evidence, "content": content,
            "reasons": reasons, "sources": pic.sources, "pictures": len(pictures),
            "judged": judged}, ensure_ascii=False)
        row["path"] = await maybe_deferred_to_future(deferToThread(
            save_image, self.spider.config.files, body, check))
        return row

    async def download(self, pic: Picture) -> tuple[dict[str, Any], bytes, ImageCheck | None, Scored]:
        """The picture's largest rendition that downloads as an acceptable image (the next,
        smaller one when it is too large, missing or broken), with its content score."""
        row: dict[str, Any] = {}
        body, check, scored = b"", None, None
        for url in pic.renditions[:MAX_RENDITIONS]:
            row, body, check, scored = await self.fetch(url)
            if row["status"] == "corrupt":
                # Cut short in transit, often: ask once more before the next candidate.
                row, body, check, scored = await self.fetch(url, again=True)
            if (check is not None and check.status == "ok") or row["status"] not in TRY_NEXT:
                break
        return row, body, check, scored

    async def fetch(self, url: str, again: bool = False
                    ) -> tuple[dict[str, Any], bytes, ImageCheck | None, Scored]:
        """Download and check one image: its images-table row (no file yet), the bytes,
        the check when it got that far and, when the check passed, its content score. A
        first corrupt answer is not an error yet: ``choose`` asks ``again``, and only that
        answer counts."""
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
            return row, b"", None, None
        except IgnoreRequest as exc:
            reason, _ = failure_reason(Failure(exc))
            row.update(status="robots" if reason == "robots" else reason, error=str(exc))
            if reason != "robots":
                self._record(url, reason, None, str(exc))
            return row, b"", None, None
        except Exception as exc:  # every download failure is this product's data
            text = f"{type(exc).__name__}: {exc}"
            reason = "too_large" if "maxsize" in text.lower() else failure_reason(
                Failure(exc))[0]
            row.update(status="too_large" if reason == "too_large" else "failed", error=text)
            self._record(url, reason, None, text)
            return row, b"", None, None
        row.update(final_url=response.url,
                   content_type=(response.headers.get(b"Content-Type") or b"").decode(
                       "latin-1"))
        tags = [v.decode("latin-1") for v in response.headers.getlist(b"X-Robots-Tag")]
        if forbids_ai(tags):
            row.update(status="noai", error="X-Robots-Tag says noai/noimageai")
            return row, b"", None, None
        if response.status != 200:
            # 5xx after retries may pass on a later run; a 4xx will not.
            status = "failed" if response.status >= 500 or response.status == 429 \
                else "http_error"
            row.update(status=status, error=f"HTTP {response.status}")
            self._record(url, f"http_{response.status}", response.status, row["error"])
            return row, b"", None, None
        body = response.body
        # Both in one trip to a page reader (a process beside the crawler's: decoding and
        # scoring hold no core of the crawler's), or a worker thread without one.
        check, scored = await self.spider.reader.call(
            check_and_score, body, config.min_image_px, config.max_image_px,
            config.min_image_bytes)
        row.update(status=check.status, error=check.error, width=check.width,
                   height=check.height, format=check.format, sha256=check.sha256,
                   bytes=check.bytes)
        if check.status != "ok" and (check.status != "corrupt" or again):
            self._record(url, check.status, None, check.error)
        return row, body, check, scored

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
