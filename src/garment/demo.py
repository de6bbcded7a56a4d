"""Demo: the main job end to end on the local demo shop: shop -> scrape -> classify -> report.

``run_demo(DemoConfig())`` starts the demo shop on 127.0.0.1, crawls it politely (robots.txt
obeyed, a delay suited to loopback), classifies the catalogue with the shipped model,
writes ``OUT/report.html`` and stops the shop. ``OUT/demo.json`` records which shop was
crawled; running again with the same shop reuses the stored catalogue and predictions
(an interrupted crawl is resumed), so only the report is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garment.catalogue_classify import CatalogueClassified, classify_catalogue
from garment.classify import ClassifyConfig
from garment.errors import GarmentError
from garment.scrape import CrawlConfig, CrawlStats
from garment.store import DB_NAME, Catalogue

STATE_FILE = "demo.json"
#: What the demo writes into its folder (and ``fresh`` removes).
DEMO_FILES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", "images", "models", "report.html",
              "report.json", "crawl.log", "crawl-config.json", STATE_FILE)

#: Progress callback: (stage, details); stages are "shop", "crawl", "classify", "report".
DemoProgress = Callable[[str, dict[str, Any]], None]


@dataclass
class DemoConfig:
    """How the demo runs; every default works offline on a fresh machine."""

    images: Path | None = None  # photo folder to sell; None: Fashion-MNIST test items
    out: Path = Path("demo-out")  # catalogue folder; the report is OUT/report.html
    n_products: int = 200  # built-in shop size (ignored with images: every photo is sold)
    seed: int = 0  # the built-in shop's catalogue follows from it
    blind: bool = False  # the shop's pages never name the class (ShopConfig.blind)
    delay: float = 0.05  # seconds between requests to one host: polite on loopback
    concurrency: int = 2  # simultaneous requests per host
    min_image_px: int = 48  # packshot's shorter side at least this (photo folders go to 60x80)
    fresh: bool = False  # discard what a previous demo stored in OUT and start again
    data_dir: Path | None = None  # Fashion-MNIST folder; None: the usual places
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)  # model, workers, ...

    def validate(self) -> None:
        if self.images is not None and not Path(self.images).is_dir():
            raise GarmentError(f"--images {self.images}: not a folder of product photos")
        if self.images is None and not 1 <= self.n_products <= 10_000:
            raise GarmentError(f"--products {self.n_products}: use 1 to 10000")
        if self.delay < 0 or not 1 <= self.concurrency <= 64:
            raise GarmentError(f"delay {self.delay} must be >= 0 and concurrency "
                               f"{self.concurrency} 1 to 64")
        self.classify.validate()

    def shop_key(self) -> dict[str, Any]:
        """What identifies the shop crawled: same key, same catalogue."""
        blind = {"blind": True} if self.blind else {}  # a blind shop's catalogue is another
        if self.images is not None:
            return {"images": str(Path(self.images).resolve()), **blind}
        return {"products": self.n_products, "seed": self.seed, **blind}


@dataclass
class DemoResult:
    """What a demo run did and where its report is."""

    out: Path
    report: Path
    shop_url: str | None  # None when the stored catalogue was reused
    reused: bool  # the crawl was skipped: the catalogue was complete
    crawl: CrawlStats | None
    classified: CatalogueClassified
    summary: dict[str, Any]  # the report's summary numbers (products, per_class, agreement)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


def _describe(key: dict[str, Any] | None) -> str:
    key = key or {}
    if "images" in key:
        return f"photos in {key['images']}"
    return f"{key.get('products')} built-in products, seed {key.get('seed')}"


def _prepare_folder(config: DemoConfig) -> bool:
    """Make OUT ready; True when it holds a complete crawl of the same shop."""
    out = Path(config.out)
    state_path = out / STATE_FILE
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else None
    has_catalogue = (out / DB_NAME).exists()
    if has_catalogue and state is None:
        raise GarmentError(f"{out} holds a catalogue that garment demo did not make; pass "
                           "another --out")
    if state is not None and (config.fresh or state.get("shop") != config.shop_key()):
        if not config.fresh:
            raise GarmentError(f"{out} holds the demo of another shop ({_describe(state.get('shop'))}"
                               f", not {_describe(config.shop_key())}); pass another --out, or "
                               "--fresh to replace it")
        for name in DEMO_FILES:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        return False
    if not has_catalogue:
        return False
    with Catalogue.open(out, create=False) as cat:
        runs = cat.runs()
    return bool(runs) and runs[-1]["status"] == "finished"


def _crawl(config: DemoConfig, progress: DemoProgress | None) -> tuple[str, CrawlStats]:
    from garment.scrape import crawl
    from garment.shop import ShopConfig, start_shop

    shop_config = ShopConfig(images=config.images, n_products=config.n_products,
                             seed=config.seed, data_dir=config.data_dir, blind=config.blind)
    with start_shop(shop_config) as shop:
        if progress:
            progress("shop", {"url": shop.url, "products": len(shop.products)})
        state = {"shop": config.shop_key(), "url": shop.url, "products": len(shop.products)}
        (Path(config.out) / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        crawl_config = CrawlConfig([shop.url], out=Path(config.out), delay=config.delay,
                                   concurrency=config.concurrency,
                                   min_image_px=config.min_image_px, resume=True)
        stats = crawl(crawl_config, progress=(lambda e: progress("crawl", e)) if progress else None)
        return shop.url, stats


def run_demo(config: DemoConfig | None = None, progress: DemoProgress | None = None) -> DemoResult:
    """Shop -> crawl -> classify -> report into ``config.out``; the shop is stopped on return."""
    from garment.report import ReportConfig, write_report

    config = config or DemoConfig()
    config.validate()
    out = Path(config.out)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    reused = _prepare_folder(config)
    out.mkdir(parents=True, exist_ok=True)
    shop_url, stats = None, None
    if not reused:
        shop_url, stats = _crawl(config, progress)
    timings["crawl"] = round(time.monotonic() - t0, 2)

    t1 = time.monotonic()
    classified = classify_catalogue(
        out, config=config.classify,
        progress=(lambda done, total: progress("classify", {"done": done, "total": total}))
        if progress else None)
    timings["classify"] = round(time.monotonic() - t1, 2)

    t2 = time.monotonic()
    if progress:
        progress("report", {})
    files = write_report(ReportConfig(catalogue=out, model=classified.model_id))
    timings["report"] = round(time.monotonic() - t2, 2)
    timings["total"] = round(time.monotonic() - t0, 2)
    return DemoResult(out, files.html, shop_url, reused, stats, classified,
                      files.data["summary"], timings)
