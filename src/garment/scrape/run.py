"""Scrape, the child process: ``python -m garment.scrape.run CONFIG.json``.

Runs one Scrapy crawl with garment's polite settings and prints JSON lines on stdout:
``{"event": "progress", ...}`` about twice a second and ``{"event": "done", "stats":
{...}}`` at the end. Scrapy's log goes to stderr (the parent sends it to DIR/crawl.log).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from garment.scrape import CrawlConfig, CrawlStats
from garment.store import Catalogue

logger = logging.getLogger("garment.scrape")

PROGRESS_INTERVAL = 0.5  # seconds between progress lines


def emit(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, **data}), flush=True)


def settings_for(config: CrawlConfig) -> dict[str, Any]:
    """Scrapy settings, every politeness knob explicit (Scrapy's own defaults are not
    polite: no robots.txt, no delay, 8 requests at once per host)."""
    pkg = "garment.scrape"
    return {
        "BOT_NAME": "garment",
        "USER_AGENT": config.user_agent,
        "ROBOTSTXT_OBEY": not config.ignore_robots,
        "DOWNLOAD_DELAY": config.delay,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.concurrency,
        "CONCURRENT_REQUESTS": max(16, 4 * config.concurrency),
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": config.delay,
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(config.concurrency),
        "RETRY_ENABLED": True,
        "RETRY_TIMES": config.retries,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "GARMENT_RETRY_BACKOFF": config.retry_backoff,
        "GARMENT_MAX_RETRY_AFTER": config.max_retry_after,
        "GARMENT_MAX_PAGES": config.max_pages or 0,
        "DOWNLOAD_TIMEOUT": config.timeout,
        "DOWNLOAD_MAXSIZE": config.max_page_bytes,
        "DOWNLOAD_WARNSIZE": config.max_page_bytes,
        "REDIRECT_MAX_TIMES": 5,
        # Breadth first: shallow pages (listings) before deep ones.
        "DEPTH_PRIORITY": 1,
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": config.log_level.upper(),
        "LOGSTATS_INTERVAL": 60.0,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            f"{pkg}.polite.RetryAfterMiddleware": 550,
            f"{pkg}.netguard.NetGuardMiddleware": 50,  # before robots.txt is asked for
            f"{pkg}.polite.ScopeMiddleware": 120,  # after robots.txt (100)
            f"{pkg}.polite.RedirectLoopMiddleware": 650,  # before redirects (600)
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
        },
        "SPIDER_MIDDLEWARES": {f"{pkg}.pipelines.PageErrorMiddleware": 950},
        "EXTENSIONS": {
            "scrapy.extensions.throttle.AutoThrottle": None,
            f"{pkg}.polite.PoliteThrottle": 0,
        },
        "ITEM_PIPELINES": {
            f"{pkg}.pipelines.PackshotPipeline": 100,
            f"{pkg}.pipelines.StorePipeline": 300,
        },
    }


def _snapshot(spider: Any) -> dict[str, Any]:
    c = spider.counters
    return {"pages": c.pages, "products": c.products, "images": dict(c.images),
            "errors": sum(c.errors.values())}


def collect_stats(run_id: int, spider: Any, scrapy_stats: dict[str, Any],
                  elapsed: float) -> CrawlStats:
    c = spider.counters
    return CrawlStats(
        run_id=run_id, pages=c.pages, products=c.products, images=dict(c.images),
        robots_forbidden=int(scrapy_stats.get("robotstxt/forbidden", 0)),
        retries=int(scrapy_stats.get("retry/count", 0)),
        status_429=int(scrapy_stats.get("downloader/response_status_count/429", 0)),
        status_503=int(scrapy_stats.get("downloader/response_status_count/503", 0)),
        errors=dict(c.errors),
        requests=int(scrapy_stats.get("downloader/request_count", 0)),
        elapsed_s=round(elapsed, 2),
        finish_reason=str(scrapy_stats.get("finish_reason", "")))


def run(config: CrawlConfig) -> CrawlStats:
    """Run the crawl in this process (once: Twisted's reactor cannot restart)."""
    from scrapy.crawler import AsyncCrawlerProcess
    from scrapy.utils.asyncio import create_looping_call

    from garment.scrape.spider import ShopSpider

    catalogue = Catalogue.open(config.out)
    run_id = catalogue.start_run(json.loads(config.to_json()))
    if config.ignore_robots:
        logger.warning("robots.txt is IGNORED for this crawl (--ignore-robots)")
    process = AsyncCrawlerProcess(settings_for(config))
    crawler = process.create_crawler(ShopSpider)
    started = time.monotonic()
    tickers: list[Any] = []

    def opened(spider: Any) -> None:
        # Made here: a looping call needs the reactor the crawler installs.
        ticker = create_looping_call(lambda: emit("progress", **_snapshot(spider)))
        ticker.start(PROGRESS_INTERVAL, now=False)
        tickers.append(ticker)

    def closed(spider: Any) -> None:
        for ticker in tickers:
            if ticker.running:
                ticker.stop()

    from scrapy import signals

    crawler.signals.connect(opened, signal=signals.spider_opened)
    crawler.signals.connect(closed, signal=signals.spider_closed)
    process.crawl(crawler, config=config, catalogue=catalogue, run_id=run_id)
    process.start()
    if crawler.stats is None or crawler.spider is None or \
            not crawler.stats.get_value("finish_reason"):
        catalogue.finish_run(run_id, {}, "failed")
        raise RuntimeError("the crawl did not run; the log above says why")
    stats = collect_stats(run_id, crawler.spider, crawler.stats.get_stats(),
                          time.monotonic() - started)
    catalogue.finish_run(run_id, stats.as_dict(),
                         "finished" if stats.finish_reason == "finished" else
                         stats.finish_reason or "stopped")
    catalogue.close()
    return stats


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m garment.scrape.run CONFIG.json", file=sys.stderr)
        return 2
    config = CrawlConfig.from_json(Path(argv[0]).read_text(encoding="utf-8"))
    stats = run(config)
    emit("progress", pages=stats.pages, products=stats.products, images=stats.images,
         errors=sum(stats.errors.values()))
    emit("done", stats=stats.as_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
