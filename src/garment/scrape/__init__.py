"""Scrape: crawl an online shop into a catalogue folder (``catalogue.sqlite`` + ``images/``).

``crawl(config)`` runs Scrapy in a child process (``python -m garment.scrape.run``), so a
caller can crawl any number of times in one process and a killed crawl never takes its
caller down. The child streams progress as JSON lines on stdout and writes each product
with its packshot to the catalogue in one transaction, so a kill loses only the items in
flight and ``resume=True`` carries on without refetching what is stored. The child
dies with its caller (Linux's parent-death signal, even after a SIGKILL); Ctrl-C or
SIGTERM stops it gracefully, once, and the run is recorded as "interrupted" with its
stats. A crawl that stores nothing says why in ``CrawlStats.problem``.

Modules: ``extract`` (HTML -> product, pure), ``schemaorg`` (JSON-LD/microdata/RDFa
nodes), ``profile`` (TOML site profiles), ``images`` (packshot checks, pure), ``spider``
(discovery and extraction), ``render`` (which pages need Chromium), ``feeds`` (image
sitemaps, Shopify, Merchant feeds), ``polite`` (robots, delays, retries), ``pipelines``
(packshot choice and download, store), ``run`` (the child process); with a shared Redis
frontier (``frontier``, ``shared``, ``reqjson``) many such processes crawl together.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from garment import PROJECT_URL, __version__
from garment.errors import GarmentError

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"garment/{__version__} (+{PROJECT_URL})"
CONFIG_NAME = "crawl-config.json"
LOG_NAME = "crawl.log"
#: Environment variable naming the parent's process id, so that a child whose parent died
#: before it could ask to die with it (``prctl``) notices and exits.
PARENT_ENV = "GARMENT_CRAWL_PARENT"
#: ``CrawlConfig.render`` values.
RENDER_MODES = ("auto", "never", "always")


@dataclass
class CrawlConfig:
    """How to crawl. Defaults are polite; flags of ``garment scrape`` override them."""

    start_urls: list[str] = field(default_factory=list)  # home page, listing or sitemap
    out: Path | str = Path("catalogue")     # catalogue folder, or a postgresql:// URL
    #                                         carrying its files folder (store.target)
    max_products: int | None = None         # stop after storing this many products
    max_pages: int | None = 50_000          # stop after requesting this many pages (None:
    #                                         no budget); a large shop fits, a trap does not
    # Trap detection (scrape/limits.py): links past these are not followed, and counted.
    # 0 turns a rule off.
    max_depth: int = 100                    # hops from a start URL
    max_barren_hops: int = 10               # hops through pages without a product since
    #                                         the last product page (a listing's pager is free
    #                                         while the listing offers fresh links)
    max_query_variants: int = 500           # query strings per path (filters, sort orders)
    max_id_variants: int = 3                # distinct minted ids (session tokens) at one
    #                                         place of a path: /s/<id>/..., ;jsessionid=
    max_segment_repeats: int = 3            # times one segment may appear in a path
    max_links_per_page: int = 1_000         # links read from one page (in page order)
    delay: float = 1.0                      # seconds between requests to one host (floor;
    #                                         robots.txt Crawl-delay raises it)
    concurrency: int = 2                    # simultaneous requests per host
    user_agent: str = DEFAULT_USER_AGENT    # identifies garment and where to read about it
    site: Path | None = None                # site profile (.toml) for selectors/rewrites
    ignore_robots: bool = False             # obey robots.txt unless told otherwise
    resume: bool = False                    # skip products already stored with a packshot
    timeout: float = 30.0                   # seconds per request
    retries: int = 2                        # extra attempts on 5xx, 429, timeouts
    retry_backoff: float = 1.0              # seconds; doubles each retry (no Retry-After)
    max_retry_after: float = 120.0          # seconds; a longer Retry-After gives up
    min_image_px: int = 28                  # packshot's shorter side at least this (the
    #                                         network reads 28x28; larger ones preferred)
    max_image_px: int = 10_000              # and its longer side at most this
    min_image_bytes: int = 100              # smaller files are pixels or placeholders (a
    #                                         60x80 WebP thumbnail is 300 bytes)
    max_image_bytes: int = 20 * 2**20       # larger downloads are cancelled
    max_page_bytes: int = 10 * 2**20        # larger pages are cancelled
    log_level: str = "INFO"                 # Scrapy's log, written to DIR/crawl.log
    render: str = "auto"                    # JavaScript: "auto" renders in Chromium only
    #                                         pages without product links or markup that
    #                                         look script-built; "never"; "always"
    feeds: list[str] = field(default_factory=list)  # product feeds (Google Merchant XML
    #                                         or TSV) read for products and their images
    readers: int | None = None              # processes that read pages (parse, extract,
    #                                         rank pictures) beside the crawler's own: None
    #                                         one per other core, up to 3; 0 reads in it
    frontier: str | None = None             # redis://HOST:PORT/DB: a shared frontier that
    #                                         any number of crawler processes work on together

    def validate(self) -> None:
        """Raise GarmentError naming the bad value and what is allowed."""
        if not self.start_urls:
            raise GarmentError("no start URL: give a shop's home page, a listing or a sitemap")
        for url in self.start_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise GarmentError(f"start URL {url!r} is not an http(s) URL: "
                                   "give one like https://shop.example/")
        for name in ("max_products", "max_pages"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise GarmentError(f"{name} is {value}: give a positive number or none")
        for name in ("max_depth", "max_barren_hops", "max_query_variants", "max_id_variants",
                     "max_segment_repeats", "max_links_per_page"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise GarmentError(f"{name} is {value!r}: give a whole number >= 0 "
                                   "(0 turns the limit off)")
        if self.delay < 0 or self.timeout <= 0:
            raise GarmentError(f"delay {self.delay} / timeout {self.timeout}: the delay must "
                               "be >= 0 and the timeout > 0 seconds")
        if not 1 <= self.min_image_px <= self.max_image_px:
            raise GarmentError(f"min_image_px {self.min_image_px}: allowed 1 to max_image_px "
                               f"({self.max_image_px})")
        if not 1 <= self.concurrency <= 64:
            raise GarmentError(f"concurrency {self.concurrency}: allowed 1 to 64 per host")
        if self.render not in RENDER_MODES:
            raise GarmentError(f"render {self.render!r}: allowed {', '.join(RENDER_MODES)}")
        for url in self.feeds:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise GarmentError(f"feed URL {url!r} is not an http(s) URL: give one like "
                                   "https://shop.example/feed.xml")
        if self.frontier is not None:
            from garment.scrape.frontier import check_url

            check_url(self.frontier)
        if self.readers is not None and not 0 <= self.readers <= 64:
            raise GarmentError(f"readers {self.readers}: allowed 0 (read pages in the crawler's "
                               "process) to 64")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise GarmentError(f"log level {self.log_level!r}: allowed DEBUG, INFO, "
                               "WARNING, ERROR")

    @property
    def files(self) -> Path:
        """Where the crawl's files go (images, its config and log): the catalogue folder, or
        a PostgreSQL catalogue's files folder (``--images``)."""
        from garment.store import is_url

        if not is_url(str(self.out)):
            return Path(self.out)
        from garment.store.postgres import redact, split_images

        folder = split_images(str(self.out))[1]
        if folder is None:
            raise GarmentError(f"--out {redact(str(self.out))}: pass --images DIR too, the folder for the "
                               "catalogue's images that every crawler process can reach")
        return folder

    def to_json(self) -> str:
        d = asdict(self)
        d["out"] = str(self.out)
        d["site"] = None if self.site is None else str(self.site)
        return json.dumps(d, indent=2)

    @classmethod
    def from_json(cls, text: str) -> CrawlConfig:
        d = json.loads(text)
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        out = d.get("out", "catalogue")
        d["out"] = out if out.startswith(("postgresql://", "postgres://")) else Path(out)
        d["site"] = None if d.get("site") is None else Path(d["site"])
        return cls(**d)


@dataclass
class CrawlStats:
    """What a crawl did; also stored as JSON in the run's ``crawl_runs`` row."""

    run_id: int = 0
    pages: int = 0                          # page responses parsed
    products: int = 0                       # products stored (new or updated)
    images: dict[str, int] = field(default_factory=dict)  # packshots by status
    robots_forbidden: int = 0               # requests robots.txt forbade
    retries: int = 0
    status_429: int = 0                     # 429 responses seen (before retries)
    status_503: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # per-URL errors by reason
    requests: int = 0                       # every request sent, robots.txt included
    rendered: int = 0                       # pages rendered in Chromium (--render)
    # Links not followed, by reason (scrape/limits.py REASONS) then site section:
    # {"barren": {"/events": 12000}, "page_budget": {"/p": 40}}
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    elapsed_s: float = 0.0
    finish_reason: str = ""
    problem: str = ""                       # why nothing was stored (one line), else ""
    crawler_peak_mb: float = 0.0            # the crawler process's peak memory (RSS, VmHWM), MB
    readers: int = 0                        # processes that read its pages beside it
    reader_cpu_s: float = 0.0               # their processor time, seconds
    reader_peak_mb: float = 0.0             # the largest one's peak memory, MB

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CrawlStats:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Progress callback: receives the child's counters (pages, products, images, errors).
Progress = Callable[[dict[str, Any]], None]


def prepare(config: CrawlConfig) -> Path:
    """Validate ``config``, create the catalogue and write the resolved config next to it;
    returns the config file the child process reads."""
    if config.site is not None:  # first: the profile may give the start URLs
        from garment.scrape.profile import load_profile

        profile = load_profile(config.site)  # fail early on a bad profile
        if not config.start_urls and profile.start_urls:
            config.start_urls = list(profile.start_urls)
    config.validate()
    from garment.scrape.render import check_render

    check_render(config.render)  # --render always without a browser: one clear line
    if config.frontier is not None:
        from garment.scrape.frontier import check_frontier

        check_frontier(config.frontier)  # reachable, scrapy-redis installed, not finished
    from garment.store import Catalogue

    files = config.files  # a PostgreSQL catalogue without its files folder: the error first
    with Catalogue.open(config.out):
        pass  # creates or migrates it here, where errors reach the caller
    # Workers of one shared crawl may share the files folder: each has its own file. Only
    # its owner may read it: a catalogue's or frontier's URL may carry a password.
    path = files / (CONFIG_NAME if config.frontier is None
                    else f"crawl-config-{socket.gethostname()}-{os.getpid()}.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_TRUNC
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(config.to_json())
    return path


def command(config_path: Path) -> list[str]:
    """The child process's command line."""
    return [sys.executable, "-m", "garment.scrape.run", str(config_path)]


def child_env() -> dict[str, str]:
    """The environment for the child: this process's, with garment importable."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


class CrawlInterrupted(GarmentError):
    """The crawl was stopped by a signal (Ctrl-C, SIGTERM) before it finished.

    ``stats`` says what it did until then (the run is recorded as "interrupted");
    ``exit_code`` is the shell's convention for the signal (130 for Ctrl-C).
    """

    def __init__(self, stats: CrawlStats, signum: int):
        super().__init__(f"interrupted after {stats.products} products; rerun with --resume")
        self.stats = stats
        self.signum = signum
        self.exit_code = 128 + signum


class _Terminated(BaseException):
    """SIGTERM received by the crawling process (raised in its main thread)."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into ``_Terminated`` while the crawl runs, so the child is stopped the
    way Ctrl-C stops it (Python's default for SIGTERM ends this process at once and would
    leave the child crawling). Only the main thread may set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: Any) -> None:
        raise _Terminated(signum)

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Child:
    """The crawler process seen from the parent: its JSON lines, read by a thread so the
    main thread can wait with a deadline and still receive signals."""

    def __init__(self, proc: subprocess.Popen[str], progress: Progress | None):
        self.proc = proc
        self.progress = progress
        self.run_id: int | None = None
        self.last: dict[str, Any] = {}          # the latest progress counters
        self.stats: dict[str, Any] | None = None  # the "done" event's stats
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name="crawl-output", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # the child closed its output: it has ended

    def follow(self, deadline: float | None = None) -> bool:
        """Handle the child's events until its output ends (True) or ``deadline`` passes."""
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                return False
            if line is None:
                return True
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            if kind == "started":
                self.run_id = event.get("run_id")
            elif kind == "progress":
                self.last = event
                if self.progress is not None:
                    self.progress(event)
            elif kind == "done":
                self.stats = event["stats"]

    def stop(self, grace: float) -> None:
        """Ask the child to stop with one SIGTERM (the crawl then stops gracefully: requests
        in flight finish, the run is recorded; a child still starting ends quietly, where a
        SIGINT would print Python's traceback); kill it after ``grace`` seconds or on a
        second interrupt here. Never a second signal: it would not hasten a graceful stop."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        try:
            if not self.follow(time.monotonic() + grace):
                logger.warning("the crawler did not stop within %.0f s: killing it", grace)
                self.proc.kill()
        except (KeyboardInterrupt, _Terminated):
            self.proc.kill()  # asked twice: stop now
        finally:
            self.proc.wait()

    def partial_stats(self) -> CrawlStats:
        """What the child reported last, for a child that ended without its "done" line."""
        last = self.last
        return CrawlStats(run_id=self.run_id or 0, pages=int(last.get("pages", 0)),
                          products=int(last.get("products", 0)),
                          images=dict(last.get("images") or {}),
                          errors=dict(last.get("error_reasons") or {}),
                          finish_reason="killed")


def crawl(config: CrawlConfig, progress: Progress | None = None) -> CrawlStats:
    """Crawl ``config.start_urls`` into ``config.out``; returns the run's statistics.

    ``stats.problem`` is set (one line naming the cause) when the crawl stored no product:
    the host was unreachable, robots.txt forbade everything, or no page had product markup.
    Raises CrawlInterrupted on Ctrl-C or SIGTERM (after stopping the child gracefully and
    recording the run as "interrupted"), GarmentError when the crawl cannot start or its
    process fails; per-URL failures are not errors: they are stored and counted.

    The child runs in its own process group, so a terminal's Ctrl-C reaches this process
    only and the child gets exactly one stop signal from it; the child asks Linux to send
    it SIGTERM when this process dies, even by SIGKILL (``prctl(PR_SET_PDEATHSIG)``, tied
    to the thread that started it: call ``crawl`` from a thread that outlives it).
    """
    config_path = prepare(config)
    if config.ignore_robots:
        logger.warning("robots.txt is IGNORED for this crawl (--ignore-robots): only crawl "
                       "a shop that has allowed it")
    log_path = config.files / LOG_NAME
    env = child_env()
    env[PARENT_ENV] = str(os.getpid())
    # A graceful stop waits for the requests in flight: a timeout at most, and then some.
    grace = config.timeout + 15.0
    with open(log_path, "ab") as log, _sigterm_raises():
        proc = subprocess.Popen(command(config_path), stdout=subprocess.PIPE, stderr=log,
                                env=env, text=True, bufsize=1, process_group=0)
        child = _Child(proc, progress)
        try:
            child.follow()
            rc = proc.wait()
        except BaseException as exc:
            interrupted = isinstance(exc, (KeyboardInterrupt, _Terminated))
            signum = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
            child.stop(grace)
            if not interrupted:
                raise  # a failing progress callback: the child is stopped, the error stays
            raise CrawlInterrupted(_interrupted_stats(config, child), signum) from None
    if child.stats is not None and child.stats.get("finish_reason") in ("shutdown", ""):
        # Stopped by a signal sent to the child itself (kill PID): an interruption too.
        raise CrawlInterrupted(CrawlStats.from_dict(child.stats), signal.SIGTERM)
    if rc != 0 or child.stats is None:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        last = tail[-1] if tail else "no output"
        raise GarmentError(f"crawl of {', '.join(config.start_urls)} failed (exit {rc}): "
                           f"{last[:300]}; the full log is {log_path}")
    return CrawlStats.from_dict(child.stats)


def _interrupted_stats(config: CrawlConfig, child: _Child) -> CrawlStats:
    """The stats of an interrupted crawl: the child's own when it stopped cleanly, else its
    last progress, recorded here for it (the run would stay "running" otherwise)."""
    if child.stats is not None:
        return CrawlStats.from_dict(child.stats)
    stats = child.partial_stats()
    if child.run_id is not None:
        from garment.store import Catalogue

        with Catalogue.open(config.out) as cat:
            cat.finish_run(child.run_id, stats.as_dict(), "interrupted")
    return stats
