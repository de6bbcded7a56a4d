"""Models: the registry of networks and the self-describing model folder (safetensors + JSON)."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import torch
    from torch import nn
except ImportError as exc:  # PyTorch comes with the train extra: say so in one line
    from garment.errors import missing_extra

    raise missing_extra("train", "torch") from exc

from garment import CLASSES, __version__
from garment.errors import ModelFileError

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
#: The shipped default model, package data.
DEFAULT_MODEL_DIR = Path(__file__).parent / "weights" / "default"

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return deco


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered network; ``kwargs`` are its architecture arguments."""
    if name not in _REGISTRY:
        raise ModelFileError(f"model {name!r} unknown; use one of {', '.join(model_names())}")
    return _REGISTRY[name](**kwargs)


class Classic(nn.Module):
    """The original blog post's network, layer for layer (~3.3M parameters).

    conv 5x5x64 (same) + ReLU, max-pool 2; conv 5x5x64 (same) + ReLU, max-pool 2;
    dense 1024 + ReLU; dropout 0.4; dense 10. Trained with Adam at lr 1e-3.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 1024), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 1, 28, 28) in [0, 1]
        return self.head(self.features(x))


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """Two 3x3 conv-BN-ReLU layers with an identity shortcut."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(c, c), _conv_bn(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Compact(nn.Module):
    """garment's CPU network: a small residual CNN with BatchNorm and global pooling.

    Shapes for widths (w1, w2): 28x28x1 -> (3x3 stride 2) 14x14xw1 -> residual ->
    (3x3 stride 2) 7x7xw2 -> residual -> [global average, global max] -> dense.
    ~8M multiply-adds per image (the classic network: ~25M); with channels_last and
    bf16 autocast it trains an order of magnitude faster on a CPU.
    """

    def __init__(
        self,
        num_classes: int = 10,
        widths: tuple[int, int] | list[int] = (32, 64),
        blocks: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        w1, w2 = widths
        self.features = nn.Sequential(
            _conv_bn(1, w1, stride=2),
            *[Residual(w1) for _ in range(blocks)],
            _conv_bn(w1, w2, stride=2),
            *[Residual(w2) for _ in range(blocks)],
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * w2, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (N, 2*w2): the classifier's input, also used for "other" scores."""
        f = self.features(x)
        return torch.cat([f.mean((2, 3)), f.amax((2, 3))], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 1, 28, 28) in [0, 1]
        return self.fc(self.dropout(self.embed(x)))


@register("classic")
def classic(num_classes: int = 10) -> nn.Module:
    return Classic(num_classes)


@register("default")
def default(num_classes: int = 10, widths: tuple[int, int] | list[int] = (32, 64), blocks: int = 1,
            dropout: float = 0.1) -> nn.Module:
    return Compact(num_classes, tuple(widths), blocks, dropout)  # type: ignore[arg-type]


@dataclass
class ModelCard:
    """Everything ``model.json`` holds; classification reads every constant from it."""

    arch: str
    arch_args: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    #: Input recipe: {"name": ..., "version": ..., "params": {...}} (see garment.convert).
    recipe: dict[str, Any] = field(default_factory=dict)
    #: "Other" decision: {"score": ..., "threshold": ..., "how": ...}.
    other: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    garment_version: str = __version__
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    extra: dict[str, Any] = field(default_factory=dict)


def save_model(folder: str | Path, model: nn.Module, card: ModelCard) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"arch": card.arch})
    write_card(folder, card)
    return folder


def write_card(folder: str | Path, card: ModelCard) -> Path:
    """Write ``model.json`` (the card alone: the weights are untouched); returns its path."""
    meta = Path(folder) / META_FILE
    meta.write_text(json.dumps(card.__dict__, indent=2) + "\n")
    return meta


def read_card(folder: str | Path) -> ModelCard:
    folder = Path(folder)
    meta = folder / META_FILE
    if not meta.is_file():
        raise ModelFileError(f"{folder}: no {META_FILE}; pass a folder written by `garment train`")
    try:
        data = json.loads(meta.read_text())
        return ModelCard(**data)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ModelFileError(f"{meta}: not a valid model card ({exc}); retrain or re-export it") from exc


def load_model(folder: str | Path | None = None) -> tuple[nn.Module, ModelCard]:
    """Rebuild the network from the folder alone (no unpickling) and put it in eval mode."""
    from safetensors.torch import load_file

    folder = Path(folder) if folder else DEFAULT_MODEL_DIR
    card = read_card(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFileError(f"{folder}: no {WEIGHTS_FILE}; pass a folder written by `garment train`")
    model = create_model(card.arch, **card.arch_args)
    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as exc:
        raise ModelFileError(f"{weights}: weights do not fit {card.arch} {card.arch_args}") from exc
    model.eval()
    return model, card


class InferenceHead(nn.Module):
    """What classification runs: test-time views, class probabilities and the in-scope score.

    ``forward(x)`` takes (N, V, 28, 28) floats in [0, 1] (the V framings of a converted photo
    / 255; V = 1 for a Fashion-MNIST image) and returns ``(probs (N, C), score (N,))``.
    Probabilities are averaged over the framings and over the test-time views named in the
    card's ``other["tta"]`` ("identity", "hflip"). ``score`` says how sure the model is that
    the image is one of the classes: "msp" is the top probability, "energy" is
    ``T * logsumexp(mean logits / T)``. An image scoring below ``other["threshold"]`` is
    labelled "other". Everything is one graph, so an ONNX export carries it whole.

    ``other["size_prior"]`` ({"level": grey level, "floor": fraction}), when present, adds
    ``min(0, log(cover / floor))`` to the score, where ``cover`` is the fraction of the last
    framing's pixels above ``level`` (the whole packshot in a ["crop", "frame"] recipe):
    garments, shoes and bags cover a good part of a packshot, while watches, rings and
    sunglasses are small in theirs. Products covering at least ``floor`` are unaffected.
    """

    def __init__(self, model: nn.Module, card: ModelCard) -> None:
        super().__init__()
        self.model = model
        other = card.other or {}
        self.views = list(other.get("tta", ["identity"]))
        self.score_kind = other.get("score", "msp")
        self.temperature = float(other.get("temperature", 1.0))
        prior = other.get("size_prior") or {}
        self.prior_level = float(prior.get("level", 32)) / 255.0
        self.prior_floor = float(prior.get("floor", 0.0))
        unknown = set(self.views) - {"identity", "hflip"}
        if unknown or self.score_kind not in ("msp", "energy"):
            raise ModelFileError(f"model card: unknown tta {sorted(unknown)} or score {self.score_kind!r}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (N, V, 28, 28), one channel per framing of the photo (V = 1 for Fashion-MNIST).
        n, v = x.shape[0], x.shape[1]
        last = x[:, -1]  # the last framing: what the size prior measures
        x = x.reshape(n * v, 1, x.shape[2], x.shape[3])
        batch = torch.cat([x if t == "identity" else torch.flip(x, dims=[3]) for t in self.views])
        logits = self.model(batch).float().reshape(len(self.views), n, v, -1)
        probs = torch.softmax(logits, dim=-1).mean((0, 2))
        if self.score_kind == "msp":
            score = probs.amax(-1)
        else:
            t = self.temperature
            z = logits.mean((0, 2)) / t
            # logsumexp written out: OpenVINO reads ONNX's ReduceLogSumExp as a sum over all axes.
            top = z.amax(-1, keepdim=True)
            score = t * (top.squeeze(-1) + torch.log(torch.exp(z - top).sum(-1)))
        if self.prior_floor > 0:
            cover = (last > self.prior_level).float().mean((1, 2))
            score = score + torch.clamp(torch.log((cover + 1e-3) / self.prior_floor), max=0.0)
        return probs, score
