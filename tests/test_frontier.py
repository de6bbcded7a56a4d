"""The shared Redis frontier (``--frontier``): its request format, in-flight leases and host
slots against a real redis-server, and crawls by several worker processes on one frontier."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from garment.errors import GarmentError
from garment.scrape import CrawlConfig, child_env, command, prepare
from garment.store import Catalogue
from services import needs_postgres, needs_redis
from shopsite import ShopSite

pytestmark = needs_redis


# -- the request format -------------------------------------------------------------------

def test_requests_travel_as_json_and_only_what_dumps_writes_is_read() -> None:
    from scrapy import Request, Spider

    from garment.scrape import reqjson

    class S(Spider):
        name = "s"

        def parse_page(self, response: object) -> None: ...

    spider = S()
    request = Request("http://127.0.0.1:1/p/1/?a=1", callback=spider.parse_page,
                      headers={"X-A": "b"}, body=b"\x00\xffbody", priority=3,
                      meta={"kind": "page", "barren": 2, "frontier_token": "w:1",
                            "obj": object()})
    data = reqjson.dumps(request.to_dict(spider=spider))
    assert b"obj" not in data and b"frontier_token" not in data  # JSON values only
    back = reqjson.loads(data)
    assert back["body"] == b"\x00\xffbody" and back["callback"] == "parse_page"
    assert back["headers"][b"X-A"] == [b"b"] and back["meta"] == {"kind": "page", "barren": 2}

    import pickle

    with pytest.raises(ValueError):  # a pickle is not read, let alone run
        reqjson.loads(pickle.dumps(request.to_dict(spider=spider)))
    good = json.loads(data)
    for field, value in (("_class", "os.system"), ("callback", "__init__"),
                         ("url", "file:///etc/passwd"), ("extra", 1)):
        with pytest.raises(ValueError):
            reqjson.loads(json.dumps({**good, field: value}))


# -- leases, requeue, host slots ------------------------------------------------------------

def test_a_dead_workers_in_flight_requests_are_requeued_once(redis_url: str) -> None:
    from garment.scrape import frontier

    client = frontier.connect(redis_url)
    dead, alive = frontier.Frontier(client, "dead"), frontier.Frontier(client, "alive")
    for i in range(3):
        alive.push(f"r{i}".encode(), priority=i)
    dead.heartbeat({})
    alive.heartbeat({})
    taken = [dead.pop(), dead.pop()]
    assert [t[1] for t in taken if t] == [b"r2", b"r1"]  # highest priority first
    assert alive.queue_size() == 1 and alive.pending() == 3
    assert alive.reap() == 0  # its lease holds: nothing moves
    client.delete(frontier.beat_key("dead"))  # the lease expired: the worker died
    assert alive.reap() == 2 and alive.reap() == 0
    assert client.hlen(frontier.inflight_key("dead")) == 0
    assert int(client.get(frontier.REQUEUED_KEY)) == 2
    # Priorities survive the round trip: r2 comes out first again.
    token, data = alive.pop()  # type: ignore[misc]
    assert data == b"r2" and alive.pending() == 3
    alive.done(token)
    assert alive.pending() == 2
    # A retry goes back to the queue and leaves the in-flight hash in one transaction.
    token, data = alive.pop()  # type: ignore[misc]
    alive.push(data, priority=1, token=token)
    assert client.hlen(alive.inflight) == 0 and alive.queue_size() == 2
    status = frontier.status(redis_url)
    assert status["queued"] == 2 and status["workers_alive"] == 1 and status["requeued"] == 2
    client.close()


def test_host_slots_are_spaced_across_workers_and_held_on_retry_after(redis_url: str) -> None:
    from garment.scrape import frontier

    a = frontier.Frontier(frontier.connect(redis_url), "a")
    b = frontier.Frontier(frontier.connect(redis_url), "b")
    assert a.claim("shop:1", 0.2) == 0.0  # taken: send now
    wait = b.claim("shop:1", 0.2)  # not free: wait and ask again
    assert 0.1 < wait <= 0.2 and 0.1 < a.claim("shop:1", 0.2) <= 0.2
    time.sleep(wait)
    assert b.claim("shop:1", 0.2) == 0.0 and a.claim("shop:1", 0.2) > 0.1
    a.hold("other:2", 5.0)
    assert b.claim("other:2", 0.1) > 4.5
    assert frontier.status(redis_url)["hosts_next_s"]["other:2"] > 4.5


def test_unreachable_frontier_and_finished_crawl_are_one_line_errors(redis_url: str,
                                                                     tmp_path: Path) -> None:
    from garment.scrape import frontier

    with pytest.raises(GarmentError, match=r"cannot reach the frontier redis://:\*\*\*@"
                                           r"127.0.0.1:1/0"):
        frontier.connect("redis://:secret@127.0.0.1:1/0")
    with pytest.raises(GarmentError, match="not a Redis URL"):
        CrawlConfig(["http://127.0.0.1:1/"], frontier="http://x/").validate()
    f = frontier.Frontier(frontier.connect(redis_url))
    f.mark_finished()
    config = CrawlConfig(["http://127.0.0.1:1/"], out=tmp_path, frontier=redis_url)
    with pytest.raises(GarmentError, match="holds a finished crawl"):
        prepare(config)
    assert frontier.reset(redis_url) >= 1
    prepare(config)


# -- crawls by several workers ----------------------------------------------------------------

def start_worker(config: CrawlConfig, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as err:
        return subprocess.Popen(command(prepare(config)), env=child_env(),
                                stdout=subprocess.DEVNULL, stderr=err)


def stored(out: Path | str) -> list[str]:
    with Catalogue.open(out) as cat:
        return [p["url"] for p in cat.products()]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def shared_catalogue(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The catalogue the workers share: a SQLite folder (one machine) or PostgreSQL with a
    files folder (many machines)."""
    if request.param == "sqlite":
        return tmp_path / "catalogue"
    from garment.store import target

    return target(request.getfixturevalue("postgres_url"), tmp_path / "files")


@pytest.mark.timeout(180)
def test_three_workers_one_killed_store_every_product_once(
        redis_url: str, shared_catalogue: Path | str, tmp_path: Path) -> None:
    from garment.scrape import frontier

    shop = ShopSite(n_products=40, latency=0.05).start()
    out = shared_catalogue
    config = CrawlConfig([shop.url], out=out, delay=0.0, concurrency=2, retry_backoff=0.05,
                         timeout=10.0, frontier=redis_url)
    try:
        workers = [start_worker(config, tmp_path / f"w{i}.log") for i in range(3)]
        client = frontier.connect(redis_url)
        deadline = time.monotonic() + 60
        victim = None
        while time.monotonic() < deadline and victim is None:
            time.sleep(0.05)
            if len(stored(out)) < 8:
                continue
            # Killed while it holds requests in flight (worker ids are host-pid-random).
            held = {w.decode(): client.hlen(frontier.inflight_key(w.decode()))
                    for w in client.smembers(frontier.WORKERS_KEY)}
            pids = {int(w.split("-")[-2]): n for w, n in held.items() if n}
            victim = next((w for w in workers if w.pid in pids), None)
        assert victim is not None, "no worker held a request in flight"
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        for i, w in enumerate(workers):
            if w is not victim:
                assert w.wait(timeout=120) == 0, (tmp_path / f"w{i}.log").read_text()[-2000:]
        requeued = int(client.get(frontier.REQUEUED_KEY) or 0)
        assert requeued > 0  # the killed worker died holding requests: the others took them
        assert client.get(frontier.FINISHED_KEY) is not None
        assert client.zcard(frontier.QUEUE_KEY) == 0
        client.close()
    finally:
        shop.stop()
    urls = stored(out)
    ids = collections.Counter(int(u.rstrip("/").split("/p/")[1].split("/")[0]) for u in urls)
    assert sorted(ids) == shop.page_ids and max(ids.values()) == 1  # each product once
    asked = collections.Counter(h.path for h in shop.hits if h.host != "localhost")
    # Product 5 answers 503 once, product 7 always 500 (two retries); any other extra
    # request is one the killed worker held in flight, requeued for the others.
    extra = {p: n - {5: 2, 7: 3}.get(int(p.split("/")[2]), 1)
             for p, n in asked.items() if p.startswith("/p/") and p.count("/") == 3}
    assert all(n >= 0 for n in extra.values()), extra
    assert sum(extra.values()) <= requeued
    print(f"in flight when killed: {held}; requeued {requeued}; extra product page "
          f"requests {sum(extra.values())}; products {len(urls)} of {len(shop.page_ids)}")


class StampedShop(ShopSite):
    """The test shop, noting when each request arrives (its log notes when it was answered)."""

    arrivals: list[tuple[float, str, str]] = []

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        host = (req.headers.get("Host") or "").split(":")[0]
        self.arrivals.append((time.monotonic(), host, req.path))
        super().handle(req)


@pytest.mark.timeout(120)
def test_two_workers_keep_one_hosts_delay_between_them(redis_url: str,
                                                       tmp_path: Path) -> None:
    delay = 0.5
    shop = StampedShop(n_products=8)
    shop.arrivals = []
    shop.start()
    config = CrawlConfig([shop.url], out=tmp_path / "catalogue", delay=delay, concurrency=2,
                         timeout=10.0, frontier=redis_url)
    try:
        worker = start_worker(config, tmp_path / "w0.log")
        # The other through the command line, as a user starts one on another machine.
        cli = subprocess.run(
            [sys.executable, "-m", "garment", "scrape", shop.url, "--out", str(config.out),
             "--delay", str(delay), "--frontier", redis_url, "--json"],
            env=child_env(), capture_output=True, text=True, timeout=100)
        assert cli.returncode == 0, cli.stderr
        assert worker.wait(timeout=100) == 0
    finally:
        shop.stop()
    assert json.loads(cli.stdout)["finish_reason"] == "finished"
    logs = [(tmp_path / "w0.log").read_text(), (tmp_path / "catalogue/crawl.log").read_text()]
    assert all("Spider closed (finished)" in log for log in logs)
    popped = [int(re.search(r"'frontier/popped': (\d+)", log).group(1)) for log in logs]  # type: ignore[union-attr]
    hits = sorted((t, path) for t, host, path in shop.arrivals if host != "localhost")
    gaps = [b[0] - a[0] for a, b in zip(hits, hits[1:], strict=False)]
    assert len(hits) > 10
    # Both workers took requests (or the test proves nothing), yet the host saw them the
    # delay apart. Slack: a worker's reactor busy parsing a page may send a claimed request
    # a little late; without the shared slot two workers' requests come ~delay / 2 apart.
    assert min(popped) > 0, popped
    # Each URL once across the two workers: only robots.txt (each worker reads it) and the
    # shop's own retries (a 503, then a 200; a 500 three times) come more than once.
    asked = collections.Counter(path for _, path in hits)
    assert {p: n for p, n in asked.items() if n > 1} == {"/robots.txt": 2, "/p/5": 2,
                                                        "/p/7": 3}
    assert sorted(gaps)[len(gaps) // 10] >= delay * 0.9, sorted(gaps)
    assert min(gaps) >= delay * 0.6, [(round(g, 3), hits[i:i + 2]) for i, g in enumerate(gaps)
                                      if g < delay * 0.6]


def test_cli_status_reset_and_unreachable(redis_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from garment.cli import app
    from garment.scrape import frontier

    f = frontier.Frontier(frontier.connect(redis_url), "w1")
    f.push(b"r", priority=0)
    f.heartbeat({"requests": 3, "requests_per_s": 1.5})
    f.claim("shop.example:80", 2.0)
    runner = CliRunner()
    result = runner.invoke(app, ["scrape", "--frontier", redis_url, "--status", "--json"])
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["queued"] == 1 and state["workers_alive"] == 1
    assert state["requests_per_s"] == 1.5 and 0 < state["hosts_next_s"]["shop.example:80"] <= 2
    result = runner.invoke(app, ["scrape", "--frontier", redis_url, "--status"])
    assert result.exit_code == 0 and "1 queued" in result.stdout and "w1" in result.stdout
    result = runner.invoke(app, ["scrape", "--frontier", redis_url, "--reset"])
    assert result.exit_code == 1 and "live worker" in result.stderr
    f.leave()
    result = runner.invoke(app, ["scrape", "--frontier", redis_url, "--reset"])
    assert result.exit_code == 0 and "emptied" in result.stdout
    result = runner.invoke(app, ["scrape", "http://127.0.0.1:1/", "--out", str(tmp_path),
                                 "--frontier", "redis://:pw@127.0.0.1:1/0"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the frontier redis://:***@127.0.0.1:1/0")
    assert "pw" not in result.stderr


@pytest.mark.timeout(150)
def test_a_stopped_worker_gives_its_requests_back_and_another_finishes(
        redis_url: str, tmp_path: Path) -> None:
    from garment.scrape import frontier

    shop = ShopSite(n_products=30, latency=0.05).start()
    out = tmp_path / "catalogue"
    config = CrawlConfig([shop.url], out=out, delay=0.0, concurrency=2, retry_backoff=0.05,
                         timeout=10.0, frontier=redis_url)
    client = frontier.connect(redis_url)
    try:
        first = start_worker(config, tmp_path / "w0.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(stored(out)) < 5:
            time.sleep(0.1)
        first.send_signal(signal.SIGTERM)  # what Ctrl-C and `kill PID` do: a graceful stop
        assert first.wait(timeout=60) == 0
        assert "Spider closed (shutdown)" in (tmp_path / "w0.log").read_text()
        assert not client.smembers(frontier.WORKERS_KEY)  # it left, holding nothing
        assert not list(client.scan_iter(match=frontier.PREFIX + "inflight:*"))
        assert client.zcard(frontier.QUEUE_KEY) > 0 and not client.exists(frontier.FINISHED_KEY)
        queued = [json.loads(d) for d in client.zrange(frontier.QUEUE_KEY, 0, -1)]  # JSON
        assert all(q["callback"] in ("parse_page", "parse_sitemap") for q in queued)
        partial = len(stored(out))
        second = start_worker(config, tmp_path / "w1.log")
        assert second.wait(timeout=100) == 0
        assert client.exists(frontier.FINISHED_KEY)
    finally:
        client.close()
        shop.stop()
    urls = stored(out)
    assert partial < len(shop.page_ids) == len(urls) == len(set(urls))


@pytest.mark.timeout(150)
def test_a_worker_past_its_budget_leaves_the_rest_to_the_others(redis_url: str,
                                                                tmp_path: Path) -> None:
    from garment.scrape import frontier

    shop = ShopSite(n_products=24, latency=0.02).start()
    out = tmp_path / "catalogue"
    config = CrawlConfig([shop.url], out=out, delay=0.0, concurrency=2, retry_backoff=0.05,
                         timeout=10.0, frontier=redis_url)
    client = frontier.connect(redis_url)
    try:
        budget = CrawlConfig(**{**config.__dict__, "max_products": 5})
        assert start_worker(budget, tmp_path / "w0.log").wait(timeout=60) == 0
        assert 0 < len(stored(out)) < len(shop.page_ids)  # its 5 items: one row per product
        # Nothing it took is lost: what it could not send is back in the queue.
        assert client.zcard(frontier.QUEUE_KEY) > 0 and not client.exists(frontier.FINISHED_KEY)
        assert not list(client.scan_iter(match=frontier.PREFIX + "inflight:*"))
        assert start_worker(config, tmp_path / "w1.log").wait(timeout=100) == 0
    finally:
        client.close()
        shop.stop()
    urls = stored(out)
    assert len(urls) == len(set(urls)) == len(shop.page_ids)


def test_missing_scrapy_redis_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from garment.scrape import frontier

    monkeypatch.setitem(sys.modules, "scrapy_redis", None)  # as if not installed
    with pytest.raises(GarmentError, match=r"pip install 'garment\[scale\]'"):
        frontier.connect("redis://127.0.0.1:1/0")


class _TooMany:
    """A download handler that answers 429 with Retry-After: 3 (no network)."""

    lazy = False

    def __init__(self, crawler: object) -> None:
        self.sent: list[float] = []

    @classmethod
    def from_crawler(cls, crawler: object) -> _TooMany:
        return cls(crawler)

    async def download_request(self, request: object) -> object:
        from scrapy.http import Response

        self.sent.append(time.monotonic())
        return Response(request.url, status=429, headers={"Retry-After": "3"})  # type: ignore[attr-defined]

    async def close(self) -> None: ...


def test_a_429_holds_the_host_for_every_worker(redis_url: str) -> None:
    import asyncio

    from scrapy import Request
    from scrapy.utils.test import get_crawler

    from garment.scrape import frontier
    from garment.scrape.shared import SharedSlotHandler

    crawler = get_crawler(settings_dict={"REDIS_URL": redis_url, "GARMENT_FRONTIER_DELAY": 0.0,
                                         "GARMENT_FRONTIER_INNER": _TooMany})
    handler = SharedSlotHandler(crawler)
    response = asyncio.run(handler.download_request(Request("http://shop.test:8080/p/1")))
    assert response.status == 429
    # Every worker's next claim on that host now waits out the Retry-After.
    other = frontier.Frontier(frontier.connect(redis_url), "other")
    assert 2.5 < other.claim("shop.test:8080", 0.0) <= 3.0
    assert other.claim("elsewhere.test:80", 0.0) == 0.0
