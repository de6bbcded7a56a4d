"""Classify's engine: the model folder's card, its ONNX export, and the runtimes that run it.

The model runs as an ONNX export of ``InferenceHead`` (test-time views and the in-scope score
in one graph). A model folder may carry its own export (``model.onnx``, beside the weights:
the shipped model does, written by ``make model``/``make onnx``), used while its sidecar
(``model.onnx.json``) matches the weights' and the card's SHA-256 and the file's own; so
classifying with the shipped model needs neither PyTorch nor a writable cache. Any other
model is exported once into the user's ``$XDG_CACHE_HOME/garment/onnx`` (default
``~/.cache/garment/onnx``, mode 0700), keyed and checked the same way (``garment.cache``: a
stale or planted graph is exported again, never run); exporting needs PyTorch
(``garment[train]``). OpenVINO runs the graph (in bf16 on CPUs with native bf16, where that
halves the network's time), else ONNX Runtime (``garment[onnxruntime]``), else the same head
runs in eager PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from garment.cache import cached, is_valid, private_dir, sha256_file, sidecar_of, user_cache_dir
from garment.errors import GarmentError, ModelFileError, missing_extra

log = logging.getLogger(__name__)

ONNX_OPSET = 17
#: Bumped when InferenceHead's graph changes, so cached exports are redone.
HEAD_VERSION = 2
#: Where ONNX exports are cached; None: ``garment.cache.user_cache_dir() / "onnx"``, read at
#: each export (so $XDG_CACHE_HOME counts).
CACHE_DIR: Path | None = None
#: Images per OpenVINO inference: one static shape, compiled once (no per-shape work for a
#: run's last, shorter chunk), small enough that a batch's activations stay in a core's cache
#: (measured: 32 images a call run the network ~15% faster than 256).
OPENVINO_BATCH = 32
#: The module each backend runs on.
RUNTIME_MODULES = {"openvino": "openvino", "onnx": "onnxruntime", "torch": "torch"}

# --------------------------------------------------------------------------- model folder

#: File names of a model folder (as garment.models writes them; repeated here so that
#: classifying with a cached ONNX export never imports PyTorch, ~1 s of start-up).
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
DEFAULT_MODEL_DIR = Path(__file__).parent.parent / "weights" / "default"
#: A model folder's own ONNX export (with its sidecar ``model.onnx.json``), used while it matches.
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class ModelInfo:
    """What classification reads from a model folder's card (``model.json``)."""

    folder: Path
    arch: str
    arch_args: dict[str, Any]
    classes: list[str]
    recipe: dict[str, Any]
    other: dict[str, Any]

    @classmethod
    def read(cls, folder: str | Path | None) -> ModelInfo:
        folder = Path(folder) if folder else DEFAULT_MODEL_DIR
        meta, weights = folder / META_FILE, folder / WEIGHTS_FILE
        if not meta.is_file() or not weights.is_file():
            missing = META_FILE if not meta.is_file() else WEIGHTS_FILE
            raise ModelFileError(f"{folder}: no {missing}; pass a folder written by `garment train`")
        try:
            card = json.loads(meta.read_text())
            return cls(folder, card["arch"], dict(card.get("arch_args") or {}),
                       list(card["classes"]), dict(card.get("recipe") or {}),
                       dict(card.get("other") or {}))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{meta}: not a valid model card ({exc}); retrain or re-export it") from exc


# --------------------------------------------------------------------------- engines


@dataclass(frozen=True)
class EngineSpec:
    """Everything a worker process needs to rebuild the model: plain, picklable data."""

    kind: str  # "openvino" | "onnx" | "torch"
    model_dir: str | None
    onnx_path: str | None
    recipe: dict[str, Any]
    threads: int = 1


class Engine:
    """Runs the inference head on (N, V, 28, 28) uint8 images (V framings; (N, 28, 28) means V = 1):
    returns (probs (N, C), score (N,))."""

    def __init__(self, spec: EngineSpec) -> None:
        from garment.convert import get_recipe

        self.spec = spec
        # Resolved once per engine: the Recipe caches the conversion kernel's arguments.
        self.recipe = get_recipe(spec.recipe or None)
        self.views = len(self.recipe.get("framings"))
        if spec.kind == "openvino":
            self.core = _openvino().Core()
            self.precision = openvino_precision(self.core)
            # One compiled model per number of views (the recipe's; 1 for converted arrays).
            self.requests: dict[int, Any] = {}
            self._openvino_request(self.views)
        elif spec.kind == "onnx":
            try:
                import onnxruntime as ort
            except ImportError as exc:
                raise missing_extra("onnxruntime", "onnxruntime", "--backend onnx") from exc

            so = ort.SessionOptions()
            so.intra_op_num_threads = spec.threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.log_severity_level = 3
            self.session = ort.InferenceSession(spec.onnx_path, so, providers=["CPUExecutionProvider"])
        else:
            torch = _torch("--backend torch")
            from garment.models import InferenceHead, load_model

            # One thread per engine: eager PyTorch with more threads on a busy machine is
            # erratic, and parallelism comes from the worker processes.
            torch.set_num_threads(spec.threads)
            model, card = load_model(spec.model_dir)
            self.head = InferenceHead(model, card).eval()

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = images.astype(np.float32) / 255.0
        if x.ndim == 3:
            x = x[:, None]  # (N, 1, 28, 28): one framing
        if self.spec.kind == "openvino":
            return self._openvino_infer(x)
        if self.spec.kind == "onnx":
            probs, score = self.session.run(None, {"x": x})
            return probs, score
        import torch

        with torch.inference_mode():
            probs_t, score_t = self.head(torch.from_numpy(x))
        return probs_t.numpy(), score_t.numpy()

    def _openvino_request(self, views: int) -> Any:
        """The inference request for ``views`` views per image, compiled on first use for a
        static shape (OPENVINO_BATCH, views, 28, 28)."""
        if views not in self.requests:
            model = self.core.read_model(self.spec.onnx_path)
            model.reshape({"x": [OPENVINO_BATCH, views, 28, 28]})
            compiled = self.core.compile_model(model, "CPU", {
                "INFERENCE_NUM_THREADS": self.spec.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": self.precision,
                # Worker processes share the cores: pinning would put them all on the same one.
                "ENABLE_CPU_PINNING": False,
            })
            self.requests[views] = compiled.create_infer_request()
        return self.requests[views]

    def _openvino_infer(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, V, 28, 28) in OPENVINO_BATCH slices, the last one padded with blank images."""
        request, n = self._openvino_request(x.shape[1]), len(x)
        probs, score = [], []
        for i in range(0, max(n, 1), OPENVINO_BATCH):  # at least once: no images give (0, C) arrays
            part = x[i : i + OPENVINO_BATCH]
            if len(part) < OPENVINO_BATCH:
                part = np.concatenate([part, np.zeros((OPENVINO_BATCH - len(part), *x.shape[1:]), x.dtype)])
            out = request.infer({0: part})  # its arrays are the request's, reused: copy them
            probs.append(out[0][: n - i].copy())
            score.append(out[1][: n - i].copy())
        return np.concatenate(probs), np.concatenate(score)


def _openvino() -> Any:
    """OpenVINO's runtime without its model converter (``openvino.tools.ovc``). Importing the
    converter reports the import to Intel's usage telemetry from a child process (which waits
    up to 3 s where the network drops packets); garment reads ONNX with the runtime alone and
    sends nothing anywhere. A process that imported the converter before keeps it."""
    sys.modules.setdefault("openvino.tools.ovc", None)  # type: ignore[arg-type]
    try:
        import openvino
    except ImportError as exc:
        raise GarmentError("--backend openvino needs openvino, which is not installed: "
                           "pip install openvino (or reinstall garment)") from exc
    return openvino


#: The extra that installs each backend's runtime (openvino is a core dependency).
RUNTIME_EXTRAS = {"openvino": "", "onnx": "onnxruntime", "torch": "train"}


def require_runtime(kind: str) -> None:
    """Raise the one-line error naming the extra to install when ``kind``'s runtime is missing
    (checked without importing it: workers load the runtime, the caller need not)."""
    import importlib.util

    module = RUNTIME_MODULES[kind]
    if importlib.util.find_spec(module) is None:
        if not RUNTIME_EXTRAS[kind]:
            raise GarmentError(f"--backend {kind} needs {module}, which is not installed: pip install {module}")
        raise missing_extra(RUNTIME_EXTRAS[kind], module, f"--backend {kind}")


def _torch(needed_for: str) -> Any:
    """PyTorch, or the one-line error naming the extra that installs it."""
    try:
        import torch
    except ImportError as exc:
        raise missing_extra("train", "torch", needed_for) from exc
    return torch


def describe_backend(kind: str) -> str:
    """What runs the network, for reports: "openvino bf16", "openvino f32", "onnx fp32", "torch fp32"."""
    return f"openvino {openvino_precision()}" if kind == "openvino" else f"{kind} fp32"


def openvino_precision(core: Any = None) -> str:
    """The precision the openvino backend computes in: "bf16" on a CPU that does so natively
    (AVX-512 BF16, AMX), where it is about twice as fast as fp32; else "f32"."""
    caps = (core or _openvino().Core()).get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bf16" if "BF16" in caps else "f32"


def _cache_inputs(info: ModelInfo) -> dict[str, str]:
    """What an export is made from: the weights' SHA-256 and that of everything in the card
    that shapes the head's graph."""
    head = json.dumps([info.arch, info.arch_args, info.other, ONNX_OPSET, HEAD_VERSION], sort_keys=True, default=str)
    return {"weights_sha256": sha256_file(info.folder / WEIGHTS_FILE),
            "head_sha256": hashlib.sha256(head.encode()).hexdigest()}


def export_onnx(model_dir: Path | None, cache_dir: Path | None = None) -> Path:
    """The ONNX graph of the model's ``InferenceHead``: the folder's own ``model.onnx`` while it
    matches the weights and the card (``write_model_onnx``), else an export made once into the
    cache and, on later calls, returned after checking it against the weights, the card and its
    own hash (else it is redone). Exporting needs PyTorch."""
    info = ModelInfo.read(model_dir)
    inputs = _cache_inputs(info)
    own = info.folder / ONNX_FILE
    if is_valid(own, inputs):
        return own
    if own.exists():
        log.warning("%s does not match the weights or card beside it: exporting the model again", own)
    if cache_dir is not None:  # the caller's folder: created private, never re-permissioned
        folder = Path(cache_dir)
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise GarmentError(f"cannot create the ONNX cache folder {folder} ({exc.strerror or exc}); "
                               "pass a writable folder") from exc
    else:
        folder = private_dir(CACHE_DIR) if CACHE_DIR else private_dir(private_dir(user_cache_dir()) / "onnx")
    key = f"{inputs['weights_sha256'][:32]}-{inputs['head_sha256'][:12]}"
    try:
        return cached(folder / f"{key}.onnx", inputs, lambda tmp: _export(info.folder, tmp))
    except PermissionError as exc:
        raise GarmentError(f"cannot write the ONNX export in {folder} ({exc.strerror or exc}); "
                           "set XDG_CACHE_HOME to a writable folder of yours") from exc


def write_model_onnx(model_dir: Path | None) -> Path:
    """Write the model folder's own ONNX export (``model.onnx`` and its sidecar recording the
    weights' and card's SHA-256), so classifying with it needs neither PyTorch nor a cache.
    An export that already matches is kept as it is. Needs PyTorch."""
    info = ModelInfo.read(model_dir)
    target = info.folder / ONNX_FILE
    try:
        cached(target, _cache_inputs(info), lambda tmp: _export(info.folder, tmp))
        for path in (target, sidecar_of(target)):  # readable as the weights beside them are, not private
            path.chmod(0o644)
    except PermissionError as exc:
        raise GarmentError(f"cannot write {target} ({exc.strerror or exc}); "
                           "pass a model folder you can write to") from exc
    return target


def _export(folder: Path, target: Path) -> None:
    """Write the ONNX graph of the model in ``folder`` to ``target``."""
    import warnings

    torch = _torch(f"exporting the model in {folder} to ONNX (it has no matching {ONNX_FILE})")
    from garment.models import InferenceHead, load_model

    model, card = load_model(folder)
    head = InferenceHead(model, card).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter
        torch.onnx.export(
            head, (torch.zeros(2, _views(card.recipe), 28, 28),), str(target), dynamo=False, opset_version=ONNX_OPSET,
            input_names=["x"], output_names=["probs", "score"],
            dynamic_axes={"x": {0: "n", 1: "views"}, "probs": {0: "n"}, "score": {0: "n"}},
        )


# --------------------------------------------------------------------------- per chunk


def _views(recipe: dict[str, Any] | None) -> int:
    """Framings per photo in the recipe (the head's V)."""
    from garment.convert import get_recipe

    return len(get_recipe(recipe or None).get("framings"))  # get_recipe refuses an empty list
