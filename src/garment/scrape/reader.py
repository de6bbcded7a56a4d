"""Scrape, reading a page: its HTML -> the product, its candidate packshots and its links.

Reading is pure work on a page's text (parse, markup layers, the generic reader, picture
ranking, links): most of a crawl's processor time, and nothing in it needs the crawl's
state. ``PageReader`` runs it in worker processes, so the crawler's own process only
schedules, downloads and stores while another core reads pages; where workers cannot be
started (or one dies) pages are read in the crawler's process, the same way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import re
import resource
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from garment.scrape.extract import (
    JUNK_IMAGE,
    extract_product,
    page_links,
    pagination_urls,
    parse_html,
)
from garment.scrape.images import Picture, img_hints, picture_key, rank_pictures
from garment.scrape.profile import SiteProfile
from garment.scrape.render import needs_render

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Query parameters that only track the visitor.
TRACKING = re.compile(r"^(utm_\w+|gclid|fbclid|mc_\w+|ref|_ga)$", re.I)

#: prctl(2) option: the signal a worker gets when its parent dies.
PR_SET_PDEATHSIG = 1


@functools.lru_cache(maxsize=1 << 16)
def clean_url(url: str) -> str:
    """Drop the fragment and tracking parameters, so one page has one URL."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not TRACKING.match(k)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


def page_pictures(product: dict[str, Any], tree: Any, page: str, url: str,
                  max_px: int, extra: list[dict[str, Any]] | None = None) -> list[Picture]:
    """A product's candidate packshots ranked by markup evidence: extraction's
    ``image_candidates`` when it gives them (else ``image_urls``, in order), the page's
    og:image, the page's other renditions of each picture, how its <img> shows each."""
    source = (product.get("sources") or {}).get("image_urls", "markup")
    og = [urljoin(url, v.strip()) for v in tree.xpath(
        "//meta[@property='og:image' or @property='og:image:url' or "
        "@property='og:image:secure_url' or @name='og:image']/@content")]
    og = [u for u in og if u.startswith("http") and not JUNK_IMAGE.search(u)]
    candidates = [c for c in product.get("image_candidates") or []
                  if isinstance(c, dict) and str(c.get("url") or "").startswith("http")
                  and not JUNK_IMAGE.search(str(c["url"])) and c.get("source") != "og"]
    if not candidates:
        candidates = [{"url": u, "source": source} for u in product.get("image_urls") or []]
    # The page's og:image, resolved as a browser would (a host name without a scheme is
    # a relative path: such an og:image fails, and the next picture is tried).
    candidates += [{"url": u, "source": "og"} for u in og] + list(extra or [])
    hints = img_hints(tree, url, product.get("name"), {picture_key(c["url"]) for c in candidates})
    return rank_pictures(candidates, og, page, url, max_px, hints)


@dataclass(frozen=True)
class ReadOptions:
    """What reading a page needs of the crawl's configuration."""

    profile: SiteProfile | None = None
    deny: tuple[re.Pattern[str], ...] = ()
    render: str = "never"               # the crawl's --render (auto: decide per page)
    max_links: int = 1000               # links read per page (the rest counted, not read)
    max_image_px: int = 4000


@dataclass
class Reading:
    """A page, read: what the spider needs to yield its product and its requests."""

    product: dict[str, Any] | None = None   # Product.as_dict(), canonical URL cleaned
    noai: bool = False
    render: str | None = None               # why the page must be rendered in a browser
    pictures: list[Picture] = field(default_factory=list)
    links: list[str] = field(default_factory=list)   # cleaned, in page order, unique
    pager: set[str] = field(default_factory=set)     # the pagination links among them
    over_cap: int = 0                       # links past ``max_links``, not read


def read_page(text: str, url: str, options: ReadOptions, rendered: bool = False,
              extra_pictures: list[dict[str, Any]] | None = None) -> Reading:
    """Read one fetched page (``rendered``: it came from the browser already)."""
    tree = parse_html(text)
    product = extract_product(text, url, options.profile, tree=tree)
    if options.render == "auto" and not rendered and (
            why := needs_render(tree, product is not None, options.render)):
        return Reading(render=why)
    reading = Reading()
    if product is not None:
        product.canonical_url = clean_url(product.canonical_url)
        reading.product = product.as_dict()
        reading.noai = product.noai
        reading.pictures = page_pictures(reading.product, tree, text, url,
                                         options.max_image_px, extra_pictures)
    cap = options.max_links
    anchors = tree.xpath("//a[@href]|//area[@href]") if cap else []
    if len(anchors) > cap:
        # Links past the cap are dropped from the tree before they are resolved: a page
        # with 100,000 links costs a parse, not 100,000 URLs.
        for el in anchors[cap:]:
            del el.attrib["href"]
        reading.over_cap = len(anchors) - cap
    if product is None:  # a listing, perhaps: its pager links go first
        reading.pager = {clean_url(u) for u in pagination_urls(
            tree, url, options.profile.pagination if options.profile else None)}
    links = page_links(tree, url, list(options.deny))
    reading.links = list(dict.fromkeys(clean_url(u) for u in links))
    return reading


# -- worker processes -----------------------------------------------------------------

_options: ReadOptions | None = None  # a worker's, set once when it starts


def _start_worker(options: ReadOptions) -> None:
    global _options
    _options = options
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the crawler's to handle
    if sys.platform.startswith("linux"):  # gone with the process that started it
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _usage() -> tuple[int, float, float]:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return os.getpid(), use.ru_utime + use.ru_stime, use.ru_maxrss / 1024


def _read_in_worker(text: str, url: str, rendered: bool,
                    extra: list[dict[str, Any]] | None) -> Reading:
    """``read_page`` with the options the worker was started with."""
    assert _options is not None
    return read_page(text, url, _options, rendered, extra)


def _call_in_worker(fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[T, tuple[int, float, float]]:
    return fn(*args), _usage()


def default_workers() -> int:
    """Reading processes for one crawler: the cores beside the crawler's own, up to 3
    (a crawler process feeds about that many)."""
    return max(1, min(3, (os.cpu_count() or 2) - 1))


class PageReader:
    """Reads pages, and checks and scores downloaded packshots, in ``workers`` processes
    (0: in this process)."""

    def __init__(self, options: ReadOptions, workers: int | None = None):
        self.options = options
        self.workers = default_workers() if workers is None else workers
        self.pool: ProcessPoolExecutor | None = None
        self.usage: dict[int, tuple[float, float]] = {}  # worker pid -> (CPU s, peak MB)
        if self.workers > 0:
            try:
                # A fresh process per worker, not a fork of this one (it runs threads).
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["garment.scrape.reader", "garment.convert"])
                self.pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                                initializer=_start_worker,
                                                initargs=(options,))
            except (OSError, ValueError) as exc:
                logger.warning("pages are read in the crawler's process: %s", exc)
                self.workers = 0

    async def read(self, text: str, url: str, rendered: bool = False,
                   extra: list[dict[str, Any]] | None = None) -> Reading:
        """The page read by a worker (or here, without one)."""
        done, reading = await self._in_worker(_read_in_worker, (text, url, rendered, extra))
        return reading if done else read_page(text, url, self.options, rendered, extra)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process (a module-level function and picklable
        arguments), or in a thread of this process without one."""
        done, result = await self._in_worker(fn, args)
        if done:
            return result  # type: ignore[no-any-return]
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))

    async def _in_worker(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """(True, ``fn(*args)``) from a worker, noting its cost; (False, None) when there is
        no worker (any more: a lost one ends them all, said once)."""
        if self.pool is None:
            return False, None
        try:
            future = self.pool.submit(_call_in_worker, fn, args)
            result, (pid, cpu, peak) = await asyncio.wrap_future(future)
        except (BrokenProcessPool, RuntimeError) as exc:
            if self.pool is not None:  # the first to notice says so
                logger.warning("page reader process lost (%s): working in the crawler's "
                               "process from now on", exc)
                self.close()
            return False, None
        self.usage[pid] = (cpu, peak)
        return True, result

    def cost(self) -> tuple[float, float]:
        """(processor seconds, the largest peak memory in MB) of the worker processes."""
        return (sum(cpu for cpu, _ in self.usage.values()),
                max((peak for _, peak in self.usage.values()), default=0.0))

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
