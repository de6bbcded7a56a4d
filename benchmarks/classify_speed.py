"""Throughput of `garment classify`: JPEG files on disk to labels, against a naive baseline.

Measures end to end (listing, model load, worker start-up, decode, convert, inference,
labels written as CSV to /dev/null) on the development photos and on a larger set of
--n files made from them (symlinks in a temp dir, removed afterwards; the large set also with
the ONNX Runtime backend, for comparison with the default OpenVINO one), and in the same run
a naive baseline: per image a full decode (`Image.open(p).convert("L")`), a plain
`resize((28, 28))`, inversion and the eager PyTorch model at batch size 1, with PyTorch's
default threads (the baseline) and with one thread (a stronger reference, also reported).

The large set runs --repeat times, each in a fresh Python process (so each pays the whole
start-up: fork server, workers, OpenVINO), each after its own measure of the baseline; the
medians are compared with the targets, and every run is printed.

Targets on a 2-core machine: >= 1,500 images/s and >= 5x the baseline.

    python benchmarks/classify_speed.py [--model DIR] [--photos DIR] [--n 10000] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = Path(os.environ.get("GARMENT_DEV_PHOTOS", REPO.parent / "shared" / "realphotos-dev"))
TARGET_RATE = 1500.0  # images/s
TARGET_RATIO = 5.0  # x the naive baseline


def model_folder(arg: Path | None, scratch: Path) -> tuple[Path, str]:
    """The model to time: --model, else the shipped one, else an untrained one of the same
    architecture (throughput does not depend on the weights' values)."""
    from garment.models import DEFAULT_MODEL_DIR, META_FILE, ModelCard, create_model, save_model

    if arg:
        return arg, str(arg)
    if (DEFAULT_MODEL_DIR / META_FILE).is_file():
        return DEFAULT_MODEL_DIR, "shipped default"
    card = ModelCard("default", other={"score": "msp", "threshold": 0.5, "tta": ["identity", "hflip"]})
    return save_model(scratch / "untrained", create_model("default"), card), "untrained default (no shipped model)"


def naive(paths: list[Path], model_dir: Path, threads: int | None = None) -> float:
    """Images/s of the naive pipeline: full decode, plain resize, eager torch at batch size 1.

    ``threads`` None leaves PyTorch's default (one thread per core), as naive code does.
    """
    import torch
    from PIL import Image, ImageOps

    from garment.models import InferenceHead, load_model

    if threads:
        torch.set_num_threads(threads)
    model, card = load_model(model_dir)
    head = InferenceHead(model, card).eval()
    threshold = float(card.other.get("threshold", 0.0))
    labels = []
    start = time.perf_counter()
    with torch.inference_mode():
        for p in paths:
            img = ImageOps.invert(Image.open(p).convert("L").resize((28, 28)))
            x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None, None]
            probs, score = head(x)
            labels.append(int(probs.argmax()) if float(score) >= threshold else -1)
    return len(paths) / (time.perf_counter() - start)


def fast(paths: list[Path], model_dir: Path, workers: int, batch_size: int, backend: str = "auto") -> float:
    """Images/s of garment's pipeline, end to end, rows written as CSV to /dev/null."""
    from garment.classify import ClassifyConfig, classify

    config = ClassifyConfig(model_dir=model_dir, workers=workers, batch_size=batch_size, backend=backend)
    start = time.perf_counter()
    with open(os.devnull, "w") as out:
        summary = classify(paths, out, config)
    elapsed = time.perf_counter() - start
    if summary.failed:
        print(f"  note: {summary.failed} of {summary.n} failed", file=sys.stderr)
    return summary.n / elapsed


def fast_fresh(folder: Path, model_dir: Path, workers: int, batch_size: int, backend: str = "auto") -> float:
    """``fast`` on a folder in a new Python process: the run pays every start-up cost itself."""
    code = ("import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "from classify_speed import fast; "
            "print(json.dumps(fast([Path(sys.argv[2])], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), "
            "sys.argv[6])))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(folder), str(model_dir),
                          str(workers), str(batch_size), backend], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def stage_costs(photos: list[Path], model_dir: Path) -> dict[str, float]:
    """Milliseconds of one core per photo: decoding alone, the whole conversion (decoding
    included) and the network (every framing and view) in each backend, best of three."""
    import importlib.util
    from dataclasses import replace

    from garment.classify import RUNTIME_MODULES, Classifier, Engine
    from garment.convert import convert_views, get_recipe, open_image

    spec = Classifier.load(model_dir).spec
    data = [p.read_bytes() for p in photos]
    recipe = get_recipe(spec.recipe or None)  # resolved once, as each worker's engine does
    draft = int(recipe.get("draft_size"))

    def best(fn: Any, n: int) -> float:
        fn()  # warm: compiled kernels, the engine's first shape
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times) / n * 1e3

    out = {"decode": best(lambda: [open_image(d, draft) for d in data], len(data))}
    out["convert"] = best(lambda: [convert_views(d, recipe) for d in data], len(data))
    views = np.stack([convert_views(d, recipe) for d in data[:256]])
    for kind in ("openvino", "onnx"):
        if importlib.util.find_spec(RUNTIME_MODULES[kind]) is None:
            continue  # not installed here
        engine = Engine(replace(spec, kind=kind, threads=1))
        out[f"network ({kind})"] = best(lambda: engine(views), len(views))  # noqa: B023
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder with labels.csv")
    ap.add_argument("--n", type=int, default=10_000, help="size of the larger set")
    ap.add_argument("--workers", type=int, default=0, help="0: one per CPU core")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the large set (and of the baseline)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()

    photos = sorted((args.photos / "images").rglob("*.jpg"))
    if not photos:
        print(f"skipped: no photos under {args.photos}/images (set GARMENT_DEV_PHOTOS)")
        return 0
    with tempfile.TemporaryDirectory(prefix="garment-bench-") as tmp:
        scratch = Path(tmp)
        model_dir, model_name = model_folder(args.model, scratch)
        from garment.classify import export_onnx

        export_onnx(model_dir)  # a one-off per model, cached: not part of a run's cost
        large = scratch / "large"
        large.mkdir()
        for i in range(args.n):
            (large / f"{i:06d}.jpg").symlink_to(photos[i % len(photos)])
        from garment.classify import Classifier, describe_backend

        backend = describe_backend(Classifier.load(model_dir).spec.kind)
        print(f"model: {model_name}; {os.cpu_count()} CPU cores; {platform.processor() or platform.machine()}; "
              f"network on {backend}")
        import torch

        default_threads = torch.get_num_threads()
        # Naive as written: PyTorch's default threads (at batch size 1 these mostly synchronise,
        # so it is slow), over every dev photo. Each run of the large set follows its own measure.
        bases, bigs = [], []
        for run in range(1, args.repeat + 1):
            bases.append(naive(photos, model_dir))
            bigs.append(fast_fresh(large, model_dir, args.workers, args.batch_size))
            print(f"run {run}: naive baseline {len(photos)} files {bases[-1]:6.0f} images/s "
                  f"(torch default, {default_threads} threads); garment {args.n} files {bigs[-1]:6.0f} images/s "
                  f"({bigs[-1] / bases[-1]:.1f}x)")
        base, big = statistics.median(bases), statistics.median(bigs)
        print(f"naive baseline      {len(photos):>6} files  {base:8.0f} images/s  (median of {args.repeat})")
        # The same with one torch thread: a far stronger baseline, shown for honesty.
        base1 = naive(photos, model_dir, threads=1)
        print(f"naive, 1 thread     {len(photos):>6} files  {base1:8.0f} images/s")
        dev = fast(photos, model_dir, args.workers, args.batch_size)
        print(f"garment (dev set)   {len(photos):>6} files  {dev:8.0f} images/s  "
              f"{dev / base:5.1f}x naive  {dev / base1:4.1f}x naive 1-thread")
        print(f"garment (large set) {args.n:>6} files  {big:8.0f} images/s  "
              f"{big / base:5.1f}x naive  {big / base1:4.1f}x naive 1-thread  ({backend}; median of {args.repeat})")
        # The same with ONNX Runtime (fp32) running the network, for comparison.
        big_onnx = fast_fresh(large, model_dir, args.workers, args.batch_size, backend="onnx")
        print(f"  with onnx backend {args.n:>6} files  {big_onnx:8.0f} images/s  "
              f"{big_onnx / base:5.1f}x naive")
        stages = stage_costs(photos, model_dir)
        print("per photo, one core: " + ", ".join(f"{k} {v:.2f} ms" for k, v in stages.items()))
    ok = big >= TARGET_RATE and big / base >= TARGET_RATIO
    print(f"targets: >= {TARGET_RATE:.0f} images/s and >= {TARGET_RATIO:.0f}x the naive baseline: "
          f"{'met' if ok else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({
            "model": model_name, "cpu_count": os.cpu_count(), "baseline_images_per_s": base,
            "baseline_torch_threads": default_threads, "baseline_1thread_images_per_s": base1,
            "ratio_1thread": big / base1,
            "dev_images_per_s": dev, "dev_n": len(photos), "large_images_per_s": big,
            "large_n": args.n, "ratio": big / base, "targets_met": ok, "backend": backend,
            "large_onnx_images_per_s": big_onnx, "stage_ms_per_photo": stages,
            "runs": [{"baseline_images_per_s": b, "large_images_per_s": g} for b, g in zip(bases, bigs, strict=True)],
            "workers": args.workers, "batch_size": args.batch_size,
        }, indent=2) + "\n")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
