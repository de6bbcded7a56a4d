"""Scrape: crawl an online shop into a catalogue folder (``catalogue.sqlite`` + ``images/``).

``crawl(config)`` runs Scrapy in a child process (``python -m garment.scrape.run``), so a
caller can crawl any number of times in one process and a killed crawl never takes its
caller down. The child streams progress as JSON lines on stdout and writes each product
with its packshot to the catalogue in one transaction, so a kill loses only the items in
flight and ``resume=True`` carries on without refetching what is stored.

Modules: ``extract`` (HTML -> product, pure), ``schemaorg`` (JSON-LD/microdata/RDFa
nodes), ``profile`` (TOML site profiles), ``images`` (packshot checks, pure), ``spider``
(discovery and extraction), ``polite`` (robots, delays, retries), ``pipelines``
(packshot download, store), ``run`` (the child process).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
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


@dataclass
class CrawlConfig:
    """How to crawl. Defaults are polite; flags of ``garment scrape`` override them."""

    start_urls: list[str] = field(default_factory=list)  # home page, listing or sitemap
    out: Path = Path("catalogue")           # catalogue folder
    max_products: int | None = None         # stop after storing this many products
    max_pages: int | None = None            # stop after requesting this many pages
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
        if self.delay < 0 or self.timeout <= 0:
            raise GarmentError(f"delay {self.delay} / timeout {self.timeout}: the delay must "
                               "be >= 0 and the timeout > 0 seconds")
        if not 1 <= self.min_image_px <= self.max_image_px:
            raise GarmentError(f"min_image_px {self.min_image_px}: allowed 1 to max_image_px "
                               f"({self.max_image_px})")
        if not 1 <= self.concurrency <= 64:
            raise GarmentError(f"concurrency {self.concurrency}: allowed 1 to 64 per host")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise GarmentError(f"log level {self.log_level!r}: allowed DEBUG, INFO, "
                               "WARNING, ERROR")

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
        d["out"] = Path(d.get("out", "catalogue"))
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
    elapsed_s: float = 0.0
    finish_reason: str = ""

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
    config.validate()
    if config.site is not None:
        from garment.scrape.profile import load_profile

        profile = load_profile(config.site)  # fail early on a bad profile
        if not config.start_urls and profile.start_urls:
            config.start_urls = list(profile.start_urls)
    from garment.store import Catalogue

    with Catalogue.open(config.out):
        pass  # creates or migrates it here, where errors reach the caller
    path = Path(config.out) / CONFIG_NAME
    path.write_text(config.to_json(), encoding="utf-8")
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


def crawl(config: CrawlConfig, progress: Progress | None = None) -> CrawlStats:
    """Crawl ``config.start_urls`` into ``config.out``; returns the run's statistics.

    Raises GarmentError when the crawl cannot start or its process fails; per-URL
    failures are not errors: they are stored in the catalogue and counted in the stats.
    """
    config_path = prepare(config)
    if config.ignore_robots:
        logger.warning("robots.txt is IGNORED for this crawl (--ignore-robots): only crawl "
                       "a shop that has allowed it")
    log_path = Path(config.out) / LOG_NAME
    stats: dict[str, Any] | None = None
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command(config_path), stdout=subprocess.PIPE, stderr=log,
                                env=child_env(), text=True, bufsize=1)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:  # ends when the child exits
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "progress" and progress is not None:
                    progress(event)
                elif event.get("event") == "done":
                    stats = event["stats"]
            rc = proc.wait()
        except BaseException:
            # Ctrl-C or a failing callback: stop the child the way Scrapy stops cleanly.
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
    if rc != 0 or stats is None:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        last = tail[-1] if tail else "no output"
        raise GarmentError(f"crawl of {', '.join(config.start_urls)} failed (exit {rc}): "
                           f"{last[:300]}; the full log is {log_path}")
    return CrawlStats.from_dict(stats)
