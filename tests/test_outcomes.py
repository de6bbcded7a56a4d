"""How a crawl ends: signals reach the crawler child, and the exit status and the recorded
run say what happened (interrupted, nothing reachable, nothing stored). Servers on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from garment.scrape import PARENT_ENV, CrawlConfig, CrawlStats, child_env, command, crawl, prepare
from garment.scrape.run import diagnose, settings_for
from garment.store import Catalogue
from shopsite import ShopSite, make_jpeg, reply, serve

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc; the parent-death signal is Linux's")


# -- helpers ---------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(name))
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition, timeout: float, step: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def stored(out: Path) -> int:
    db = out / "catalogue.sqlite"
    if not db.exists():
        return 0
    with Catalogue.open(out, create=False) as cat:
        return len(cat.products())


def last_run(out: Path) -> dict[str, object]:
    with Catalogue.open(out, create=False) as cat:
        run = cat.runs()[-1]
    run["stats"] = json.loads(str(run["stats"])) if run["stats"] else {}
    return run


def start_cli(*args: str) -> subprocess.Popen[str]:
    """``garment ARGS`` as a terminal would run it: the leader of its own process group."""
    return subprocess.Popen([sys.executable, "-m", "garment", *args], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def crawling_child(cli: subprocess.Popen[str], out: Path, products: int = 2) -> int:
    """The crawler child of ``cli``, once it has stored ``products`` products."""
    assert wait_until(lambda: stored(out) >= products, 60), "the crawl stored nothing"
    (child,) = children(cli.pid)
    return child


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Site:
    """A tiny site on 127.0.0.1: ``routes`` maps a path to a list of (status, type, body)
    answers, given in turn (the last one repeats)."""

    def __init__(self, routes: dict[str, list[tuple[int, str, bytes]]]):
        self.routes = routes
        self.hits: Counter[str] = Counter()
        self.server = serve(self._handle, protocol="HTTP/1.0")
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        answers = self.routes.get(path, [(404, "text/plain", b"not found")])
        status, ctype, body = answers[min(self.hits[path], len(answers) - 1)]
        self.hits[path] += 1
        reply(handler, status, ctype, body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def html(body: str, head: str = "") -> tuple[int, str, bytes]:
    return 200, "text/html; charset=utf-8", (
        f"<!doctype html><html><head><title>t</title>{head}</head>"
        f"<body>{body}</body></html>").encode()


def product(i: int) -> tuple[int, str, bytes]:
    data = {"@context": "https://schema.org", "@type": "Product", "name": f"Shirt {i}",
            "sku": f"S{i}", "image": f"/img/{i}.jpg",
            "offers": {"@type": "Offer", "price": "9.99", "priceCurrency": "EUR"}}
    return html(f"<h1>Shirt {i}</h1>",
                f'<script type="application/ld+json">{json.dumps(data)}</script>')


ROBOTS_OK = (200, "text/plain", b"User-agent: *\nAllow: /\n")


@pytest.fixture
def site() -> Iterator[list[Site]]:
    made: list[Site] = []
    yield made
    for s in made:
        s.stop()


def quick(url: str, out: Path, **kw: object) -> CrawlConfig:
    settings: dict[str, object] = {"delay": 0.0, "concurrency": 2, "retry_backoff": 0.05,
                                   "timeout": 5.0, **kw}
    return CrawlConfig([url], out=out, **settings)  # type: ignore[arg-type]


# -- signals ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_shop() -> Iterator[ShopSite]:
    shop = ShopSite(latency=0.2).start()
    yield shop
    shop.stop()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_crawl_once_and_records_it(
        slow_shop: ShopSite, tmp_path: Path, signum: int) -> None:
    cli = start_cli("scrape", slow_shop.url, "--out", str(tmp_path), "--delay", "0")
    child = crawling_child(cli, tmp_path)
    if signum == signal.SIGINT:
        os.killpg(cli.pid, signum)  # what a terminal's Ctrl-C does: the whole group
    else:
        os.kill(cli.pid, signum)
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == 128 + signum, err
    lines = [line for line in err.splitlines() if line.strip()]
    run = last_run(tmp_path)
    n = run["stats"]["products"]  # type: ignore[index]
    assert lines == [f"interrupted after {n} products; rerun with --resume"], err
    assert not running(child)
    # Saves, as counted: a product reached at two URLs (/p/16/alt) is one row saved twice.
    assert run["status"] == "interrupted" and n >= stored(tmp_path) >= 2
    log = (tmp_path / "crawl.log").read_text()
    assert "stopping gracefully" in log and "unclean" not in log
    assert "Traceback" not in log


def test_the_crawler_dies_with_a_killed_cli_and_the_crawl_resumes(
        slow_shop: ShopSite, tmp_path: Path) -> None:
    cli = start_cli("scrape", slow_shop.url, "--out", str(tmp_path), "--delay", "0")
    child = crawling_child(cli, tmp_path)
    os.kill(cli.pid, signal.SIGKILL)
    cli.communicate(timeout=10)
    assert wait_until(lambda: not running(child), 20), "the crawler outlived its parent"
    run = last_run(tmp_path)
    assert run["status"] == "interrupted"  # told by the parent-death signal: a clean stop
    assert run["stats"]["products"] >= stored(tmp_path) >= 2  # type: ignore[index]
    assert "unclean" not in (tmp_path / "crawl.log").read_text()
    stats = crawl(quick(slow_shop.url, tmp_path, resume=True, concurrency=4))
    assert stats.problem == "" and stored(tmp_path) == len(slow_shop.page_ids)


def test_a_crawler_whose_parent_is_already_gone_does_not_start(
        tmp_path: Path, site: list[Site]) -> None:
    site.append(Site({"/": [product(1)]}))
    env = child_env()
    env[PARENT_ENV] = "1"  # not this child's parent: as if its parent had died already
    result = subprocess.run(command(prepare(quick(site[0].url, tmp_path))), env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and not result.stdout
    assert not site[0].hits
    with Catalogue.open(tmp_path, create=False) as cat:
        assert cat.runs() == []


# -- outcomes --------------------------------------------------------------------------------


def test_unreachable_host_is_named(tmp_path: Path) -> None:
    stats = crawl(quick(f"http://127.0.0.1:{free_port()}/", tmp_path, retries=0))
    assert stats.products == 0 and stats.pages == 0
    assert stats.problem.startswith("unreachable host: 127.0.0.1"), stats.problem
    assert "connection" in stats.problem
    assert last_run(tmp_path)["status"] == "failed"


@pytest.mark.parametrize("case", ["robots", "no-markup"])
def test_cli_exits_1_with_one_line_when_nothing_was_stored(
        tmp_path: Path, site: list[Site], cli, case: str) -> None:  # type: ignore[no-untyped-def]
    if case == "robots":
        routes = {"/robots.txt": [(200, "text/plain", b"User-agent: *\nDisallow: /\n")],
                  "/": [product(1)]}
        expected = "error: robots.txt of 127.0.0.1 forbids this crawler every page"
    else:
        routes = {"/robots.txt": [ROBOTS_OK],
                  "/": [html('<a href="/a">a</a> <a href="/b">b</a>')],
                  "/a": [html("<p>about us</p>")], "/b": [html("<p>contact</p>")]}
        expected = "error: no product markup on the 3 pages read: try --site"
    site.append(Site(routes))
    result = cli("scrape", site[0].url, "--out", str(tmp_path), "--delay", "0")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(expected), result.output
    run = last_run(tmp_path)
    assert run["status"] == "failed" and run["stats"]["problem"] == errors[0][7:]  # type: ignore[index]


def test_an_error_recovered_by_a_retry_is_not_an_error(tmp_path: Path, site: list[Site]) -> None:
    jpeg = (200, "image/jpeg", make_jpeg(1))
    site.append(Site({"/robots.txt": [ROBOTS_OK],
                      "/": [(500, "text/plain", b"busy"), (503, "text/plain", b"busy"),
                            product(1)],
                      "/img/1.jpg": [(502, "text/plain", b"busy"), jpeg]}))
    stats = crawl(quick(site[0].url, tmp_path))
    assert stats.products == 1 and stats.images == {"ok": 1}
    assert stats.errors == {} and stats.retries == 3 and stats.problem == ""
    with Catalogue.open(tmp_path, create=False) as cat:
        assert cat.errors() == []
    assert last_run(tmp_path)["status"] == "finished"


def test_diagnose_names_each_cause() -> None:
    def problem(resumed: int = 0, **kw: object) -> str:
        return diagnose(CrawlStats(**kw), "shop.example", resumed)  # type: ignore[arg-type]

    assert problem(products=3, pages=5) == ""
    assert problem(pages=0, robots_forbidden=2, errors={"timeout": 1}).startswith(
        "robots.txt of shop.example forbids")
    assert problem(pages=0, errors={"dns": 1}).startswith("unreachable host: shop.example (dns")
    assert "HTTP" not in problem(pages=0, errors={"http_403": 2})
    assert problem(pages=0, errors={"http_403": 2}).startswith("shop.example answered no page")
    assert problem(pages=4).startswith("no product markup on the 4 pages read: try --site")
    assert problem(resumed=10, pages=4) == ""  # a resumed crawl with nothing new is fine
    assert problem(resumed=10, pages=0, errors={"connection": 1}).startswith("unreachable")


# -- no remote access ------------------------------------------------------------------------


def test_remote_control_is_off_and_leaves_no_token_file(
        tmp_path: Path, site: list[Site], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(CrawlConfig(["http://127.0.0.1/"]))
    assert settings["REMOTE_CONTROL_ENABLED"] is False and not settings["TELNETCONSOLE_ENABLED"]
    assert settings["EXTENSIONS"]["scrapy.extensions.remote_control.RemoteControl"] is None
    state = tmp_path / "state"  # where Scrapy writes its job (token) files on Linux
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    site.append(Site({"/robots.txt": [ROBOTS_OK], "/": [product(1)],
                      "/img/1.jpg": [(200, "image/jpeg", make_jpeg(1))]}))
    stats = crawl(quick(site[0].url, tmp_path / "cat"))
    assert stats.products == 1
    assert not state.exists() or not any(state.rglob("*"))
    log = (tmp_path / "cat" / "crawl.log").read_text()
    assert "Remote control" not in log and "RemoteControl" not in log and "Telnet" not in log


def test_a_packshot_cut_short_then_whole_is_not_an_error(tmp_path: Path, site: list[Site]) -> None:
    whole = make_jpeg(1)
    site.append(Site({"/robots.txt": [ROBOTS_OK], "/": [product(1)],
                      "/img/1.jpg": [(200, "image/jpeg", whole[: len(whole) // 2]),
                                     (200, "image/jpeg", whole)]}))
    stats = crawl(quick(site[0].url, tmp_path))
    assert site[0].hits["/img/1.jpg"] == 2  # asked again once
    assert stats.images == {"ok": 1} and stats.errors == {}
    with Catalogue.open(tmp_path, create=False) as cat:
        assert cat.errors() == []
