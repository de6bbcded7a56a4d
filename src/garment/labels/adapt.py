"""Adapt: fine-tune a model on one shop's own packshots, labelled by the shop's own words.

A shop photographs every product the same way (light, angle, background, folding), and
that style is what separates its converted packshots from Fashion-MNIST. The products
whose text names their class confidently (``garment.labels.text``) are a labelled sample
of that style, so the network is fine-tuned on them:

- only confident text labels are trained on (``min_confidence``), with label smoothing
  and a small-loss filter: after a warm-up, the shop images whose loss is in the top
  ``drop_fraction`` of their batch (the likeliest wrong text labels) get no gradient;
- Fashion-MNIST replay (``replay_fraction`` of every batch, with the training
  augmentation) keeps the network from forgetting what it was trained on;
- products the text calls "other" (watches, belts, scarves...) are outlier exposure,
  pushed to a uniform guess as in training, next to the synthetic "other" images;
- a stratified ``holdout`` of the labelled products is never trained on: the adapted
  model's figures on it (and on Fashion-MNIST's test set) go into its card, its
  probabilities are calibrated on it (one temperature) and its "other" threshold is set
  on it, so the card's numbers are measured, not assumed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # PyTorch comes with the train extra: say so in one line
    from garment.errors import missing_extra

    raise missing_extra("train", "torch", "adapting a model to a shop") from exc

from garment import CLASSES
from garment.augment import AugmentConfig, augment, synthetic_others
from garment.errors import GarmentError
from garment.models import InferenceHead, ModelCard

#: Mirror, small shifts and zooms, mild contrast: a shop's own photos vary little.
SHOP_AUGMENT = AugmentConfig(hflip=0.5, affine=0.7, scale=(0.9, 1.05), aspect=0.06, shift=0.06, rotate=4.0,
                             gamma=0.3, gamma_range=(0.8, 1.25), blur=0.1, floor=0.0, erase=0.1, noise=0.1,
                             pairs=0.0)


@dataclass
class AdaptConfig:
    """How ``adapt`` fine-tunes; written into the adapted model's card."""

    min_confidence: float = 0.8  # text labels below this are not trained on
    min_labelled: int = 40  # refuse to adapt on fewer confident in-scope text labels
    min_classes: int = 2  # ... or on fewer distinct classes
    steps: int = 600  # optimiser steps (each one batch)
    batch_size: int = 192  # images per step, shop + replay + "other"
    replay_fraction: float = 0.4  # share of each batch drawn from Fashion-MNIST's training set
    other_fraction: float = 0.08  # share of each batch that is "other" (the shop's, else synthetic)
    other_weight: float = 0.5  # weight of the outlier-exposure loss
    lr: float = 1e-3  # peak LR (one-cycle): a tenth of training's, the network is already good
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    drop_fraction: float = 0.1  # small-loss filter: share of shop images per batch left out
    warmup_steps: int = 100  # steps before the small-loss filter starts
    holdout: float = 0.15  # share of labelled products kept for the card's figures
    keep_in_scope: float = 0.97  # "other" threshold keeps this share of held-out in-scope products
    seed: int = 0
    threads: int = 2
    bf16: bool = True
    augment: AugmentConfig = field(default_factory=lambda: dataclasses.replace(SHOP_AUGMENT))


@dataclass
class ShopSet:
    """A shop's converted packshots and their text labels, as ``adapt`` trains on them.

    ``views`` (N, V, 28, 28) uint8, the recipe's V framings of each packshot; ``labels``
    (N,) int64: a class index 0-9, -1 for "other", -2 for no (or no confident) label.
    """

    views: np.ndarray
    labels: np.ndarray
    product_ids: np.ndarray | None = None  # (N,) the catalogue product of each packshot, when from one

    def __post_init__(self) -> None:
        if self.views.ndim != 4 or self.views.shape[2:] != (28, 28) or len(self.views) != len(self.labels):
            raise GarmentError(f"shop set: views {self.views.shape} and labels {self.labels.shape} do not match")


UNLABELLED = -2
ProgressFn = Callable[[int, int], None]


def evidence_counts(labels: np.ndarray) -> dict[str, int]:
    """Confident text labels per class name (and "other")."""
    out = {c: int((labels == i).sum()) for i, c in enumerate(CLASSES)}
    out["other"] = int((labels == -1).sum())
    return out


def check_evidence(labels: np.ndarray, cfg: AdaptConfig) -> None:
    """Raise one clear line when there is too little text evidence to adapt on."""
    inscope = labels >= 0
    classes = len(set(labels[inscope].tolist()))
    if int(inscope.sum()) < cfg.min_labelled or classes < cfg.min_classes:
        raise GarmentError(
            f"too little text evidence to adapt: {int(inscope.sum())} of {len(labels)} products have a confident "
            f"text label in {classes} class(es) (need {cfg.min_labelled} in {cfg.min_classes}); add shop words "
            "with --labels-map FILE or classify without adapting")


def split_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, holdout) of the labelled items, stratified by label; classes with
    fewer than 4 items are all trained on."""
    rng = np.random.default_rng(seed)
    train, hold = [], []
    for c in sorted(set(labels[labels > UNLABELLED].tolist())):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(idx) * fraction)) if len(idx) >= 4 else 0
        hold.append(idx[:k])
        train.append(idx[k:])
    empty = np.zeros(0, np.int64)
    return (np.sort(np.concatenate(train)) if train else empty), (np.sort(np.concatenate(hold)) if hold else empty)


def _batch_views(views: torch.Tensor, idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One random framing per chosen item: (n, 1, 28, 28) floats in [0, 1]."""
    v = torch.randint(views.shape[1], (len(idx),), generator=g)
    return views[idx, v].float().div_(255.0).unsqueeze(1)


def _one_cycle(opt: torch.optim.Optimizer, cfg: AdaptConfig) -> Any:
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)


def fine_tune(model: nn.Module, shop: ShopSet, train_idx: np.ndarray, cfg: AdaptConfig,
              fmnist: tuple[np.ndarray, np.ndarray], progress: ProgressFn | None = None) -> dict[str, Any]:
    """Fine-tune ``model`` in place on the shop items ``train_idx`` with Fashion-MNIST replay."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    views = torch.from_numpy(shop.views)
    labels = torch.from_numpy(shop.labels)
    tr = torch.from_numpy(train_idx)
    inscope = tr[labels[tr] >= 0]
    others = tr[labels[tr] == -1]
    fx, fy = (torch.from_numpy(np.array(a)) for a in fmnist)  # a writable copy
    n_other = int(round(cfg.batch_size * cfg.other_fraction))
    n_replay = int(round(cfg.batch_size * cfg.replay_fraction))
    n_shop = cfg.batch_size - n_other - n_replay
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _one_cycle(opt, cfg)
    model.train()
    dropped = 0
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        si = inscope[torch.randint(len(inscope), (n_shop,), generator=g)]
        xs = augment(_batch_views(views, si, g), cfg.augment, g)
        ri = torch.randint(len(fx), (n_replay,), generator=g)
        xr = augment(fx[ri].float().div_(255.0).unsqueeze(1), AugmentConfig(), g, fy[ri])
        # "Other": the shop's own when the text named some, topped up with synthetic ones.
        n_own = min(n_other // 2, len(others)) if len(others) else 0
        xo_parts = [synthetic_others(n_other - n_own, xr, g)]
        if n_own:
            oi = others[torch.randint(len(others), (n_own,), generator=g)]
            xo_parts.append(augment(_batch_views(views, oi, g), cfg.augment, g))
        xb = torch.cat([xs, xr, *xo_parts]).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(xb).float()
        ls = F.cross_entropy(logits[:n_shop], labels[si], label_smoothing=cfg.label_smoothing, reduction="none")
        if step >= cfg.warmup_steps and cfg.drop_fraction > 0:
            # Small-loss filter (co-teaching's criterion): the shop images the network finds
            # hardest to fit are the likeliest wrong text labels.
            keep = ls.argsort()[: n_shop - int(n_shop * cfg.drop_fraction)]
            dropped += n_shop - len(keep)
            ls = ls[keep]
        lr_ = F.cross_entropy(logits[n_shop:n_shop + n_replay], fy[ri], label_smoothing=cfg.label_smoothing)
        lo = -F.log_softmax(logits[n_shop + n_replay:], 1).mean()
        loss = ls.mean() + lr_ + cfg.other_weight * lo
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress:
            progress(step + 1, cfg.steps)
    model.eval()
    seconds = time.perf_counter() - t0
    return {"steps": cfg.steps, "seconds": round(seconds, 1),
            "images_per_s": round(cfg.steps * cfg.batch_size / max(seconds, 1e-9)),
            "shop_images_dropped": dropped}


@torch.no_grad()
def head_outputs(model: nn.Module, card: ModelCard, views: np.ndarray, batch: int = 512) -> tuple[np.ndarray, ...]:
    """(probs (N, C), score (N,), logits (N, C)) through the card's inference head; the logits
    are averaged over framings and test-time views as the head's energy score averages them."""
    head = InferenceHead(model, card).eval()
    probs, scores, logits = [], [], []
    for i in range(0, len(views), batch):
        x = torch.from_numpy(views[i:i + batch]).float().div_(255.0)
        p, s = head(x)
        n, v = x.shape[:2]
        flat = x.reshape(n * v, 1, 28, 28)
        z = torch.cat([model(flat if t == "identity" else torch.flip(flat, dims=[3])) for t in head.views])
        probs.append(p.numpy())
        scores.append(s.numpy())
        logits.append(z.reshape(len(head.views), n, v, -1).mean((0, 2)).numpy())
    return tuple(np.concatenate(a) for a in (probs, scores, logits))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels`` (Guo et al.
    2017), by a search over a log grid: calibrated probabilities for fusion with text."""
    if len(labels) == 0:
        return 1.0
    z = torch.from_numpy(logits).float()
    y = torch.from_numpy(labels)
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 61))
    nll = [float(F.cross_entropy(z / t, y)) for t in grid]
    return float(grid[int(np.argmin(nll))])


@torch.no_grad()
def fashion_mnist_accuracy(model: nn.Module, card: ModelCard, data_dir: str | None = None) -> float:
    """Test-set accuracy through the inference head (as ``garment evaluate`` measures it)."""
    from garment.data import load_split

    x, y = load_split("test", data_dir)
    head = InferenceHead(model, card).eval()
    right = 0
    for i in range(0, len(x), 1000):
        p, _ = head(torch.tensor(x[i:i + 1000]).float().div_(255.0).unsqueeze(1))  # a copy: x may be read-only
        right += int((p.argmax(1).numpy() == y[i:i + 1000]).sum())
    return right / len(x)


# --------------------------------------------------------------------------- a catalogue

ADAPTED_DIR = "adapted"  # inside the catalogue folder: one folder per adaptation
StageFn = Callable[[str, int, int], None]  # (stage, done, total): "convert" then "train"


@dataclass
class AdaptResult:
    """What ``adapt_catalogue`` did and measured (also the adapted card's ``extra["adaptation"]``)."""

    model_dir: str
    base_model: str
    products: int
    packshots: int
    text_labelled: int  # products whose text named a label at any confidence
    trained_on: dict[str, int]  # confident text labels per label, training split
    held_out: int
    holdout_accuracy: float | None  # adapted model vs the held-out text labels (in scope)
    base_holdout_accuracy: float | None  # the base model on the same products
    fashion_mnist_accuracy: float
    base_fashion_mnist_accuracy: float | None
    threshold: float
    temperature: float
    seconds: float
    training: dict[str, Any] = field(default_factory=dict)
    #: Products whose packshot the fine-tuning never saw (held out, or no confident text label):
    #: where the adapted model's own accuracy can be measured without flattery. Written to
    #: ``untrained.json`` in the model folder, not the card.
    untrained_product_ids: list[int] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _shop_set(cat: Any, labeller: Any, recipe: dict[str, Any], min_confidence: float,
              progress: StageFn | None) -> tuple[ShopSet, int, int]:
    """The catalogue's converted packshots with their confident text labels; also
    (products, products with any text label)."""
    from garment.catalogue_classify import label_texts
    from garment.convert import ConversionError, convert_views

    texts = label_texts(cat, labeller)
    rows = list(cat.iter_images())
    views, labels, pids = [], [], []
    for i, img in enumerate(rows):
        t = texts.get(img.product_id)
        try:
            views.append(convert_views(img.path, recipe))
        except (ConversionError, OSError):
            continue  # a packshot classify cannot read either: nothing to learn from
        finally:
            if progress:
                progress("convert", i + 1, len(rows))
        ok = t is not None and t.label_index is not None and t.confidence >= min_confidence
        labels.append(int(t.label_index) if ok and t is not None else UNLABELLED)  # type: ignore[arg-type]
        pids.append(img.product_id)
    v = np.stack(views) if views else np.zeros((0, 2, 28, 28), np.uint8)
    n_text = sum(t.label is not None for t in texts.values())
    return ShopSet(v, np.asarray(labels, np.int64), np.asarray(pids, np.int64)), len(texts), n_text


def _calibrate(model: nn.Module, card: ModelCard, shop: ShopSet, hold: np.ndarray,
               cfg: AdaptConfig) -> tuple[float | None, float, float | None]:
    """(held-out in-scope accuracy, probability temperature, "other" threshold or None)."""
    idx = hold[shop.labels[hold] >= 0]
    if len(idx) == 0:
        return None, 1.0, None
    probs, scores, logits = head_outputs(model, card, shop.views[idx])
    y = shop.labels[idx]
    acc = float((probs.argmax(1) == y).mean())
    temperature = fit_temperature(logits, y)
    # Enough held-out products: the threshold keeps ``keep_in_scope`` of them in scope.
    thr = float(np.quantile(scores, 1.0 - cfg.keep_in_scope)) if len(idx) >= 30 else None
    return acc, temperature, thr


def adapt_catalogue(catalogue_dir: str | Path, base_model: str | Path | None = None,
                    config: AdaptConfig | None = None, labels_map: str | Path | None = None,
                    progress: StageFn | None = None) -> AdaptResult:
    """Fine-tune ``base_model`` (None: the shipped one) on the catalogue's own text-labelled
    packshots, write the adapted model under ``DIR/adapted/`` and make it the catalogue's model.

    Raises GarmentError when there is too little text evidence (saying how much there is).
    """
    import copy

    from garment.catalogue_classify import model_id, set_catalogue_model
    from garment.data import load_split
    from garment.labels import TextLabeller
    from garment.models import DEFAULT_MODEL_DIR, load_model, save_model
    from garment.store import Catalogue

    cfg = config or AdaptConfig()
    started = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    base_dir = Path(base_model) if base_model else DEFAULT_MODEL_DIR
    model, base_card = load_model(base_dir)
    labeller = TextLabeller(labels_map)
    with Catalogue.open(catalogue_dir, create=False) as cat:
        shop, n_products, n_text = _shop_set(cat, labeller, base_card.recipe, cfg.min_confidence, progress)
        check_evidence(shop.labels, cfg)
        fmnist = load_split("train", (base_card.train_config or {}).get("data_dir"))
        train_idx, hold = split_holdout(shop.labels, cfg.holdout, cfg.seed)
        base_acc, _, _ = _calibrate(model, base_card, shop, hold, cfg)
        base_fm = (base_card.metrics or {}).get("fashion_mnist_test_accuracy")
        training = fine_tune(model.to(memory_format=torch.channels_last),  # type: ignore[call-overload]
                             shop, train_idx, cfg, fmnist,
                             (lambda d, n: progress("train", d, n)) if progress else None)
        model = model.to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
        card = copy.deepcopy(base_card)
        card.created = datetime.now(UTC).isoformat(timespec="seconds")
        acc, temperature, thr = _calibrate(model, card, shop, hold, cfg)
        if thr is not None:
            how = (f"{1 - cfg.keep_in_scope:.0%} quantile of the {card.other.get('score')} score on the shop's "
                   "held-out text-labelled products")
            card.other.update(threshold=thr, how=how)
        fm = fashion_mnist_accuracy(model, card, (base_card.train_config or {}).get("data_dir"))
        result = AdaptResult(
            model_dir="", base_model=model_id(base_dir), products=n_products, packshots=len(shop.labels),
            text_labelled=n_text, trained_on=evidence_counts(shop.labels[train_idx]), held_out=len(hold),
            holdout_accuracy=acc, base_holdout_accuracy=base_acc, fashion_mnist_accuracy=fm,
            base_fashion_mnist_accuracy=base_fm, threshold=float(card.other.get("threshold", 0.0)),
            temperature=temperature, seconds=0.0, training=training,
            config=json.loads(json.dumps(dataclasses.asdict(cfg), default=str)))
        out = _next_folder(cat.folder / ADAPTED_DIR)
        result.model_dir = str(out)
        assert shop.product_ids is not None
        trained = np.zeros(len(shop.labels), bool)
        trained[train_idx] = True
        result.untrained_product_ids = sorted(int(p) for p in shop.product_ids[~trained])
        result.seconds = round(time.perf_counter() - started, 1)
        card.metrics = {**{k: v for k, v in (card.metrics or {}).items() if k != "real_photo"},
                        "fashion_mnist_test_accuracy": fm, "shop_holdout_accuracy": acc}
        card.extra = {**(card.extra or {}), "fusion": {"temperature": temperature},
                      "adaptation": {**{k: v for k, v in result.as_dict().items() if k != "untrained_product_ids"},
                                     "labeller": labeller.version}}
        save_model(out, model, card)
        (out / "untrained.json").write_text(json.dumps(result.untrained_product_ids) + "\n")
        set_catalogue_model(cat, out)
    return result


def _next_folder(parent: Path) -> Path:
    """``parent/shop-N`` for the first unused N (a model folder's name starts its model id)."""
    n = 1
    while (parent / f"shop-{n}").exists():
        n += 1
    return parent / f"shop-{n}"
