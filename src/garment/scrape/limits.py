"""Scrape, crawl limits: page scope, the page budget and trap detection, decided before a
request exists.

A hostile or merely endless site (a calendar linking each day to the next, a listing whose
``?page=N`` always has a next page, paths that mint a new session id on every visit, a page
with 100,000 links) must neither keep a crawl going forever nor fill the scheduler's
memory. The spider asks ``LinkFilter.admit`` about every fresh on-site link and yields a
request only for what it admits, so what will never be crawled costs no ``Request``, no
scheduler slot and no downloader pass. Every refusal is counted by rule and by the site
section (first path segment) the link is under, for the crawl summary ("trap: 12,000 URLs
skipped under /events").

The rules, each off at 0 (the defaults are in ``CrawlConfig``):

- ``page_budget``: at most ``max_pages`` page requests in the whole crawl.
- ``links_per_page``: at most ``max_links_per_page`` links read from one page (counted
  under the page's section).
- ``depth``: at most ``max_depth`` hops from a start URL.
- ``barren``: at most ``max_barren_hops`` hops through pages without a product since the
  last product page. Following a listing's pager costs no hop while the listing offers
  fresh links other than its pager, so a real category of any length is walked while an
  endless pager of empty pages, or a calendar, is cut.
- ``repeated_segments``: a path segment at most ``max_segment_repeats`` times
  (``/a/b/a/b/a/b/...``, relative links resolved against themselves).
- ``minted_ids``: at most ``max_id_variants`` distinct minted ids (long random tokens,
  UUIDs, ``;jsessionid=``) at one place of a path (``/s/<id>/...``): a shop that mints a
  session id per visit makes every link new, while a crawl needs one session only.
- ``query_variants``: at most ``max_query_variants`` query strings per path (filters and
  sort orders combine without end).
- ``url_too_long``: a URL over Scrapy's ``URLLENGTH_LIMIT``, which Scrapy drops silently.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Why a link was not followed, in the order the rules are checked.
REASONS = {
    "url_too_long": "longer than the URL length limit",
    "page_budget": "the page budget was spent",
    "links_per_page": "beyond the links read from one page",
    "depth": "too many hops from a start URL",
    "barren": "too many hops from any product page",
    "repeated_segments": "a path segment repeated (/a/b/a/b/...)",
    "minted_ids": "a path seen under too many minted ids",
    "query_variants": "too many query strings for one path",
}
#: Rules that mark a trap (the others are budgets).
TRAPS = ("barren", "repeated_segments", "minted_ids", "query_variants", "depth")

DEFAULT_PORTS = {"http": 80, "https": 443}
#: Path tokens that are minted ids: long letter+digit runs, UUIDs. A slug
#: ("red-dress-2024") has separators and is not one.
_ID = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9]{16,}$|"
                 r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                 r"[0-9a-fA-F]{12}$")
#: Skipped URLs remembered so that one linked from many pages is counted once; past this
#: many the counts may include repeats, but memory stays bounded.
MAX_REMEMBERED = 200_000

Origin = tuple[str, str, int]


def page_origin(url: str) -> Origin | None:
    """(scheme, host without ``www.``, port) of an http(s) URL; None for anything else.

    The unit of page scope: a page on another port of the shop's host is another site.
    (``store.site_of``, the unit of product identity, ignores the port on purpose.)
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:  # a port that is not a number or out of range
        return None
    return scheme, host[4:] if host.startswith("www.") else host, port


def scope_origins(start_urls: Iterable[str]) -> frozenset[Origin]:
    """The origins pages may be fetched from: the start URLs' own, plus the https upgrade
    of an http start URL on its default port (shops redirect http to https)."""
    out: set[Origin] = set()
    for url in start_urls:
        origin = page_origin(url)
        if origin is None:
            continue
        out.add(origin)
        if origin[0] == "http" and origin[2] == 80:
            out.add(("https", origin[1], 443))
    return frozenset(out)


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _blank(segment: str) -> str:
    """A segment with its minted id replaced by ``*`` (``p;jsessionid=X`` -> ``p;*``)."""
    if ";" in segment:
        return segment.split(";", 1)[0] + ";*"
    return "*" if _ID.match(segment) else segment


def section_of(url: str) -> str:
    """The site section a URL is under, for the summary: its first path segment."""
    segments = _segments(urlsplit(url).path)
    if not segments:
        return "/"
    first = segments[0]
    return "/*" if _ID.match(first) else "/" + first.split(";")[0][:40]


@dataclass
class Limits:
    """The numbers ``LinkFilter`` enforces (defaults and meaning: ``CrawlConfig``); 0, or
    None for the budget, turns a rule off."""

    max_pages: int | None
    max_depth: int
    max_barren_hops: int
    max_query_variants: int
    max_id_variants: int
    max_segment_repeats: int
    max_links_per_page: int
    max_url_length: int = 2083              # Scrapy's URLLENGTH_LIMIT

    @classmethod
    def from_config(cls, config: Any, max_url_length: int = 2083) -> Limits:
        """The limits of a ``CrawlConfig`` (and Scrapy's ``URLLENGTH_LIMIT``)."""
        names = [n for n in cls.__dataclass_fields__ if n != "max_url_length"]
        return cls(**{n: getattr(config, n) for n in names}, max_url_length=max_url_length)


class LinkFilter:
    """Decides which fresh links become page requests, and counts the ones that do not.

    Memory is bounded by what it admits (one counter per admitted path or template) plus
    ``MAX_REMEMBERED`` skipped URLs.
    """

    def __init__(self, limits: Limits):
        self.limits = limits
        self.admitted = 0                       # page requests made so far
        self.query_variants: Counter[str] = Counter()   # path -> admitted query strings
        # blanked path up to a minted id -> the ids admitted there (at most the cap)
        self.id_variants: defaultdict[str, set[str]] = defaultdict(set)
        self.skipped: dict[str, Counter[str]] = {}      # reason -> section -> URLs
        self._remembered: set[int] = set()

    @property
    def budget_spent(self) -> bool:
        budget = self.limits.max_pages
        return budget is not None and self.admitted >= budget

    def admit_start(self, url: str) -> bool:
        """A start URL or a sitemap's entry: only the budget and the length apply."""
        reason = self._hard_limit(url)
        if reason is not None:
            self.skip(url, reason)
            return False
        self.admitted += 1
        return True

    def admit(self, url: str, depth: int, barren: int) -> bool:
        """Admit a link found on a page, ``depth`` hops from a start URL and ``barren``
        hops from the last product page; False (and counted) when a rule refuses it."""
        reason = self._hard_limit(url) or self._trap(url, depth, barren)
        if reason is not None:
            self.skip(url, reason)
            return False
        self.admitted += 1
        return True

    def skip(self, url: str, reason: str) -> None:
        """Count ``url`` as not followed for ``reason`` (once per URL, within bounds)."""
        key = hash(url)
        if key in self._remembered:
            return
        if len(self._remembered) < MAX_REMEMBERED:
            self._remembered.add(key)
        self.skipped.setdefault(reason, Counter())[section_of(url)] += 1

    def skip_links(self, page_url: str, n: int) -> None:
        """Count ``n`` links of ``page_url`` not read (past ``max_links_per_page``), under
        the page's own section: they are never resolved, so cost nothing."""
        self.skipped.setdefault("links_per_page", Counter())[section_of(page_url)] += n

    def summary(self) -> dict[str, dict[str, int]]:
        """Skipped URLs by reason, then by section (largest first): plain JSON data."""
        return {reason: dict(sections.most_common())
                for reason, sections in self.skipped.items()}

    # -- rules --------------------------------------------------------------------------
    def _hard_limit(self, url: str) -> str | None:
        if self.limits.max_url_length and len(url) > self.limits.max_url_length:
            return "url_too_long"
        if self.budget_spent:
            return "page_budget"
        return None

    def _new_ids(self, path: str) -> dict[str, str]:
        """The minted ids of a path not yet seen at their place: blanked prefix -> id.

        An id counts when more path follows it (``/s/<id>/...``, ``/s/<id>/``) or when
        it is a ``;param=``: a product's own id is the last segment and never one.
        """
        if not self.limits.max_id_variants:
            return {}
        out: dict[str, str] = {}
        blanked: list[str] = []
        segments = path.split("/")[1:]      # a trailing slash leaves "" as the last one
        for n, segment in enumerate(segments):
            token = _blank(segment) if segment else segment
            if token != segment and (";" in segment or n < len(segments) - 1):
                prefix = "/".join([*blanked, token])
                if segment not in self.id_variants[prefix]:
                    out[prefix] = segment
            blanked.append(token)
        return out

    def _trap(self, url: str, depth: int, barren: int) -> str | None:
        lim = self.limits
        if lim.max_depth and depth > lim.max_depth:
            return "depth"
        if lim.max_barren_hops and barren > lim.max_barren_hops:
            return "barren"
        parts = urlsplit(url)
        segments = _segments(parts.path)
        if lim.max_segment_repeats and segments and \
                Counter(segments).most_common(1)[0][1] > lim.max_segment_repeats:
            return "repeated_segments"
        minted = self._new_ids(parts.path)
        if minted and any(len(self.id_variants[p]) >= lim.max_id_variants for p in minted):
            return "minted_ids"
        if lim.max_query_variants and parts.query:
            if self.query_variants[parts.path] >= lim.max_query_variants:
                return "query_variants"
            self.query_variants[parts.path] += 1
        for prefix, token in minted.items():
            self.id_variants[prefix].add(token)
        return None
