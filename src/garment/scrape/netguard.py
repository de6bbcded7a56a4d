"""Scrape, network guard: which addresses a crawl may reach (image hosts above all).

A hostile page can name any URL as its packshot, for instance a cloud metadata service
(169.254.169.254), a router's admin page (192.168.1.1) or a database on the crawling
machine (127.0.0.1:6379). Requests go only to public addresses, unless the shop itself
is on a non-public one, and then only to the shop's own address and port:

- ``refusal(address, port, shop)`` is the decision, a pure function of the address the
  host resolved to (Python's ``ipaddress``: loopback, private, link-local, reserved,
  multicast, unspecified or otherwise not global are non-public).
- A shop endpoint is a start URL's resolved address and port. Every loopback address
  counts as one machine (``localhost``, 127.0.0.1 and ::1 are the same shop), but the
  port must be the shop's: a redirect from the shop on 127.0.0.1:8000 to
  127.0.0.1:6379 is refused, as it reaches another service on that machine.
- ``NetGuardMiddleware`` applies it to every request (image downloads, their robots.txt,
  every redirect, since a redirect comes back through the middlewares as a new request)
  after resolving the host with the resolver the downloader itself uses (Scrapy's
  cached one, so both see the same address), and again on each response to the address
  the connection actually reached (``response.ip_address``), which a DNS answer that
  changed in between cannot get past.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host name -> its addresses (as the downloader will connect to them); raises OSError
#: (Twisted's DNSLookupError is one) when the name does not resolve.
Resolver = Callable[[str], Awaitable[list[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}
#: RFC 6052's NAT64 prefix: the last 32 bits are an IPv4 address.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(IgnoreRequest):
    """A request to an address the crawl must not reach; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    """Where a URL leads: scheme, host, port."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:  # a port out of range or not a number
            port = -1
        return cls(scheme, (parts.hostname or "").lower(),
                   port if port is not None else DEFAULT_PORTS.get(scheme, -1))


def _judged(ip: IPAddress) -> list[IPAddress]:
    """The addresses that decide for ``ip``: the IPv4 address an IPv4-mapped or NAT64
    address stands for, or ``ip`` and the IPv4 address a 6to4 one carries."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return [ip.ipv4_mapped]
        if ip in NAT64:
            return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
        if ip.sixtofour is not None:
            return [ip.sixtofour, ip]
    return [ip]


def non_public(ip: IPAddress) -> str | None:
    """What kind of non-public address ``ip`` is ('loopback', 'private', ...), or None
    when it is public (globally routable)."""
    for a in _judged(ip):
        # Most specific first: Python counts 240/4 and others as "private" too.
        for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved",
                     "private"):
            if getattr(a, f"is_{kind}"):
                return kind.replace("_", "-")
        if not a.is_global:  # shared address space (100.64/10), IETF blocks...
            return "non-global"
    return None


def refusal(address: str | IPAddress, port: int,
            shop: Iterable[tuple[IPAddress, int]]) -> str | None:
    """Why a connection to ``address``:``port`` is refused, or None when it is allowed.

    ``shop`` holds the shop's endpoints (a start URL's resolved address and port): a
    non-public address is allowed only as one of them (any loopback address matching a
    loopback endpoint, the port always exactly).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"not an IP address: {address!r}"
    kind = non_public(ip)
    if kind is None:
        return None
    for shop_ip, shop_port in shop:
        if shop_port == port and (shop_ip == ip or (shop_ip.is_loopback and ip.is_loopback)):
            return None
    return f"{kind} address {ip} port {port} is not the shop's"


@functools.lru_cache(maxsize=1024)
def literal_ip(host: str) -> IPAddress | None:
    """``host`` as an address when it is one ('[::1]' brackets already stripped)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class AddressGuard:
    """The guard of one crawl: the shop's endpoints (its start URLs) and a resolver."""

    def __init__(self, start_urls: Iterable[str], resolve: Resolver):
        self.start = [Endpoint.of(u) for u in start_urls]
        self.resolve = resolve
        self._shop: list[tuple[IPAddress, int]] | None = None
        self._decided: dict[tuple[str, int], str | None] = {}  # (address, port) -> refusal

    async def addresses(self, host: str) -> list[IPAddress | str]:
        ip = literal_ip(host)
        return [ip] if ip is not None else list(await self.resolve(host))

    async def shop(self) -> list[tuple[IPAddress, int]]:
        """The shop's endpoints, resolved once."""
        if self._shop is None:
            endpoints = []
            for ep in self.start:
                try:
                    endpoints += [(ipaddress.ip_address(ip), ep.port)
                                  for ip in await self.addresses(ep.host)]
                except OSError as exc:  # DNSLookupError, gaierror: it reaches nothing
                    logger.info("cannot resolve the shop's host %s: %s", ep.host, exc)
            self._shop = endpoints
        return self._shop

    async def check(self, url: str) -> str | None:
        """Why a request to ``url`` is refused, or None. Resolution failures are left to
        the download, which reports them as DNS errors."""
        ep = Endpoint.of(url)
        if ep.scheme not in DEFAULT_PORTS or not ep.host or ep.port < 0:
            return f"not an http(s) URL with a host and port: {url[:200]}"
        try:
            addresses = await self.addresses(ep.host)
        except OSError:  # no such host: the download fails with the DNS error, counted
            return None  # as such (anything else raised here refuses: it propagates)
        return await self.check_address(addresses, ep.port)

    async def check_address(self, addresses: Iterable[IPAddress | str], port: int) -> str | None:
        shop = await self.shop()
        for a in addresses:
            key = (str(a), port)
            if key not in self._decided:
                if len(self._decided) >= 4096:  # a crawl meets few hosts; stay bounded
                    self._decided.clear()
                self._decided[key] = refusal(a, port, shop)
            if self._decided[key] is not None:
                return self._decided[key]
        return None


async def _twisted_resolve(host: str) -> list[str]:
    """The address the downloader will connect to: Scrapy's cached resolver, installed
    on the reactor (IPv4, like the downloader's own lookups)."""
    from scrapy.resolver import dnscache
    from scrapy.utils.defer import maybe_deferred_to_future
    from twisted.internet import reactor

    if host in dnscache:  # what the downloader will use; no trip through the event loop
        cached = dnscache[host]
        return [cached] if isinstance(cached, str) else [str(a.host) for a in cached]
    return [await maybe_deferred_to_future(reactor.resolve(host))]  # type: ignore[arg-type]


class NetGuardMiddleware:
    """Downloader middleware: requests and responses at refused addresses become
    ``AddressRefused`` (before robots.txt is asked for, so a refused host is never
    contacted at all)."""

    def __init__(self, crawler: Crawler, resolve: Resolver = _twisted_resolve):
        self.crawler = crawler
        self.resolve = resolve
        self._guard: AddressGuard | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NetGuardMiddleware:
        return cls(crawler)

    @property
    def guard(self) -> AddressGuard:
        if self._guard is None:
            urls = list(getattr(self.crawler.spider, "start_urls", None) or [])
            self._guard = AddressGuard(urls, self.resolve)
        return self._guard

    async def process_request(self, request: Request) -> None:
        reason = await self.guard.check(request.url)
        if reason is not None:
            self._refuse(request, reason)

    async def process_response(self, request: Request, response: Response) -> Response:
        if response.ip_address is not None and not request.meta.get("proxy"):
            reason = await self.guard.check_address([response.ip_address],
                                                    Endpoint.of(request.url).port)
            if reason is not None:
                self._refuse(request, f"{reason} (connected to it)")
        return response

    def _refuse(self, request: Request, reason: str) -> NoReturn:
        stats = self.crawler.stats
        if stats is not None:
            stats.inc_value("garment/address_refused")
        raise AddressRefused(f"address refused: {reason}: {request.url[:300]}")
