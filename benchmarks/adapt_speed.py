"""How long `garment adapt` takes for a 1,000-product shop on this machine (target: at most 3 minutes on 2 cores).

    python benchmarks/adapt_speed.py [--products 1000] [--json r.json]

Serves a blind demo shop of Fashion-MNIST packshots on 127.0.0.1 (names and descriptions only, no class on the
pages), crawls it, and times ``adapt_catalogue`` with its defaults: text labels, conversion of every packshot,
fine-tuning, the held-out and Fashion-MNIST measurements, the model folder. The baseline, measured in the same run,
is plain Fashion-MNIST training (``garment.train.train_epoch``, the shipped augmentation) over as many images as
the fine-tuning sees, so the ratio shows what mixing in the shop's photos costs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from garment.data import load_split
from garment.labels.adapt import AdaptConfig, adapt_catalogue
from garment.models import load_model
from garment.scrape import CrawlConfig, crawl
from garment.shop import ShopConfig, start_shop
from garment.train import preset, train_epoch

TARGET_S = 180.0


def plain_training_s(images: int, threads: int) -> float:
    """Seconds plain Fashion-MNIST training takes over ``images`` images (the shipped recipe)."""
    torch.set_num_threads(threads)
    model, _ = load_model(None)
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    cfg = preset("shipped", batch_size=AdaptConfig.batch_size)
    x, y = (torch.from_numpy(a.copy()) for a in load_split("train"))
    n = min(len(x), images, 20_000)  # enough for a steady rate; scaled to ``images``
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    t0 = time.perf_counter()
    train_epoch(model, opt, sched, x[:n], y[:n], cfg, torch.Generator().manual_seed(0))
    return (time.perf_counter() - t0) * images / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cfg = AdaptConfig()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "catalogue"
        with start_shop(ShopConfig(n_products=args.products, blind=True, seed=7)) as shop:
            t0 = time.perf_counter()
            stats = crawl(CrawlConfig([shop.url], out=folder, delay=0.0, concurrency=8, log_level="WARNING"))
            crawl_s = time.perf_counter() - t0
        stages: dict[str, float] = {}

        def progress(stage: str, done: int, total: int) -> None:
            stages.setdefault(stage, time.perf_counter())

        t0 = time.perf_counter()
        result = adapt_catalogue(folder, config=cfg, progress=progress)
        adapt_s = time.perf_counter() - t0
    images = cfg.steps * cfg.batch_size
    base_s = plain_training_s(images, cfg.threads)
    out = {"products": stats.products, "crawl_s": round(crawl_s, 1), "adapt_s": round(adapt_s, 1),
           "fine_tune_s": result.training["seconds"], "fine_tune_images": images,
           "plain_training_s_same_images": round(base_s, 1), "target_s": TARGET_S,
           "holdout_accuracy": result.holdout_accuracy, "fashion_mnist_accuracy": result.fashion_mnist_accuracy}
    print(f"shop: {stats.products} products crawled in {crawl_s:.1f} s")
    print(f"adapt: {adapt_s:.1f} s in all (fine-tuning {result.training['seconds']:.1f} s over {images:,} images); "
          f"target <= {TARGET_S:.0f} s: {adapt_s / TARGET_S:.2f}x the budget")
    print(f"baseline: plain Fashion-MNIST training over the same {images:,} images {base_s:.1f} s; "
          f"fine-tuning costs {result.training['seconds'] / base_s:.2f}x that")
    print(f"held-out accuracy {result.holdout_accuracy:.1%}, Fashion-MNIST {result.fashion_mnist_accuracy:.2%}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if adapt_s <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
