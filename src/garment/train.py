"""Train: fit a registered network on Fashion-MNIST and write a self-describing model folder.

One run: a validation split carved from the training set (seeded), augmentation that
models shop photos (garment.augment), synthetic "other" images for outlier exposure, a
one-cycle LR schedule, a checkpoint each epoch (safetensors + JSON, no pickles) that
``resume`` continues from, ``history.csv``, a learning-curve PNG, TensorBoard events when
tensorboard is installed, the test evaluation at the end and a calibrated "other"
threshold. The same seed and threads give the same weights.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # PyTorch comes with the train extra: say so in one line
    from garment.errors import missing_extra

    raise missing_extra("train", "torch", "training") from exc

from garment import CLASSES
from garment.augment import AugmentConfig, augment, synthetic_others
from garment.convert import DEFAULT_RECIPE, get_recipe
from garment.data import load_split
from garment.errors import GarmentError
from garment.models import InferenceHead, ModelCard, create_model, model_names, save_model

#: Mirror and small shifts only: the augmentation of the final epochs.
LIGHT_AUGMENT = AugmentConfig(hflip=0.5, affine=0.5, scale=(0.95, 1.05), aspect=0.05, shift=0.06, rotate=0.0,
                              gamma=0.0, blur=0.0, floor=0.0, erase=0.0, noise=0.0, pairs=0.0)


@dataclass
class TrainConfig:
    """Everything a training run depends on; written into the model file."""

    model: str = "default"
    arch_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 12
    batch_size: int = 256
    lr: float = 3e-3  # peak LR of the one-cycle schedule (constant for "constant")
    weight_decay: float = 5e-4
    optimizer: str = "adamw"  # adamw | adam
    schedule: str = "onecycle"  # onecycle | constant
    label_smoothing: float = 0.1
    seed: int = 0
    threads: int = 2
    train_limit: int | None = None  # use only the first N training images (after the split)
    val_size: int = 5000
    bf16: bool = True  # bf16 autocast (fp32 master weights)
    channels_last: bool = True
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    other_fraction: float = 0.125  # synthetic "other" images per batch, fraction of batch
    other_weight: float = 0.5  # weight of the outlier-exposure loss (uniform target)
    keep_in_scope: float = 0.95  # "other" threshold keeps this fraction of validation images
    tta: tuple[str, ...] = ("identity", "hflip")
    score: str = "energy"  # in-scope score: energy (logsumexp of logits) or msp (top probability)
    # Size prior on the in-scope score (see garment.models.InferenceHead); None: none.
    size_prior: dict[str, float] | None = None
    data_dir: str | None = None
    recipe_params: dict[str, Any] = field(default_factory=dict)  # conversion recipe overrides
    # The last ``final_epochs`` epochs train with ``final_augment`` (None: no augmentation):
    # after learning robustness from photo-like transforms at a high LR, the network settles
    # on Fashion-MNIST's own look while the LR anneals.
    final_epochs: int = 0
    final_augment: AugmentConfig | None = field(default_factory=lambda: dataclasses.replace(LIGHT_AUGMENT))


PRESETS: dict[str, dict[str, Any]] = {
    # The shipped default model (`make model`); docs/real-photo-accuracy.md says why each choice.
    "shipped": dict(
        arch_args={"widths": [48, 96]}, epochs=40, final_epochs=8,
        augment=AugmentConfig(affine=0.6, scale=(0.75, 1.05), gamma=0.4, blur=0.2, erase=0.1, noise=0.1, pairs=0.2),
        recipe_params={"framings": ["crop", "frame"]}, keep_in_scope=0.99,
        size_prior={"level": 32.0, "floor": 0.15},
    ),
    # The original blog post's recipe: its network, Adam at 1e-3, no augmentation, fp32.
    "classic": dict(model="classic", optimizer="adam", lr=1e-3, schedule="constant", batch_size=128,
                    label_smoothing=0.0, weight_decay=0.0, bf16=False, channels_last=False,
                    augment=None, other_fraction=0.0, tta=("identity",)),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    if name not in PRESETS:
        raise GarmentError(f"preset {name!r} unknown; use one of {', '.join(PRESETS)}")
    cfg = TrainConfig(**{**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}})
    if cfg.model not in model_names():
        raise GarmentError(f"--model {cfg.model!r} unknown; use one of {', '.join(model_names())}")
    return cfg


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_s: float


ProgressFn = Callable[[dict[str, Any]], None]


def _to_input(x_u8: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    x = x_u8.float().div_(255.0).unsqueeze(1)
    return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x


def _split(cfg: TrainConfig) -> tuple[torch.Tensor, ...]:
    x, y = load_split("train", cfg.data_dir)
    perm = np.random.default_rng(cfg.seed).permutation(len(x))
    n_val = min(cfg.val_size, len(x) // 10)  # a small dataset (garment dataset) keeps 90% to train on
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    if cfg.train_limit:
        tr_idx = tr_idx[: cfg.train_limit]
    t = torch.from_numpy
    return t(x[tr_idx]), t(y[tr_idx]), t(x[val_idx]), t(y[val_idx])  # fancy indexing copies


@torch.no_grad()
def predict_logits(model: nn.Module, x_u8: torch.Tensor, cfg: TrainConfig, batch: int = 1000) -> torch.Tensor:
    model.eval()
    out = []
    for i in range(0, len(x_u8), batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            out.append(model(_to_input(x_u8[i : i + batch], cfg)).float())
    return torch.cat(out)


def _make_optimizer(model: nn.Module, cfg: TrainConfig, steps: int) -> tuple[Any, Any]:
    if cfg.optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        raise GarmentError(f"optimizer {cfg.optimizer!r} unknown; use adamw or adam")
    if cfg.schedule == "onecycle":
        sched: Any = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.2)
    elif cfg.schedule == "constant":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    else:
        raise GarmentError(f"schedule {cfg.schedule!r} unknown; use onecycle or constant")
    return opt, sched


def train_epoch(model: nn.Module, opt: Any, sched: Any, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
                g: torch.Generator, progress: ProgressFn | None = None, epoch: int = 0) -> tuple[float, float, float]:
    """One pass over (x, y); returns (loss, accuracy, images/s)."""
    model.train()
    perm = torch.randperm(len(x), generator=g)
    n_other = int(round(cfg.batch_size * cfg.other_fraction))
    steps = len(x) // cfg.batch_size  # drop the last partial batch: fixed shapes, steady speed
    tot_loss = tot_correct = seen = 0.0
    t0 = time.perf_counter()
    for step in range(steps):
        idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        xb, yb = x[idx].float().div_(255.0).unsqueeze(1), y[idx]
        aug = cfg.final_augment if epoch > cfg.epochs - cfg.final_epochs else cfg.augment
        if aug is not None:
            xb = augment(xb, aug, g, yb)
        if n_other:
            xb = torch.cat([xb, synthetic_others(n_other, xb, g)])
        if cfg.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(xb).float()
        n = len(yb)
        loss = F.cross_entropy(logits[:n], yb, label_smoothing=cfg.label_smoothing)
        if n_other:
            # Outlier exposure (Hendrycks et al. 2019): push "other" images to a uniform guess.
            loss = loss - cfg.other_weight * F.log_softmax(logits[n:], 1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        tot_loss += loss.item() * n
        tot_correct += float((logits[:n].argmax(1) == yb).sum())
        seen += n
        if progress:
            progress({"epoch": epoch, "step": step + 1, "steps": steps, "loss": tot_loss / seen,
                      "acc": tot_correct / seen, "img_s": seen / (time.perf_counter() - t0)})
    return tot_loss / max(seen, 1), tot_correct / max(seen, 1), seen / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- checkpoints


def _save_checkpoint(folder: Path, model: nn.Module, opt: Any, sched: Any, g: torch.Generator,
                     epoch: int, history: list[EpochResult], cfg: TrainConfig) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            tensors[f"opt.{pid}.{k}"] = torch.as_tensor(v).contiguous()
    tensors["rng"] = g.get_state()
    tensors["torch_rng"] = torch.get_rng_state()  # dropout draws from the global generator
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "checkpoint.safetensors.tmp"
    save_file(tensors, str(tmp))
    meta = {"epoch": epoch, "history": [asdict(h) for h in history], "config": _config_dict(cfg),
            "param_groups": opt_state["param_groups"], "scheduler": sched.state_dict()}
    meta["scheduler"].pop("lr_lambdas", None)
    (folder / "checkpoint.json.tmp").write_text(json.dumps(meta))
    tmp.replace(folder / "checkpoint.safetensors")  # weights first, then the JSON naming the epoch
    (folder / "checkpoint.json.tmp").replace(folder / "checkpoint.json")


def _load_checkpoint(folder: Path, model: nn.Module, opt: Any, sched: Any,
                     g: torch.Generator) -> tuple[int, list[EpochResult]]:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "checkpoint.safetensors"))
    meta = json.loads((folder / "checkpoint.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    sched.load_state_dict(meta["scheduler"])
    g.set_state(tensors["rng"])
    torch.set_rng_state(tensors["torch_rng"])
    return int(meta["epoch"]), [EpochResult(**h) for h in meta["history"]]


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["tta"] = list(cfg.tta)
    return d


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    d = dict(d)
    for key in ("augment", "final_augment"):
        if d.get(key) is not None:
            d[key] = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v  # type: ignore[arg-type]
                                      for k, v in d[key].items()})
    d["tta"] = tuple(d.get("tta", ("identity",)))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in d.items() if k in known})


# --------------------------------------------------------------------------- the run


def train(cfg: TrainConfig, out: str | Path, resume: bool = False,
          progress: ProgressFn | None = None) -> ModelCard:
    """Train per ``cfg``, write the model folder ``out``, return its card."""
    out = Path(out)
    ckpt = out / "checkpoint"
    if resume and (ckpt / "checkpoint.json").is_file():
        saved = config_from_dict(json.loads((ckpt / "checkpoint.json").read_text())["config"])
        saved.threads = cfg.threads
        cfg = saved  # a resumed run continues its own recipe, schedule and length
    elif resume:
        raise GarmentError(f"--resume: no checkpoint in {ckpt}; start without --resume")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    x_tr, y_tr, x_val, y_val = _split(cfg)
    model = create_model(cfg.model, **cfg.arch_args)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    steps_per_epoch = len(x_tr) // cfg.batch_size
    if steps_per_epoch == 0:
        raise GarmentError(f"--batch-size {cfg.batch_size} is larger than the {len(x_tr)} training images; "
                           f"give --batch-size {min(64, len(x_tr))} (at most {len(x_tr)})")
    opt, sched = _make_optimizer(model, cfg, steps_per_epoch * cfg.epochs)
    g = torch.Generator().manual_seed(cfg.seed)
    start, history = 0, list[EpochResult]()
    if resume:
        start, history = _load_checkpoint(ckpt, model, opt, sched, g)
    writer = _tensorboard(out / "tensorboard")
    for epoch in range(start + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        loss, acc, img_s = train_epoch(model, opt, sched, x_tr, y_tr, cfg, g, progress, epoch)
        logits = predict_logits(model, x_val, cfg)
        val_loss = float(F.cross_entropy(logits, y_val))
        val_acc = float((logits.argmax(1) == y_val).float().mean())
        res = EpochResult(epoch, loss, acc, val_loss, val_acc, float(sched.get_last_lr()[0]),
                          time.perf_counter() - t0, img_s)
        history.append(res)
        _save_checkpoint(ckpt, model, opt, sched, g, epoch, history, cfg)
        _write_history(out, history)
        if writer is not None:
            for k in ("train_loss", "train_acc", "val_loss", "val_acc", "images_per_s"):
                writer.add_scalar(k, getattr(res, k), epoch)
        if progress:
            progress({"epoch_done": asdict(res)})
    if writer is not None:
        writer.close()
    return finish(model, cfg, out, history, x_val)


def finish(model: nn.Module, cfg: TrainConfig, out: Path, history: list[EpochResult],
           x_val: torch.Tensor) -> ModelCard:
    """Test evaluation, threshold calibration, learning curve, and the model folder."""
    model = model.to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
    x_te, y_te = (torch.from_numpy(a.copy()) for a in load_split("test", cfg.data_dir))
    card = ModelCard(
        arch=cfg.model, arch_args=dict(cfg.arch_args),
        recipe=get_recipe({**DEFAULT_RECIPE.to_dict(), "params": cfg.recipe_params}).to_dict(),
        other={"score": cfg.score, "tta": list(cfg.tta), "temperature": 1.0, "threshold": 0.0,
               **({"size_prior": dict(cfg.size_prior)} if cfg.size_prior else {})},
        train_config=_config_dict(cfg),
    )
    # Measured as classification runs: through the head, with its test-time views.
    head = InferenceHead(model, card).eval()
    with torch.no_grad():
        pred = torch.cat([head(x_te[i : i + 1000].float().div(255.0).unsqueeze(1))[0].argmax(1)
                          for i in range(0, len(x_te), 1000)])
    # Exact ratios of counts (a float32 mean turns 9,400 of 10,000 into 0.93999999).
    per_class = {c: int((pred[y_te == i] == i).sum()) / max(1, int((y_te == i).sum())) for i, c in enumerate(CLASSES)}
    card.metrics = {"fashion_mnist_test_accuracy": int((pred == y_te).sum()) / len(y_te),
                    "fashion_mnist_per_class": per_class,
                    "val_accuracy": history[-1].val_acc if history else None,
                    "train_seconds": sum(h.seconds for h in history),
                    "epochs": len(history)}
    card.other.update(calibrate_threshold(model, card, x_val, cfg))
    save_model(out, model, card)
    plot_history(history, out / "learning_curve.png")
    return card


@torch.no_grad()
def calibrate_threshold(model: nn.Module, card: ModelCard, x_val: torch.Tensor,
                        cfg: TrainConfig) -> dict[str, Any]:
    """Choose the "other" threshold so ``keep_in_scope`` of augmented validation images stay in scope.

    The validation images pass through the training augmentation (photo-like shifts of
    scale, contrast and blur), since a clean Fashion-MNIST image scores higher than a
    converted photo; the threshold is the score's (1 - keep) quantile. Raising it labels
    more products "other" (fewer wrong labels, more unlabelled products); lowering it
    does the reverse.
    """
    head = InferenceHead(model, card).eval()
    g = torch.Generator().manual_seed(cfg.seed + 1)
    x = x_val.float().div(255.0).unsqueeze(1)
    x = augment(x, cfg.augment or AugmentConfig(), g)
    scores = torch.cat([head(x[i : i + 1000])[1] for i in range(0, len(x), 1000)])
    thr = float(torch.quantile(scores, 1.0 - cfg.keep_in_scope))
    return {"threshold": thr,
            "how": f"{1 - cfg.keep_in_scope:.0%} quantile of the {cfg.score} score on "
                   f"{len(x)} augmented validation images (keeps {cfg.keep_in_scope:.0%} in scope)"}


def _write_history(out: Path, history: list[EpochResult]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "history.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[fl.name for fl in dataclasses.fields(EpochResult)])
        w.writeheader()
        w.writerows(asdict(h) for h in history)


def plot_history(history: list[EpochResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h.epoch for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(ep, [h.train_loss for h in history], label="train")
    a1.plot(ep, [h.val_loss for h in history], label="validation")
    a1.set(xlabel="epoch", ylabel="loss")
    a2.plot(ep, [h.train_acc for h in history], label="train")
    a2.plot(ep, [h.val_acc for h in history], label="validation")
    a2.set(xlabel="epoch", ylabel="accuracy")
    a1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(path))
