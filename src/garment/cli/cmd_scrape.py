"""``garment scrape``: crawl a shop into a catalogue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from garment.cli import app, catalogue_option


@app.command("scrape")
def scrape_cmd(
    urls: Annotated[list[str] | None, typer.Argument(
        help="A shop's home page, a category listing or a sitemap (several allowed; "
             "optional with --site when the profile lists start URLs).",
        show_default=False)] = None,
    out: Annotated[str, typer.Option("--out", help="Catalogue folder, or a postgresql:// URL (with "
                                                   "--images).")] = "catalogue",
    images: Annotated[Path | None, typer.Option(
        "--images", help="With --out postgresql://...: the folder for the catalogue's images (and models), "
                         "reachable by every process using the catalogue.", show_default=False)] = None,
    max_products: Annotated[int | None, typer.Option(
        "--max-products", min=1, help="Stop after storing N products.")] = None,
    max_pages: Annotated[int, typer.Option(
        "--max-pages", min=0, help="Page budget: stop after requesting N pages (0: no "
                                   "budget).")] = 50_000,
    max_depth: Annotated[int, typer.Option(
        "--max-depth", min=0, help="Follow links at most N hops from a start URL (0: no "
                                   "limit).")] = 100,
    max_barren_hops: Annotated[int, typer.Option(
        "--max-barren-hops", min=0, help="Trap rule: at most N hops through pages without "
                                         "a product since the last product page (0: off).")
    ] = 10,
    max_query_variants: Annotated[int, typer.Option(
        "--max-query-variants", min=0, help="Trap rule: at most N query strings per path "
                                            "(0: off).")] = 500,
    max_id_variants: Annotated[int, typer.Option(
        "--max-id-variants", min=0, help="Trap rule: at most N distinct minted ids "
                                         "(session tokens) at one place of a path, as in "
                                         "/s/<id>/... (0: off).")
    ] = 3,
    max_segment_repeats: Annotated[int, typer.Option(
        "--max-segment-repeats", min=0, help="Trap rule: one path segment at most N times, "
                                             "as in /a/b/a/b/... (0: off).")] = 3,
    max_links_per_page: Annotated[int, typer.Option(
        "--max-links-per-page", min=0, help="Read at most N links of one page (0: "
                                            "all).")] = 1_000,
    delay: Annotated[float, typer.Option(
        "--delay", min=0, help="Seconds between requests to one host (robots.txt "
                               "Crawl-delay raises it).")] = 1.0,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", min=1, max=64, help="Simultaneous requests per host.")] = 2,
    readers: Annotated[int | None, typer.Option(
        "--readers", min=0, max=64, show_default=False,
        help="Processes that read pages (parse, extract, rank pictures) and check "
             "packshots beside the crawler's own; 0: all in it. Default: one per other "
             "core, up to 3.")] = None,
    user_agent: Annotated[str | None, typer.Option(
        "--user-agent", help="User-Agent header (default: garment/VERSION (+project URL)).",
        show_default=False)] = None,
    site: Annotated[Path | None, typer.Option(
        "--site", help="Site profile (.toml): start URLs, selectors, pagination, CDN "
                       "rewrites.")] = None,
    ignore_robots: Annotated[bool, typer.Option(
        "--ignore-robots", help="Do not obey robots.txt (only for shops that allowed "
                                "it).")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Carry on: skip products already stored with a packshot.")] = False,
    min_image_px: Annotated[int, typer.Option(
        "--min-image-px", min=1, help="Smallest packshot kept (shorter side, pixels); the "
                                      "largest rendition is preferred.")] = 28,
    max_image_px: Annotated[int, typer.Option(
        "--max-image-px", min=1, help="Largest packshot kept (longer side, pixels): the "
                                      "largest rendition within it is downloaded.")] = 10_000,
    render: Annotated[str, typer.Option(
        "--render", help="JavaScript pages: auto (render in Chromium only pages without "
                         "product links or markup that look script-built), never, always. "
                         "Needs /usr/bin/chromium.")] = "auto",
    json_summary: Annotated[bool, typer.Option(
        "--json", help="Print the crawl's stats as one JSON object on standard output (instead "
                       "of the table).")] = False,
    feed: Annotated[list[str] | None, typer.Option(
        "--feed", help="A product feed to read products and images from (Google Merchant "
                       "XML or TSV; several allowed).", show_default=False)] = None,
    frontier: Annotated[str | None, typer.Option(
        "--frontier", help="Shared frontier, redis://HOST:PORT/DB: every process started "
                           "with the same URL and start URLs crawls the shop together "
                           "(needs garment[scale]).", show_default=False)] = None,
    frontier_status: Annotated[bool, typer.Option(
        "--status", help="With --frontier: show the frontier (queued, seen, workers, rates, "
                         "hosts) and exit.")] = False,
    frontier_reset: Annotated[bool, typer.Option(
        "--reset", help="With --frontier: empty the frontier for a new crawl (no worker may "
                        "be running) and exit.")] = False,
) -> None:
    """Crawl a shop politely into a catalogue: products, packshots, errors (a SQLite folder, or
    PostgreSQL: --out postgresql://... --images DIR, shared by many crawler processes).

    Exit status: 0 when products were stored; 1 when none was (one line says why: host
    unreachable, robots.txt forbids it, no product markup) or the setup failed (a bad site
    profile, an unwritable --out); 130 on Ctrl-C (the run is recorded as interrupted: carry
    on with --resume); 2 on a bad option.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from garment.cli import is_quiet
    from garment.scrape import CrawlConfig, CrawlInterrupted, crawl

    err = Console(stderr=True)
    if frontier_status or frontier_reset:
        _frontier_command(frontier, frontier_reset, json_summary)
        return
    from garment.store import describe, is_url

    if is_url(out) and images is None:
        raise typer.BadParameter("a PostgreSQL catalogue keeps its images in a folder: pass --images DIR",
                                 param_hint="--images")
    config = CrawlConfig(start_urls=list(urls or []), out=catalogue_option(out, images), max_products=max_products,
                         max_pages=max_pages or None, max_depth=max_depth,
                         max_barren_hops=max_barren_hops,
                         max_query_variants=max_query_variants,
                         max_id_variants=max_id_variants,
                         max_segment_repeats=max_segment_repeats,
                         max_links_per_page=max_links_per_page, delay=delay,
                         concurrency=concurrency, site=site, ignore_robots=ignore_robots,
                         resume=resume)
    config.min_image_px = min_image_px
    config.max_image_px = max_image_px
    config.render = render
    config.readers = readers
    config.feeds = list(feed or [])
    config.frontier = frontier
    if user_agent:
        config.user_agent = user_agent
    if ignore_robots:
        err.print("[bold red]WARNING: --ignore-robots: robots.txt will NOT be obeyed. Crawl "
                  "only a shop whose owner allowed it.[/]")
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=True,
                      disable=is_quiet() or not err.is_terminal) as bar:
            task = bar.add_task("starting the crawler")

            def progress(event: dict[str, Any]) -> None:
                images = event.get("images") or {}
                bar.update(task, description=(
                    f"pages {event.get('pages', 0)}  products {event.get('products', 0)}  "
                    f"images {images.get('ok', 0)} ok / {sum(images.values())}  "
                    f"errors {event.get('errors', 0)}"))

            stats = crawl(config, progress=progress)
    except CrawlInterrupted as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    if json_summary:
        typer.echo(json.dumps({"catalogue": describe(out), **stats.as_dict()}))
    else:
        _print_stats(stats.as_dict(), config)
        _print_limits(config, stats.skipped)
    if stats.problem:
        typer.echo(f"error: {stats.problem}", err=True)
        raise typer.Exit(1)


def _print_stats(stats: dict[str, Any], config: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    status = "nothing stored" if stats.get("problem") else stats["finish_reason"]
    table = Table(title=f"crawl run {stats['run_id']} ({status}, "
                        f"{stats['elapsed_s']:.1f} s)", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in ("pages", "products", "requests", "rendered", "robots_forbidden", "retries",
                "status_429", "status_503"):
        table.add_row(key.replace("_", " "), str(stats[key]))
    for status, n in sorted(stats["images"].items()):
        table.add_row(f"images {status}", str(n))
    for reason, n in sorted(stats["errors"].items()):
        table.add_row(f"errors {reason}", str(n))
    if stats.get("crawler_peak_mb"):
        table.add_row("crawler peak memory", f"{stats['crawler_peak_mb']:.0f} MB")
    if stats.get("readers"):
        table.add_row("page readers", f"{stats['readers']} processes, peak "
                      f"{stats['reader_peak_mb']:.0f} MB each at most")
    Console().print(table)
    from garment.store import DB_NAME, describe, is_url

    where = describe(config.out) if is_url(str(config.out)) else config.files / DB_NAME
    typer.echo(f"catalogue: {where} (log: {config.files / 'crawl.log'})")


def _print_limits(config: Any, skipped: dict[str, dict[str, int]]) -> None:
    """The crawl limits in force and, per rule, the URLs they kept the crawl from."""
    from garment.scrape.limits import TRAPS

    def n(value: int | None) -> str:
        return f"{value:,}" if value else "off"

    typer.echo(f"limits: pages {n(config.max_pages)}, depth {n(config.max_depth)}, "
               f"barren hops {n(config.max_barren_hops)}, query variants "
               f"{n(config.max_query_variants)}, id variants {n(config.max_id_variants)}, "
               f"segment repeats {n(config.max_segment_repeats)}, links per page "
               f"{n(config.max_links_per_page)}")
    for reason, sections in sorted(skipped.items(), key=lambda kv: -sum(kv[1].values())):
        kind = "trap" if reason in TRAPS else "limit"
        top = sorted(sections.items(), key=lambda kv: -kv[1])
        under = ", ".join(f"{s} ({c:,})" for s, c in top[:3]) + (", ..." if top[3:] else "")
        total = sum(sections.values())
        typer.echo(f"{kind} ({reason.replace('_', ' ')}): {total:,} URL{'s' * (total != 1)} "
                   f"skipped under {under}")



def _frontier_command(url: str | None, reset: bool, as_json: bool) -> None:
    """``--status`` / ``--reset`` of a shared frontier."""
    from garment.errors import GarmentError
    from garment.scrape import frontier

    if not url:
        raise GarmentError("--status and --reset need --frontier redis://HOST:PORT/DB")
    if reset:
        typer.echo(f"frontier {frontier.safe_url(url)} emptied ({frontier.reset(url)} keys)")
        return
    state = frontier.status(url)
    if as_json:
        typer.echo(json.dumps(state))
        return
    from rich.console import Console
    from rich.table import Table

    finished = f", finished {state['finished']}" if state["finished"] else ""
    typer.echo(f"frontier {state['frontier']}: {state['queued']:,} queued, {state['seen']:,} "
               f"seen, {state['in_flight']} in flight, {state['requeued']} requeued from "
               f"stopped workers{finished}")
    typer.echo(f"rates (last minute): {state['requests_per_s']} requests/s, "
               f"{state['products_per_s']} products/s; workers alive: {state['workers_alive']}")
    table = Table("worker", "alive", "in flight", "requests", "products", "requests/s")
    for w in state["workers"]:
        table.add_row(w["worker"], "yes" if w["alive"] else "no (lease expired)",
                      str(w["in_flight"]), str(w.get("requests", "")),
                      str(w.get("products", "")), str(w.get("requests_per_s", "")))
    Console().print(table)
    for host, seconds in state["hosts_next_s"].items():
        when = "now" if seconds <= 0 else f"in {seconds:.2f} s"
        typer.echo(f"host {host}: next request {when}")
