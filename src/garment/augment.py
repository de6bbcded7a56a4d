"""Augment: batched training transforms and synthetic "other" images, in torch, no torchvision.

Every transform takes and returns (N, 1, 28, 28) float tensors in [0, 1] and draws its
randomness from an explicit ``torch.Generator``, so a seed fixes the whole run.

The transforms model what a converted shop photo differs in from a Fashion-MNIST image:
mirror (shoes photographed toe right), scale, aspect and position after a tight crop,
contrast and gamma (studio light, dark and light products), blur (small source photos),
and the conversion's silhouette floor for light products. ``synthetic_others`` makes
images that are none of the ten classes (rings, bars, blobs, pairs, textures, crops and
blends of garments) for outlier exposure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # PyTorch comes with the train extra: say so in one line
    from garment.errors import missing_extra

    raise missing_extra("train", "torch", "training") from exc


@dataclass
class AugmentConfig:
    """Probabilities and ranges of the training transforms (0 disables one)."""

    hflip: float = 0.5  # probability of a mirror image
    affine: float = 0.8  # probability of a random scale/aspect/shift/rotation
    scale: tuple[float, float] = (0.8, 1.05)  # zoom factor of the content
    aspect: float = 0.15  # max relative change of width against height
    shift: float = 0.08  # max shift, fraction of the image side
    rotate: float = 8.0  # max rotation, degrees
    gamma: float = 0.5  # probability of a gamma/contrast change
    gamma_range: tuple[float, float] = (0.6, 1.6)
    blur: float = 0.25  # probability of a Gaussian blur
    floor: float = 0.1  # probability of the light-product silhouette floor
    erase: float = 0.2  # probability of erasing a random rectangle
    noise: float = 0.2  # probability of additive Gaussian noise
    pairs: float = 0.2  # probability that a shoe becomes a pair (shops show pairs, often from above)


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _where(p: float, n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) < p


def random_affine(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    s = _uniform(n, *cfg.scale, g)
    a = _uniform(n, -cfg.aspect, cfg.aspect, g)
    sx, sy = s * (1 + a), s * (1 - a)
    th = _uniform(n, -cfg.rotate, cfg.rotate, g) * math.pi / 180
    tx, ty = (_uniform(n, -cfg.shift, cfg.shift, g) * 2 for _ in range(2))
    # affine_grid maps output coords to input coords: the inverse of the wanted zoom.
    cos, sin = torch.cos(th), torch.sin(th)
    theta = torch.stack([
        torch.stack([cos / sx, -sin / sx, tx], 1),
        torch.stack([sin / sy, cos / sy, ty], 1),
    ], 1)
    apply = _where(cfg.affine, n, g)
    theta[~apply] = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


#: Fashion-MNIST classes that are footwear: Sandal, Sneaker, Ankle boot.
SHOES = (5, 7, 9)


def _fit(img: torch.Tensor) -> torch.Tensor:
    """Crop (1, h, w) to its content and fit the longest edge to 28, centred (the conversion's framing)."""
    rows = torch.nonzero(img[0].amax(1) > 0.05).flatten()
    cols = torch.nonzero(img[0].amax(0) > 0.05).flatten()
    if len(rows) == 0 or len(cols) == 0:
        return F.interpolate(img[None], size=(28, 28), mode="bilinear", align_corners=False)[0]
    img = img[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = img.shape[1:]
    s = 28 / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = F.interpolate(img[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
    out = torch.zeros(1, 28, 28)
    oy, ox = (28 - nh) // 2, (28 - nw) // 2
    out[:, oy : oy + nh, ox : ox + nw] = small
    return out


def shoe_pairs(x: torch.Tensor, y: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """Turn some shoes into a pair: the shoe and its mirror image side by side.

    Shops photograph pairs, often from above with the toes up; Fashion-MNIST shows one
    shoe from the side. Two pairs in three are turned a quarter, toes up or down.
    """
    is_shoe = (y[:, None] == torch.tensor(SHOES)[None]).any(1)
    sel = torch.nonzero(is_shoe & _where(p, len(y), g)).flatten()
    if len(sel) == 0:
        return x
    x = x.clone()
    turns = torch.randint(0, 3, (len(sel),), generator=g).tolist()  # 0: side view; 1, 3: toes down, up
    gaps = torch.randint(0, 4, (len(sel),), generator=g).tolist()
    for i, turn, gap in zip(sel.tolist(), turns, gaps, strict=True):
        one = _fit(x[i])
        if turn:
            one = torch.rot90(one, 1 if turn == 1 else 3, dims=(1, 2))
        one = _crop(one)
        pair = torch.cat([one, torch.zeros(1, one.shape[1], gap), one.flip(2)], dim=2)
        x[i] = _fit(pair)
    return x


def _crop(img: torch.Tensor) -> torch.Tensor:
    rows = torch.nonzero(img[0].amax(1) > 0.05).flatten()
    cols = torch.nonzero(img[0].amax(0) > 0.05).flatten()
    if len(rows) == 0 or len(cols) == 0:
        return img
    return img[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _gauss_kernel(sigma: torch.Tensor) -> torch.Tensor:
    r = torch.arange(-2, 3, dtype=torch.float32)
    k = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)
    return k[:, :, None] * k[:, None, :]  # (n, 5, 5)


def augment(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator, y: torch.Tensor | None = None) -> torch.Tensor:
    """Apply the training transforms to a batch (N, 1, 28, 28) in [0, 1] with labels ``y``."""
    n = x.shape[0]
    if cfg.pairs and y is not None:
        x = shoe_pairs(x, y, cfg.pairs, g)
    flip = _where(cfg.hflip, n, g)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if cfg.affine:
        x = random_affine(x, cfg, g)
    if cfg.floor:
        # The conversion lifts a light product's silhouette to a floor: imitate it.
        sel = _where(cfg.floor, n, g)[:, None, None, None]
        x = torch.where(sel, torch.maximum(x, 0.25 * (x > 0.03).float()), x)
    if cfg.gamma:
        gam = _uniform(n, *cfg.gamma_range, g)
        sel = _where(cfg.gamma, n, g)
        gam = torch.where(sel, gam, torch.ones_like(gam))[:, None, None, None]
        x = x.clamp_min(0) ** gam
    if cfg.blur:
        sel = _where(cfg.blur, n, g)
        if sel.any():
            k = _gauss_kernel(_uniform(int(sel.sum()), 0.4, 1.2, g))[:, None]
            xs = x[sel].transpose(0, 1)  # (1, m, 28, 28): one group per image
            x[sel] = F.conv2d(xs, k, padding=2, groups=k.shape[0]).transpose(0, 1)
    if cfg.noise:
        sel = _where(cfg.noise, n, g)[:, None, None, None]
        x = torch.where(sel, x + 0.04 * torch.randn(x.shape, generator=g) * (x > 0), x)
    if cfg.erase:
        x = _erase(x, cfg.erase, g)
    # Fashion-MNIST's convention: each image stretched so its brightest pixel is ~1.
    top = x.flatten(1).amax(1).clamp_min(1e-3)[:, None, None, None]
    return (x / top).clamp(0, 1)


def _erase(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    sel = _where(p, n, g)
    eh = (_uniform(n, 0.1, 0.35, g) * h).long()
    ew = (_uniform(n, 0.1, 0.35, g) * w).long()
    y0 = (torch.rand(n, generator=g) * (h - eh)).long()
    x0 = (torch.rand(n, generator=g) * (w - ew)).long()
    yy = torch.arange(h)[None, :, None]
    xx = torch.arange(w)[None, None, :]
    box = (yy >= y0[:, None, None]) & (yy < (y0 + eh)[:, None, None]) & \
          (xx >= x0[:, None, None]) & (xx < (x0 + ew)[:, None, None]) & sel[:, None, None]
    return x.masked_fill(box[:, None], 0.0)


# --------------------------------------------------------------------------- "other" images


def _coords(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 28), torch.linspace(-1, 1, 28), indexing="ij")
    return yy.expand(n, 28, 28), xx.expand(n, 28, 28)


def _rings(n: int, g: torch.Generator) -> torch.Tensor:
    """Rings and discs (watches, bracelets, jewellery): ellipses, filled or hollow."""
    yy, xx = _coords(n)
    ry, rx = _uniform(n, 0.5, 1.0, g), _uniform(n, 0.5, 1.0, g)
    d = torch.sqrt((yy / ry[:, None, None]) ** 2 + (xx / rx[:, None, None]) ** 2)
    t = _uniform(n, 0.08, 0.6, g)[:, None, None]
    return ((d < 1) & (d > 1 - t)).float()


def _bars(n: int, g: torch.Generator) -> torch.Tensor:
    """Long thin shapes at an angle (belts, ties, necklaces, scarves)."""
    yy, xx = _coords(n)
    th = _uniform(n, 0, math.pi, g)[:, None, None]
    width = _uniform(n, 0.05, 0.3, g)[:, None, None]
    dist = (xx * torch.cos(th) + yy * torch.sin(th)).abs()
    return (dist < width).float()


def _pairs(n: int, g: torch.Generator) -> torch.Tensor:
    """Two separate blobs side by side (sunglasses, earrings, socks)."""
    yy, xx = _coords(n)
    r = _uniform(n, 0.25, 0.45, g)[:, None, None]
    off = _uniform(n, 0.5, 0.7, g)[:, None, None]
    ry = r * _uniform(n, 0.6, 2.0, g)[:, None, None]
    a = ((xx - off) / r) ** 2 + (yy / ry) ** 2 < 1
    b = ((xx + off) / r) ** 2 + (yy / ry) ** 2 < 1
    return (a | b).float()


def _texture(n: int, g: torch.Generator) -> torch.Tensor:
    """Smooth random textures filling the frame."""
    low = torch.rand((n, 1, 4, 4), generator=g)
    return F.interpolate(low, size=(28, 28), mode="bicubic", align_corners=False)[:, 0].clamp(0, 1)


def synthetic_others(n: int, garments: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """``n`` images that are none of the ten classes, as (n, 1, 28, 28) in [0, 1].

    A mix of geometric shapes shaded like products, zoomed-in crops of garments (a
    detail is not a product), and blends of two garments of different shapes.
    """
    kinds = torch.randint(0, 6, (n,), generator=g)
    out = torch.zeros(n, 28, 28)
    makers = [_rings, _bars, _pairs, _texture]
    for k, make in enumerate(makers):
        m = kinds == k
        if m.any():
            out[m] = make(int(m.sum()), g)
    m = kinds == 4  # zoomed crops: a quarter of a garment blown up to the whole frame
    if m.any():
        idx = torch.randint(0, len(garments), (int(m.sum()),), generator=g)
        src = garments[idx]
        cy, cx = (torch.randint(0, 2, (len(idx),), generator=g) for _ in range(2))
        crops = torch.stack([src[i, :, 14 * y : 14 * y + 14, 14 * x : 14 * x + 14]
                             for i, (y, x) in enumerate(zip(cy.tolist(), cx.tolist(), strict=True))])
        out[m] = F.interpolate(crops, size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
    m = kinds == 5  # blends: two garments superimposed, rotated a quarter turn
    if m.any():
        i1 = torch.randint(0, len(garments), (int(m.sum()),), generator=g)
        i2 = torch.randint(0, len(garments), (int(m.sum()),), generator=g)
        out[m] = torch.maximum(garments[i1, 0], garments[i2, 0].transpose(-1, -2))
    shade = _texture(n, g) * 0.6 + 0.4  # products are shaded, not flat
    out = out * torch.where((kinds < 3)[:, None, None], shade, torch.ones_like(shade))
    return out[:, None].clamp(0, 1)
