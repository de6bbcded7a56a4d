"""Scrape, the child process: ``python -m garment.scrape.run CONFIG.json``.

Runs one Scrapy crawl with garment's polite settings and prints JSON lines on stdout:
``{"event": "started", "run_id": N}``, ``{"event": "progress", ...}`` about twice a second
and ``{"event": "done", "stats": {...}}`` at the end. Scrapy's log goes to stderr (the
parent sends it to DIR/crawl.log). SIGINT or SIGTERM stops the crawl gracefully (the run
is then recorded as "interrupted", with its stats); the process also gets SIGTERM when its
parent dies.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from garment.scrape import PARENT_ENV, CrawlConfig, CrawlStats, render
from garment.store import Catalogue

logger = logging.getLogger("garment.scrape")

PROGRESS_INTERVAL = 0.5  # seconds between progress lines


#: Error reasons that mean the shop's host could not be reached at all.
NETWORK_REASONS = ("dns", "connection", "timeout", "response_failed")

#: prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def emit(event: str, **data: Any) -> None:
    try:
        print(json.dumps({"event": event, **data}), flush=True)
    except BrokenPipeError:
        # The parent is gone; the crawl still finishes what it stores. Later lines go
        # nowhere (and Python's flush at exit must not fail on the dead pipe either).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def die_with_parent(parent_pid: int | None) -> bool:
    """Ask Linux to send this process SIGTERM when its parent dies, even by SIGKILL (a
    graceful stop: the run is recorded as "interrupted"). Returns False when the parent
    ``parent_pid`` is already gone, before the request could be made."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            logger.warning("cannot ask to die with the parent process: %s",
                           os.strerror(ctypes.get_errno()))
    return parent_pid is None or os.getppid() == parent_pid


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
        # A page yields at most one product (and its links): Scrapy's default of 100 makes
        # it start 100 asyncio tasks per response to handle them, a tenth of the crawl's time.
        "CONCURRENT_ITEMS": 4,
        # Scrapy reads a generator callback's source (ast) at every response to warn about
        # a ``return value`` in it: a development aid, a few per cent of a crawl here.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
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
        # Longer URLs are refused by the spider and counted (skipped "url_too_long"); the
        # same number bounds Scrapy's own UrlLengthMiddleware, which would drop them silently.
        "URLLENGTH_LIMIT": 2083,
        # Breadth first: shallow pages (listings) before deep ones.
        "DEPTH_PRIORITY": 1,
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "COOKIES_ENABLED": False,
        # No remote access to the crawling process: Scrapy's telnet console and its
        # RemoteControl HTTP endpoint (which runs Python sent to it, and writes a token
        # file per crawl) stay off.
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": config.log_level.upper(),
        "LOGSTATS_INTERVAL": 60.0,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            f"{pkg}.polite.RobotsTxtMiddleware": 100,  # Scrapy's place
            f"{pkg}.polite.RetryAfterMiddleware": 550,
            f"{pkg}.netguard.NetGuardMiddleware": 50,  # before robots.txt is asked for
            f"{pkg}.polite.ScopeMiddleware": 120,  # after robots.txt (100)
            f"{pkg}.polite.RedirectLoopMiddleware": 650,  # before redirects (600)
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
        },
        "SPIDER_MIDDLEWARES": {f"{pkg}.pipelines.PageErrorMiddleware": 950},
        "EXTENSIONS": {
            "scrapy.extensions.throttle.AutoThrottle": None,
            "scrapy.extensions.telnet.TelnetConsole": None,
            "scrapy.extensions.remote_control.RemoteControl": None,
            f"{pkg}.polite.PoliteThrottle": 0,
        },
        "ITEM_PIPELINES": {
            f"{pkg}.pipelines.PackshotPipeline": 100,
            f"{pkg}.pipelines.StorePipeline": 300,
        },
        # Chromium through scrapy-playwright, only when pages may be rendered.
        **(render.settings(config.start_urls, config.concurrency, config.timeout)
           if config.render != "never" and render.render_available() is None else {}),
    }


def _snapshot(spider: Any) -> dict[str, Any]:
    c = spider.counters
    return {"pages": c.pages, "products": c.products, "images": dict(c.images),
            "errors": sum(c.errors.values()), "error_reasons": dict(c.errors)}


def collect_stats(run_id: int, spider: Any, scrapy_stats: dict[str, Any],
                  elapsed: float) -> CrawlStats:
    c = spider.counters
    stats = CrawlStats(
        run_id=run_id, pages=c.pages, products=c.products, images=dict(c.images),
        robots_forbidden=int(scrapy_stats.get("robotstxt/forbidden", 0)),
        retries=int(scrapy_stats.get("retry/count", 0)),
        status_429=int(scrapy_stats.get("downloader/response_status_count/429", 0)),
        status_503=int(scrapy_stats.get("downloader/response_status_count/503", 0)),
        errors=dict(c.errors),
        requests=int(scrapy_stats.get("downloader/request_count", 0)),
        rendered=c.rendered,
        skipped=spider.links.summary(),
        elapsed_s=round(elapsed, 2),
        finish_reason=str(scrapy_stats.get("finish_reason", "")))
    cpu, peak = spider.reader.cost()
    stats.readers, stats.reader_cpu_s, stats.reader_peak_mb = (
        len(spider.reader.usage), round(cpu, 2), round(peak, 1))
    if stats.finish_reason not in ("shutdown", ""):  # an interrupted crawl is not judged
        hosts = ", ".join(sorted(spider.sites)) or "the shop"
        stats.problem = diagnose(stats, hosts, resumed=len(spider.done))
        if spider.config.frontier and not (stats.errors or stats.robots_forbidden):
            stats.problem = ""  # on a shared frontier the other workers may have done it all
    return stats


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason.replace('_', ' ')} x{n}" for reason, n in
                     sorted(counts.items(), key=lambda kv: -kv[1]))


def diagnose(stats: CrawlStats, hosts: str, resumed: int = 0) -> str:
    """One line naming why a crawl stored no product; "" when it stored some, or when it
    resumed a catalogue (``resumed`` products already stored) and found nothing new."""
    if stats.products:
        return ""
    if stats.pages == 0:
        if stats.robots_forbidden:
            return (f"robots.txt of {hosts} forbids this crawler every page it tried "
                    f"({stats.robots_forbidden} refused); crawl it only with the shop's "
                    "permission (--ignore-robots)")
        network = {r: n for r, n in stats.errors.items() if r in NETWORK_REASONS}
        if network:
            return f"unreachable host: {hosts} ({_reasons(network)}); check the URL and network"
        http = {r: n for r, n in stats.errors.items() if r.startswith("http_")}
        if http:
            return f"{hosts} answered no page ({_reasons(http)}); check the start URL"
        if stats.errors:
            return f"no page of {hosts} could be read ({_reasons(stats.errors)})"
        return f"no page of {hosts} was reached; check the start URLs"
    if resumed:
        return ""
    return (f"no product markup on the {stats.pages} pages read: try --site with a site "
            "profile (selectors for this shop)")


def run_status(stats: CrawlStats) -> str:
    """The run's status in the catalogue: finished, interrupted (a signal stopped it),
    failed (nothing stored; ``stats.problem`` says why) or Scrapy's finish reason."""
    reason = stats.finish_reason
    if reason in ("shutdown", ""):  # "": the reactor was stopped mid-crawl, by a signal
        return "interrupted"
    if stats.problem:
        return "failed"
    return reason


class GracefulStop:
    """SIGINT, SIGTERM and SIGHUP stop the crawl gracefully, once: requests in flight
    finish, the spider closes ("shutdown") and the run is recorded with its stats.

    Later signals are ignored rather than taken as Scrapy's "stop uncleanly": a parent's
    death reaches this process once per thread of the parent, and the parent kills this
    process itself when a graceful stop takes too long.
    """

    def __init__(self, process: Any):
        self.process = process
        self.started = False
        self.signum: int | None = None

    def install(self) -> None:
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # SIGHUP: not on Windows
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self.handle)

    def engine_started(self) -> None:
        self.started = True

    def handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        if not self.started:
            # Nothing crawled or stored yet, and no engine to stop: end now (the run row
            # is closed by the parent, or marked interrupted by the next run).
            os._exit(128 + signum)
        from twisted.internet import reactor

        # Not here: a signal handler may interrupt a write to the log, or the reactor.
        reactor.callFromThread(self._stop)

    def _stop(self) -> None:
        from scrapy.utils.defer import deferred_from_coro

        assert self.signum is not None
        logger.info("received %s: stopping gracefully", signal.Signals(self.signum).name)
        deferred_from_coro(self.process.stop())


def run(config: CrawlConfig) -> CrawlStats:
    """Run the crawl in this process (once: Twisted's reactor cannot restart)."""
    from scrapy.crawler import AsyncCrawlerProcess
    from scrapy.utils.asyncio import create_looping_call

    from garment.scrape.spider import ShopSpider

    catalogue = Catalogue.open(config.out)
    record = json.loads(config.to_json())
    if config.frontier:
        from garment.scrape.frontier import safe_url

        record["frontier"] = safe_url(config.frontier)
    # One of many workers on a shared catalogue: the others' runs are running too.
    run_id = catalogue.start_run(record, shared=config.frontier is not None)
    emit("started", run_id=run_id)
    if config.ignore_robots:
        logger.warning("robots.txt is IGNORED for this crawl (--ignore-robots)")
    settings = settings_for(config)
    if config.frontier:
        from garment.scrape import shared

        settings = shared.settings(config, settings)
    process = AsyncCrawlerProcess(settings)
    # Scrapy filters LOG_LEVEL in its handler; the loggers still build every record below
    # it (a "Crawled (200)" line per request): say the level where records are made.
    logging.getLogger().setLevel(settings["LOG_LEVEL"])
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
    stop = GracefulStop(process)
    crawler.signals.connect(stop.engine_started, signal=signals.engine_started)
    stop.install()
    process.crawl(crawler, config=config, catalogue=catalogue, run_id=run_id)
    process.start(install_signal_handlers=False)
    if crawler.stats is None or crawler.spider is None:
        catalogue.finish_run(run_id, {}, "failed")
        raise RuntimeError("the crawl did not run; the log above says why")
    stats = collect_stats(run_id, crawler.spider, crawler.stats.get_stats(),
                          time.monotonic() - started)
    catalogue.finish_run(run_id, stats.as_dict(), run_status(stats))
    catalogue.close()
    return stats


def exit_on_signal() -> None:
    """Until the crawl can stop gracefully (``GracefulStop``), a stop signal ends this
    process at once and quietly: nothing is stored yet."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda signum, frame: os._exit(128 + signum))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m garment.scrape.run CONFIG.json", file=sys.stderr)
        return 2
    exit_on_signal()
    parent = os.environ.get(PARENT_ENV)
    if not die_with_parent(int(parent) if parent else None):
        return 1  # the parent died while this process started: nobody wants the crawl
    config = CrawlConfig.from_json(Path(argv[0]).read_text(encoding="utf-8"))
    stats = run(config)
    stats.crawler_peak_mb = peak_memory_mb()
    emit("progress", pages=stats.pages, products=stats.products, images=stats.images,
         errors=sum(stats.errors.values()))
    emit("done", stats=stats.as_dict())
    return 0


def peak_memory_mb() -> float:
    """This process's peak resident memory since it started, in MB: Linux's VmHWM, which
    starts afresh at exec (ru_maxrss would carry the forking parent's peak over)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
