"""Classify: stream images through conversion and the model, batched, in worker processes.

Data flow: paths -> chunks -> worker processes (decode + convert + run the model on the
chunk as one batch) -> per-image ``Prediction`` rows, in input order. Workers send back only
probabilities and scores, a few dozen bytes per image, and at most ``2 * workers`` chunks are
in flight, so memory stays constant however many images there are. A per-image failure is a
row with ``status="error"``, never an exception.

Each worker runs the whole chain (decode, convert, network) with one inference thread: no
arrays cross processes and the cores never wait on each other.

The model, its ONNX export and the runtimes that run it are in ``garment.classify.engine``,
the input files and output rows in ``garment.classify.rows`` (both re-exported here);
labelling a catalogue's packshots is ``garment.classify.catalogue``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from garment import OTHER, OTHER_INDEX
from garment.classify.engine import (
    DEFAULT_MODEL_DIR,
    HEAD_VERSION,
    META_FILE,
    ONNX_FILE,
    ONNX_OPSET,
    OPENVINO_BATCH,
    RUNTIME_MODULES,
    WEIGHTS_FILE,
    Engine,
    EngineSpec,
    ModelInfo,
    describe_backend,
    export_onnx,
    openvino_precision,
    require_runtime,
    write_model_onnx,
)
from garment.classify.rows import (
    COLUMNS,
    FORMATS,
    IMAGE_SUFFIXES,
    Prediction,
    Summary,
    _image_files,
    iter_images,
    write_predictions,
)
from garment.errors import GarmentError

__all__ = [
    "BACKENDS", "COLUMNS", "DEFAULT_MODEL_DIR", "FORMATS", "HEAD_VERSION", "IMAGE_SUFFIXES", "IN_PROCESS_BELOW",
    "META_FILE", "ONNX_FILE", "ONNX_OPSET", "OPENVINO_BATCH", "RUNTIME_MODULES", "WEIGHTS_FILE",
    "Classifier", "ClassifyConfig", "Engine", "EngineSpec", "ModelInfo", "Prediction", "Summary",
    "classify", "cpu_count", "describe_backend", "export_onnx", "iter_images", "openvino_precision", "require_runtime",
    "write_model_onnx", "write_predictions",
]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "openvino", "onnx", "torch")
#: With ``workers=0`` (automatic), fewer images than this are classified in-process:
#: starting worker processes (about 0.4 s: a fork server, then OpenVINO in each) costs more
#: than a second core saves below about 700 photos (measured: 564 photos 0.72 s in-process
#: against 0.81-0.99 s with two workers; 1,000 photos 1.20-1.33 s against 0.97-0.99 s).
IN_PROCESS_BELOW = 700


@dataclass
class ClassifyConfig:
    """How to classify; every model constant comes from the model folder's card."""

    #: Model folder written by ``garment train``; None: the shipped default model.
    model_dir: Path | None = None
    #: In-scope score below which the label is "other"; None: the card's other["threshold"].
    threshold: float | None = None
    #: Worker processes decoding and classifying; 0: one per CPU core (in-process for
    #: fewer than IN_PROCESS_BELOW images); 1: everything in this process.
    workers: int = 0
    #: Images per inference batch (and per chunk sent to a worker).
    batch_size: int = 256
    #: "openvino" (OpenVINO on the ONNX export: bf16 on CPUs with native bf16, AVX-512 BF16 or
    #: AMX, where it runs the network ~2x faster than fp32; else fp32), "onnx" (ONNX Runtime,
    #: fp32), "torch" (eager PyTorch, fp32) or "auto": the first of these that is installed.
    backend: str = "auto"
    #: Where ONNX exports are cached; None: $XDG_CACHE_HOME/garment/onnx (~/.cache/garment/onnx).
    cache_dir: Path | None = None

    def validate(self) -> None:
        if self.workers < 0:
            raise GarmentError(f"workers must be 0 (automatic) or more, not {self.workers}")
        if self.batch_size < 1:
            raise GarmentError(f"batch size must be at least 1, not {self.batch_size}")
        if self.backend not in BACKENDS:
            raise GarmentError(f"backend {self.backend!r} unknown; use one of {', '.join(BACKENDS)}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise GarmentError(f"threshold must be a finite number, not {self.threshold}")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --------------------------------------------------------------------------- per chunk

_ENGINE: Engine | None = None


def _worker_init(spec: EngineSpec) -> None:
    global _ENGINE
    _ENGINE = Engine(spec)


def _run_chunk(
    sources: list[Any], engine: Engine | None = None
) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Convert and classify one chunk: (error per item or None, probs (n, C), score (n,)).

    Failed items get zero rows; they are masked out by their error.
    """
    from garment.convert import ConversionError, convert_views

    engine = engine or _ENGINE
    assert engine is not None, "worker not initialised"
    v = engine.views
    images = np.zeros((len(sources), v, 28, 28), dtype=np.uint8)
    errors: list[str | None] = []
    for i, src in enumerate(sources):
        try:
            if isinstance(src, np.ndarray):  # already converted: one image stands for every framing
                if src.shape not in ((28, 28), (v, 28, 28)):
                    raise ConversionError("unsupported", f"array of shape {src.shape}, not (28, 28) or ({v}, 28, 28)")
                images[i] = src
            else:
                images[i] = convert_views(src, engine.recipe)
            errors.append(None)
        except ConversionError as exc:
            errors.append(f"{exc.reason}: {exc}")
        except Exception as exc:  # noqa: BLE001 - per-item boundary: one bad file must not stop a run
            errors.append(f"internal: {type(exc).__name__}: {exc}")
    ok = [i for i, e in enumerate(errors) if e is None]
    probs = np.zeros((len(sources), 0), dtype=np.float32)
    score = np.zeros(len(sources), dtype=np.float32)
    if ok:
        p, s = engine(images[ok])
        probs = np.zeros((len(sources), p.shape[1]), dtype=np.float32)
        probs[ok], score[ok] = p, s
    return errors, probs, score


# --------------------------------------------------------------------------- classifier


class Classifier:
    """A model ready to classify: ``Classifier.load(dir).predict(images)``.

    ``predict`` takes paths, bytes, PIL images or converted (28, 28) uint8 arrays and runs in
    this process; ``stream`` takes paths and runs in worker processes with constant memory.
    """

    def __init__(self, spec: EngineSpec, card: ModelInfo, config: ClassifyConfig) -> None:
        self.spec, self.card, self.config = spec, card, config
        self.classes: list[str] = list(card.classes)
        other = card.other or {}
        if config.threshold is not None:
            self.threshold = float(config.threshold)
        elif "threshold" in other:
            self.threshold = float(other["threshold"])
        else:
            log.warning("model card has no other['threshold']: no image will be labelled %r", OTHER)
            self.threshold = -math.inf
        self._engine: Engine | None = None

    @classmethod
    def load(cls, model_dir: str | Path | None = None, config: ClassifyConfig | None = None) -> Classifier:
        """Read the model folder (None: the shipped default), export or reuse its ONNX graph."""
        from garment.convert import get_recipe

        config = ClassifyConfig(**{**asdict(config or ClassifyConfig())})
        if model_dir is not None:
            config.model_dir = Path(model_dir)
        config.validate()
        card = ModelInfo.read(config.model_dir)
        folder = card.folder
        get_recipe(card.recipe or None)  # an unknown recipe is a run-level error, raised now
        kind = config.backend
        if kind == "auto":
            # find_spec, not import: workers load the runtime, this process need not.
            kind = next((k for k in ("openvino", "onnx") if importlib.util.find_spec(RUNTIME_MODULES[k])), "torch")
            if kind == "torch":
                log.warning("neither openvino nor onnxruntime is installed: running the model in eager "
                            "PyTorch (several times slower); `pip install openvino` to speed it up")
        require_runtime(kind)  # now, before any output is written
        onnx_path = str(export_onnx(folder, config.cache_dir)) if kind != "torch" else None
        spec = EngineSpec(kind, str(folder), onnx_path, dict(card.recipe or {}))
        return cls(spec, card, config)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from dataclasses import replace

            self._engine = Engine(replace(self.spec, threads=min(4, cpu_count())))
        return self._engine

    def predict_arrays(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Converted images (N, 28, 28) uint8 -> (probs (N, C), score (N,)), in batches."""
        bs = self.config.batch_size
        parts = [self.engine(images[i : i + bs]) for i in range(0, len(images), bs)]
        if not parts:
            return np.zeros((0, len(self.classes)), np.float32), np.zeros(0, np.float32)
        return np.concatenate([p for p, _ in parts]), np.concatenate([s for _, s in parts])

    def predict(self, images: Iterable[Any]) -> list[Prediction]:
        """Classify images in this process: paths, bytes, PIL images or (28, 28) uint8 arrays."""
        out: list[Prediction] = []
        for chunk in _chunks(images, self.config.batch_size):
            names = [_name(s, len(out) + i) for i, s in enumerate(chunk)]
            out += self._predictions(names, *_run_chunk(chunk, self.engine))
        return out

    def stream(
        self,
        paths: Iterable[str | Path],
        total: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Iterator[Prediction]:
        """Classify image files, yielding predictions in input order with constant memory.

        ``total`` (when known) sizes the chunks so every worker gets work;
        ``progress(done, total)`` is called after each chunk.
        """
        workers = self.config.workers or cpu_count()
        if self.config.workers == 0 and total is not None and total < IN_PROCESS_BELOW:
            workers = 1
        size = self.config.batch_size
        if total is not None and workers > 1:
            # Four chunks per worker at least, so the last chunks do not leave a core idle.
            size = max(8, min(size, math.ceil(total / (4 * workers))))
        chunks = _chunks(map(str, paths), size)
        results = self._serial(chunks) if workers == 1 else self._parallel(chunks, workers)
        done = 0
        for names, (errors, probs, score) in results:
            yield from self._predictions(names, errors, probs, score)
            done += len(names)
            if progress:
                progress(done, total)

    def _serial(self, chunks: Iterator[list[str]]) -> Iterator[tuple[list[str], Any]]:
        for chunk in chunks:
            yield chunk, _run_chunk(chunk, self.engine)

    def _parallel(self, chunks: Iterator[list[str]], workers: int) -> Iterator[tuple[list[str], Any]]:
        # forkserver: workers fork from a small clean server, neither inheriting this process's
        # threads (unsafe with fork) nor re-importing everything per worker (slow with spawn).
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        if method == "forkserver":
            # Imported once in the server rather than once per worker.
            # Not openvino: it starts threads on import, and a fork of a threaded server hangs.
            runtime = [] if self.spec.kind == "openvino" else [RUNTIME_MODULES[self.spec.kind]]
            ctx.set_forkserver_preload(["__main__", "garment.classify", "garment.convert", *runtime])
        pending: deque[tuple[list[str], Future[Any]]] = deque()
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                 initargs=(self.spec,)) as pool:
            try:
                for chunk in chunks:
                    pending.append((chunk, pool.submit(_run_chunk, chunk)))
                    if len(pending) >= 2 * workers:  # bounded in flight: constant memory
                        names, fut = pending.popleft()
                        yield names, fut.result()
                while pending:
                    names, fut = pending.popleft()
                    yield names, fut.result()
            except BrokenProcessPool as exc:
                raise GarmentError(
                    "a worker process died (out of memory, or a decoder crash on one file); "
                    f"rerun with --workers 1 to find the file ({exc})"
                ) from exc
            finally:
                for _, fut in pending:
                    fut.cancel()

    def _predictions(
        self, names: list[str], errors: list[str | None], probs: np.ndarray, score: np.ndarray
    ) -> list[Prediction]:
        # Per chunk, not per image: the ranking, the in-scope test and the numbers as Python floats.
        top, top_p = [], []
        if probs.size:  # else every item failed
            ranks = np.argsort(-probs, axis=1, kind="stable")[:, :3]
            top, top_p = ranks.tolist(), np.take_along_axis(probs, ranks, 1).tolist()
        in_scope, scores = (score >= self.threshold).tolist(), score.tolist()
        out = []
        for i, (name, err) in enumerate(zip(names, errors, strict=True)):
            if err is not None:
                out.append(Prediction(name, None, None, None, None, "error", err))
                continue
            (best, *_), ps = top[i], top_p[i]
            ok = in_scope[i]
            out.append(Prediction(
                path=name,
                label=self.classes[best] if ok else OTHER,
                label_index=best if ok else OTHER_INDEX,
                confidence=round(ps[0], 4),
                top3="|".join(f"{self.classes[j]}:{q:.2f}" for j, q in zip(top[i], ps, strict=True)),
                status="ok",
                score=scores[i],
                probs=probs[i],
            ))
        return out


def cpu_count() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _name(src: Any, index: int) -> str:
    if isinstance(src, (str, Path)):
        return str(src)
    return f"<{type(src).__name__} {index}>"


# --------------------------------------------------------------------------- the whole run


def classify(
    paths: Iterable[str | Path],
    out: TextIO,
    config: ClassifyConfig | None = None,
    fmt: str = "csv",
    progress: Callable[[int, int | None], None] | None = None,
) -> Summary:
    """Classify every image under ``paths`` and write one row per image to ``out``.

    Raises GarmentError only for run-level problems (no images, unusable model); a file
    that cannot be classified is an "error" row, counted in the summary.
    """
    config = config or ClassifyConfig()
    if fmt not in FORMATS:
        raise GarmentError(f"format {fmt!r} unknown; use one of {', '.join(FORMATS)}")
    paths = list(paths)
    total = sum(1 for _ in _image_files(paths))  # a listing pass: cheap, and gives the bar a total
    if total == 0:
        raise GarmentError(f"no image files under {', '.join(map(str, paths))} "
                           f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    clf = Classifier.load(config=config)
    return write_predictions(clf.stream(_image_files(paths), total=total, progress=progress), out, fmt)
