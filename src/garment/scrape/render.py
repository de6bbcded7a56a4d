"""Scrape, rendering: which pages need a browser, and Debian's Chromium to render them.

``--render auto`` (the default) pays for a browser only where a page must have one: a
page is fetched as HTML first and rendered only when it has no product markup, hardly any
links in its content, and looks built by scripts (an empty application root, a
<noscript> asking for JavaScript, or almost no text beside its scripts). ``always``
renders every page, ``never`` none. Rendering goes through scrapy-playwright's download
handler, so the page request itself passes every downloader middleware (address guard,
robots.txt, scope, retries); the browser's own requests are filtered by
``BrowserRequestFilter`` (only the documents, scripts and data a page builds itself from,
never images, fonts or media; never a non-public address other than the shop's).
Playwright's driver and Chromium start on the first page rendered, not with the crawl.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from garment.errors import GarmentError

logger = logging.getLogger(__name__)

#: Debian's Chromium (``make browser`` installs it); Playwright's own downloads are not used.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
#: Ids of the element a script-built page mounts its application on.
APP_ROOT = re.compile(r"^(root|app|__next|__nuxt|___gatsby|svelte|main-app|app-root|"
                      r"react-root|vue-app|application|spa-root)$", re.I)
#: A page with fewer content links (outside header, nav, footer) is no listing.
MIN_CONTENT_LINKS = 3
#: Visible text (characters) below which a page with scripts is a shell.
SHELL_TEXT = 200
#: Browser resource types a page builds its content from; everything else is aborted.
RENDER_RESOURCES = frozenset({"document", "script", "xhr", "fetch"})
FURNITURE = {"header", "nav", "footer"}


def render_available() -> str | None:
    """Why pages cannot be rendered here (one line), or None when they can."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (install Debian's chromium: make browser)"
    if importlib.util.find_spec("scrapy_playwright") is None:
        return "scrapy-playwright is not installed (pip install 'garment[render]')"
    return None


def check_render(mode: str) -> bool:
    """Whether the crawl renders pages in ``mode``; raises GarmentError when ``always``
    asks for a browser this machine lacks (``auto`` then renders nothing, with a warning)."""
    if mode == "never":
        return False
    why = render_available()
    if why is None:
        return True
    if mode == "always":
        raise GarmentError(f"--render always: {why}; or crawl with --render never")
    logger.warning("JavaScript pages will not be rendered: %s", why)
    return False


def content_links(tree: Any) -> int:
    """Links of a page outside its header, navigation and footer."""
    n = 0
    for a in tree.iter("a"):
        if a.get("href") and not any(isinstance(p.tag, str) and p.tag in FURNITURE
                                     for p in a.iterancestors()):
            n += 1
            if n >= MIN_CONTENT_LINKS:
                break
    return n


def script_built(tree: Any) -> str | None:
    """Why a page looks built by its scripts (one line), or None."""
    scripts = tree.xpath("//script[@src or normalize-space()]")
    if not scripts:
        return None
    for el in tree.xpath("//body//*[@id]"):
        if APP_ROOT.match(el.get("id") or "") and len(el.text_content().strip()) < 50:
            return f"empty application root #{el.get('id')}"
    for el in tree.iter("noscript"):
        if "javascript" in (el.text_content() or "").lower():
            return "<noscript> asks for JavaScript"
    body = tree.find("body")
    if body is None:
        return f"no body, {len(scripts)} scripts"
    text = sum(len((t or "").strip()) for t in body.xpath(
        ".//text()[not(ancestor::script or ancestor::style or ancestor::noscript or "
        "ancestor::template)]"))
    if text < SHELL_TEXT:
        return f"{text} characters of text, {len(scripts)} scripts"
    return None


def needs_render(tree: Any, has_product: bool, mode: str) -> str | None:
    """Why this fetched page must be rendered in a browser (one line), or None."""
    if mode != "auto" or has_product:
        return None
    if content_links(tree) >= MIN_CONTENT_LINKS:
        return None
    return script_built(tree)


def request_meta(timeout: float) -> dict[str, Any]:
    """Request meta that renders a page: loaded, then network idle (bounded)."""
    from scrapy_playwright.page import PageMethod

    return {"playwright": True, "rendered": True,
            "playwright_page_methods": [PageMethod("wait_for_load_state", "networkidle",
                                                   timeout=timeout * 1000)]}


class BrowserRequestFilter:
    """scrapy-playwright's ``PLAYWRIGHT_ABORT_REQUEST``: True aborts a request the
    browser makes while rendering. Kept: documents, scripts, XHR and fetch on http(s);
    aborted: images, fonts, media, styles and the rest (not needed to read the DOM), and
    any request to a non-public address other than the shop's (netguard's rule)."""

    def __init__(self, start_urls: list[str]):
        from garment.scrape.netguard import AddressGuard

        self.guard = AddressGuard(start_urls, _resolve)
        self.aborted = 0

    async def __call__(self, request: Any) -> bool:
        abort = request.resource_type not in RENDER_RESOURCES or \
            urlsplit(request.url).scheme not in ("http", "https")
        if not abort:
            try:
                abort = await self.guard.check(request.url) is not None
            except Exception:  # a resolver failure: the browser must not go there either
                abort = True
        self.aborted += abort
        return abort


async def _resolve(host: str) -> list[str]:
    """The host's addresses as the browser will find them (the system resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def settings(start_urls: list[str], concurrency: int, timeout: float) -> dict[str, Any]:
    """Scrapy settings that render ``playwright`` requests in Chromium (headless)."""
    import os

    args = list(CHROMIUM_ARGS) + (["--no-sandbox"] if os.geteuid() == 0 else [])
    handler = playwright_handler()
    return {
        "DOWNLOAD_HANDLERS": {"http": handler, "https": handler},
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": str(CHROMIUM), "headless": True,
                                      "args": args, "timeout": timeout * 1000},
        "PLAYWRIGHT_MAX_CONTEXTS": 1,
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": max(1, concurrency),
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": timeout * 1000,
        "PLAYWRIGHT_ABORT_REQUEST": BrowserRequestFilter(start_urls),
    }


@functools.cache
def playwright_handler() -> type:
    """scrapy-playwright's download handler, starting Playwright and Chromium on the first
    page it renders instead of when the crawl starts (most crawls render nothing)."""
    from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

    class LazyPlaywrightHandler(ScrapyPlaywrightDownloadHandler):  # type: ignore[misc]
        def __init__(self, crawler: Any) -> None:
            super().__init__(crawler)
            self.started = False
            self.start_lock = asyncio.Lock()

        async def _maybe_launch_in_thread(self) -> None:
            return None  # connected to engine_started: nothing to start yet

        def _engine_started(self) -> None:  # the same hook in older Scrapy
            return None

        async def _download_request(self, request: Any, spider: Any = None) -> Any:
            async with self.start_lock:
                if not self.started:
                    self.started = True
                    await self._launch()
            return await super()._download_request(request, spider)

    return LazyPlaywrightHandler
