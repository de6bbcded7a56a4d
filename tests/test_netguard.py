"""The address guard: decisions on addresses and a stub resolver only; nothing here opens
a connection (tests never reach beyond 127.0.0.0/8, and these reach nothing at all)."""

from __future__ import annotations

import asyncio
import ipaddress
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.http import Response

from garment.scrape.netguard import (
    AddressGuard,
    AddressRefused,
    NetGuardMiddleware,
    non_public,
    refusal,
)

NO_SHOP: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]] = []


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.9", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("fd00::1", "private"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"), ("100.64.0.1", "non-global"),
    ("::ffff:10.0.0.1", "private"),            # IPv4-mapped
    ("64:ff9b::a9fe:a9fe", "link-local"),      # NAT64 of 169.254.169.254
    ("2002:c0a8:0101::1", "private"),          # 6to4 of 192.168.1.1
])
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    assert non_public(ipaddress.ip_address(address)) == kind
    reason = refusal(address, 80, NO_SHOP)
    assert reason is not None and kind in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "151.101.1.69", "2606:4700::6810:85e5",
                                     "64:ff9b::5db8:d822"])  # NAT64 of a public one
def test_public_addresses_are_allowed_on_any_port(address: str) -> None:
    assert non_public(ipaddress.ip_address(address)) is None
    assert refusal(address, 80, NO_SHOP) is None and refusal(address, 8443, NO_SHOP) is None


def test_a_shop_on_loopback_allows_itself_only() -> None:
    shop = [(ipaddress.ip_address("127.0.0.1"), 8000)]
    for same_machine in ("127.0.0.1", "127.0.0.2", "::1"):  # localhost, whatever it is
        assert refusal(same_machine, 8000, shop) is None
    assert "loopback" in (refusal("127.0.0.1", 6379, shop) or "")  # another service
    assert "private" in (refusal("192.168.1.1", 8000, shop) or "")
    assert "link-local" in (refusal("169.254.169.254", 80, shop) or "")
    lan = [(ipaddress.ip_address("192.168.1.10"), 8080)]
    assert refusal("192.168.1.10", 8080, lan) is None
    assert refusal("192.168.1.11", 8080, lan) is not None  # another machine on the LAN
    assert refusal("127.0.0.1", 8080, lan) is not None


def stub_resolver(table: dict[str, str]):  # type: ignore[no-untyped-def]
    asked: list[str] = []

    async def resolve(host: str) -> list[str]:
        asked.append(host)
        if host not in table:
            raise OSError(f"no such host {host}")
        return [table[host]]
    return resolve, asked


def test_guard_resolves_names_first() -> None:
    resolve, asked = stub_resolver({"shop.example": "93.184.216.34",
                                    "cdn.example": "151.101.1.69",
                                    "rebound.example": "10.0.0.5",
                                    "meta.example": "169.254.169.254"})
    guard = AddressGuard(["https://shop.example/"], resolve)

    def check(url: str) -> str | None:
        return asyncio.run(guard.check(url))

    assert check("https://cdn.example/img/1.jpg") is None
    assert check("http://cdn.example:8080/img/1.jpg") is None
    assert "private address 10.0.0.5" in (check("https://rebound.example/a.jpg") or "")
    assert "link-local" in (check("http://meta.example/latest/meta-data/") or "")
    assert "link-local" in (check("http://169.254.169.254/") or "")  # literal: no lookup
    assert "not an http(s) URL" in (check("file:///etc/passwd") or "")
    assert "not an http(s) URL" in (check("http://cdn.example:99999/") or "")
    assert check("https://unknown.example/a.jpg") is None  # left to fail as a DNS error
    assert "169.254.169.254" not in asked


def test_shop_on_a_private_name_keeps_its_own_port() -> None:
    resolve, _ = stub_resolver({"shop.lan": "192.168.1.10", "img.lan": "192.168.1.10"})
    guard = AddressGuard(["http://shop.lan:8080/"], resolve)
    assert asyncio.run(guard.check("http://img.lan:8080/1.jpg")) is None
    assert asyncio.run(guard.check("http://img.lan:22/1.jpg")) is not None
    assert asyncio.run(guard.check("http://shop.lan/1.jpg")) is not None  # port 80


def fake_crawler(start_urls: list[str]) -> SimpleNamespace:
    counts: dict[str, int] = {}
    stats = SimpleNamespace(inc_value=lambda k: counts.__setitem__(k, counts.get(k, 0) + 1),
                            counts=counts)
    return SimpleNamespace(spider=SimpleNamespace(start_urls=start_urls), stats=stats)


def test_middleware_checks_requests_redirects_and_connected_addresses() -> None:
    resolve, _ = stub_resolver({"localhost": "127.0.0.1", "cdn.example": "151.101.1.69"})
    crawler = fake_crawler(["http://127.0.0.1:8000/"])
    mw = NetGuardMiddleware(crawler, resolve)  # type: ignore[arg-type]

    async def run() -> None:
        await mw.process_request(Request("http://localhost:8000/img/1.jpg"))
        await mw.process_request(Request("https://cdn.example/img/1.jpg"))
        # A redirect comes back through process_request as a new request.
        with pytest.raises(AddressRefused, match="loopback address 127.0.0.1 port 6379"):
            await mw.process_request(Request("http://localhost:6379/"))
        with pytest.raises(AddressRefused, match="link-local"):
            await mw.process_request(Request("http://169.254.169.254/latest/"))
        # The name said public, the connection reached a private address: refused.
        req = Request("https://cdn.example/img/2.jpg")
        resp = Response(req.url, request=req, ip_address=ipaddress.ip_address("10.0.0.7"))
        with pytest.raises(AddressRefused, match="connected to it"):
            await mw.process_response(req, resp)
        ok = Response(req.url, request=req, ip_address=ipaddress.ip_address("151.101.1.69"))
        assert await mw.process_response(req, ok) is ok

    asyncio.run(run())
    assert crawler.stats.counts == {"garment/address_refused": 3}
