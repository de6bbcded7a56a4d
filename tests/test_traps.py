"""Crawl limits: page scope, page budget and trap rules, offline and against the trap shop
(a calendar, endless pagination, minted session paths and 60 real products on 127.0.0.1)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from garment.scrape import CrawlConfig, CrawlStats, crawl
from garment.scrape.limits import Limits, LinkFilter, page_origin, scope_origins, section_of
from garment.store import Catalogue
from trapshop import TrapShop


def link_filter(**kw: object) -> LinkFilter:
    return LinkFilter(Limits.from_config(CrawlConfig(**kw)))  # type: ignore[arg-type]


# -- offline: scope and rules ------------------------------------------------------------


def test_page_scope_is_scheme_host_and_port() -> None:
    assert page_origin("http://Shop.example/a") == ("http", "shop.example", 80)
    assert page_origin("https://www.shop.example:8443/") == ("https", "shop.example", 8443)
    assert page_origin("ftp://shop.example/") is None
    assert page_origin("http://shop.example:99999/") is None  # port out of range
    scope = scope_origins(["http://www.shop.example/", "http://127.0.0.1:8000/"])
    assert ("http", "shop.example", 80) in scope
    assert ("https", "shop.example", 443) in scope          # http -> https upgrade
    assert ("http", "shop.example", 8080) not in scope      # another port, another site
    assert ("http", "127.0.0.1", 8000) in scope
    assert ("https", "127.0.0.1", 8000) not in scope        # no upgrade off default ports
    assert page_origin("http://127.0.0.1:8001/p/1") not in scope


def test_each_rule_refuses_and_counts_under_its_section() -> None:
    f = link_filter(max_depth=5, max_barren_hops=3, max_query_variants=2,
                    max_segment_repeats=2, max_id_variants=2)
    assert f.admit("http://h/c?page=1", depth=5, barren=3)
    assert not f.admit("http://h/events/1", depth=6, barren=0)
    assert not f.admit("http://h/events/2", depth=1, barren=4)
    assert f.admit("http://h/c?page=2", 1, 0)
    assert not f.admit("http://h/c?page=3", 1, 0)           # third query string of /c
    assert f.admit("http://h/c", 1, 0)                      # the bare path is no variant
    assert f.admit("http://h/info/more/more", 1, 0)
    assert not f.admit("http://h/info/more/more/more", 1, 0)
    sessions = [uuid.uuid4().hex for _ in range(3)]
    assert f.admit(f"http://h/s/{sessions[0]}/", 1, 0)
    assert f.admit(f"http://h/s/{sessions[1]}/c", 1, 0)
    assert f.admit(f"http://h/s/{sessions[0]}/p/1", 1, 0)   # a known session goes on
    assert not f.admit(f"http://h/s/{sessions[2]}/", 1, 0)  # a third id is minted
    for _ in range(5):  # a product's own id, last in its path, is never a minted id
        assert f.admit(f"http://h/p/{uuid.uuid4().hex}", 1, 0)
    assert not f.admit("http://h/search?q=" + "a" * 2100, 1, 0)
    assert f.summary() == {"depth": {"/events": 1}, "barren": {"/events": 1},
                           "query_variants": {"/c": 1}, "repeated_segments": {"/info": 1},
                           "minted_ids": {"/s": 1}, "url_too_long": {"/search": 1}}
    assert f.admitted == 12


def test_a_refused_url_is_counted_once_and_zero_turns_a_rule_off() -> None:
    f = link_filter(max_barren_hops=1)
    for _ in range(3):
        assert not f.admit("http://h/events/9", 1, 2)
    assert f.summary() == {"barren": {"/events": 1}}
    off = link_filter(max_depth=0, max_barren_hops=0, max_query_variants=0,
                      max_segment_repeats=0, max_id_variants=0)
    ids = [uuid.uuid4().hex for _ in range(10)]
    assert all(off.admit(f"http://h/a/a/a/a/s/{i}/x?q={n}", 10**6, 10**6)
               for n, i in enumerate(ids))


def test_page_budget_admits_exactly_max_pages() -> None:
    f = link_filter(max_pages=3)
    assert f.admit_start("http://h/")
    assert [f.admit(f"http://h/p/{i}", 1, 0) for i in range(4)] == [True, True, False, False]
    assert f.budget_spent and f.summary() == {"page_budget": {"/p": 2}}
    assert not link_filter(max_pages=None).budget_spent


def test_sections_and_limits_validation() -> None:
    assert section_of("http://h/") == "/"
    assert section_of("http://h/events/2024/01/01") == "/events"
    assert section_of(f"http://h/{uuid.uuid4().hex}/x") == "/*"
    assert section_of("http://h/a;jsessionid=XYZ/b") == "/a"
    from garment.errors import GarmentError

    with pytest.raises(GarmentError, match="max_depth"):
        CrawlConfig(["http://h/"], max_depth=-1).validate()


# -- the trap shop -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trap_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrapShop, TrapShop,
                                                                           Path, CrawlStats]]:
    other = TrapShop(n_products=1, n_links=1).start()   # another site: another port
    shop = TrapShop(offsite=f"{other.url}p/1").start()
    out = tmp_path_factory.mktemp("trap-catalogue")
    # Default rules, smaller numbers where a default only makes the test longer (the
    # benchmark crawls with every default).
    config = CrawlConfig([shop.url], out=out, delay=0.0, concurrency=8, timeout=10.0,
                         max_depth=25, max_links_per_page=200)
    stats = crawl(config)
    yield shop, other, out, stats
    shop.stop()
    other.stop()


@pytest.mark.timeout(180)
def test_trap_shop_crawl_ends_with_every_product(trap_crawl) -> None:  # type: ignore[no-untyped-def]
    shop, other, out, stats = trap_crawl
    with Catalogue.open(out, create=False) as cat:
        products = cat.products()
        images = cat.images()
    assert sorted(p["sku"] for p in products) == [f"TRAP-{i:03d}" for i in range(1, 61)]
    assert len(images) == 60 and {img["status"] for img in images} == {"ok"}
    assert stats.products == 60 and stats.finish_reason == "finished"
    # The traps were entered, and left: bounded by the rules, not by the page budget.
    assert stats.pages < 1500 and "page_budget" not in stats.skipped
    assert shop.hits["/s"] <= 3 * 10 and shop.hits["/info"] <= 4 and shop.hits["/x"] <= 200
    assert other.hits == {}      # another port is another site, also through a redirect
    assert shop.hits["/moved"] == 1
    assert 0 < stats.crawler_peak_mb < 600, f"the crawler's peak memory was {stats.crawler_peak_mb:.0f} MB"


def test_trap_shop_stop_reasons_are_counted(trap_crawl) -> None:  # type: ignore[no-untyped-def]
    _, _, _, stats = trap_crawl
    skipped = stats.skipped
    assert skipped["barren"]["/events"] > 0            # the calendar
    assert skipped["minted_ids"]["/s"] > 0             # a session id per visit
    assert skipped["repeated_segments"]["/info"] > 0   # /info/more/more/more/more
    assert skipped["url_too_long"]["/search"] > 0      # ?q= eight times longer each hop
    assert skipped["links_per_page"]["/links"] == 100_000 + 6 - 200  # + the menu's links
    assert skipped["depth"]                            # the endless sale listing
    assert CrawlStats.from_dict(stats.as_dict()).skipped == skipped  # stored as JSON


@pytest.mark.timeout(120)
def test_cli_page_budget_with_a_page_of_100000_links(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    with TrapShop() as shop:
        result = cli("scrape", shop.url, "--out", str(tmp_path / "cat"), "--delay", "0",
                     "--concurrency", "4", "--max-pages", "40", "--max-barren-hops", "5")
        hits = sum(n for section, n in shop.hits.items() if section not in ("/img",))
    text = result.output  # type: ignore[attr-defined]
    assert "limits: pages 40, depth 100, barren hops 5, query variants 500" in text
    assert "limit (page budget):" in text and "URLs skipped under" in text
    assert "limit (links per page):" in text and "/links (99,006)" in text
    # robots.txt and the sitemap are requested besides the 40 pages
    assert hits <= 40 + 2
    peak = re.search(r"crawler peak memory\s*│?\s*(\d+) MB", text)
    assert peak and int(peak.group(1)) < 600, text
