"""Shop images: Fashion-MNIST items rendered as catalogue photos, plus the site's logo and icons."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

#: (width, height) of a rendered product photo: portrait, like shop packshots.
CANVAS = (300, 400)
THUMB = (150, 200)
MARGIN = 0.08  # free border around the product, as a fraction of the canvas
JPEG_QUALITY = 88
# Pixels at or below this (of 255) are Fashion-MNIST's black background.
_BACKGROUND_LEVEL = 8
# Faint sensor noise, drawn once and shifted per photo (drawing it each time costs a millisecond).
_NOISE = 1.2 * np.random.default_rng(0).standard_normal((CANVAS[1], CANVAS[0], 1), np.float32)


def _encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buf, fmt)
    return buf.getvalue()


def _fit(item: np.ndarray) -> tuple[Image.Image, tuple[int, int]]:
    """The item's bounding box upscaled smoothly into the canvas less its margin, and where
    its top-left corner goes (centred)."""
    ys, xs = np.nonzero(item > _BACKGROUND_LEVEL)
    if len(ys) == 0:
        ys, xs = np.array([0, item.shape[0] - 1]), np.array([0, item.shape[1] - 1])
    crop = item[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    box_w, box_h = (round(side * (1 - 2 * MARGIN)) for side in CANVAS)
    scale = min(box_w / crop.shape[1], box_h / crop.shape[0])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    # Bicubic then a blur of about a third of a source pixel: smooth edges, no visible 28x28 grid.
    up = Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC)
    up = up.filter(ImageFilter.GaussianBlur(scale / 3))
    return up, ((CANVAS[0] - size[0]) // 2, (CANVAS[1] - size[1]) // 2)


def photo_array(item: np.ndarray, rgb: tuple[int, int, int], seed: int,
                back: bool = False) -> np.ndarray:
    """A 28x28 Fashion-MNIST item (light product on black) as a packshot (H, W, 3) uint8:
    the product in colour ``rgb`` on a white or light-grey background, its shading kept.

    Fashion-MNIST's brightness is both the mask and the shading: where it is dark there is
    no product (background shows); where it is bright the photo was dark, so the pixel
    takes the garment's full colour.
    ``back`` gives a mirrored, differently lit view (the product seen from behind).
    """
    rnd = random.Random(seed)
    up, (x0, y0) = _fit(np.fliplr(item) if back else item)
    level = np.zeros((CANVAS[1], CANVAS[0]), np.float32)
    level[y0: y0 + up.height, x0: x0 + up.width] = np.asarray(up, np.float32) / 255.0
    alpha = np.clip((level - 0.03) / 0.12, 0.0, 1.0)[..., None]
    lit = item[item > _BACKGROUND_LEVEL]  # the source's lit pixels, cheaper than the canvas's
    shade = np.clip(level * (255.0 / max(np.percentile(lit, 98) if lit.size else 255.0, 1.0)),
                    0.0, 1.0)
    if back:
        shade = shade**1.5
    colour = np.asarray(rgb, np.float32)
    # Fashion-MNIST is a negated photo: its brightest pixels were the photo's darkest. So the
    # item's brightness sets how far each pixel goes from white towards the garment's colour
    # (a faithful inverse of the data set's own conversion, shading included).
    background = 255.0 if rnd.random() < 0.6 else 243.0
    product = background - shade[..., None] * np.maximum(background - colour, 0.0)
    # A soft contact shadow under the product, as in studio packshots.
    mask = Image.fromarray((alpha[..., 0] * 255).astype(np.uint8))
    shadow = np.asarray(mask.filter(ImageFilter.GaussianBlur(10)), np.float32) / 255.0
    shadow = np.roll(shadow, 8, axis=0)[..., None]
    canvas = background * (1.0 - 0.10 * shadow)
    noise = np.roll(_NOISE, (seed * 7919) % CANVAS[1], axis=0)
    out = canvas * (1.0 - alpha) + product * alpha + noise
    return np.clip(out, 0, 255).astype(np.uint8)


#: The views of a built-in product: "1" packshot, "2" detail crop, "3" back, "small" thumbnail.
FMNIST_VIEWS = ("1", "2", "3", "small")


def fmnist_image(item: np.ndarray, rgb: tuple[int, int, int], seed: int, view: str) -> bytes:
    """JPEG bytes of one view of a built-in product (each rendered on demand, ~5 ms)."""
    if view == "3":
        return _encode(Image.fromarray(photo_array(item, rgb, seed + 1, back=True)))
    front = Image.fromarray(photo_array(item, rgb, seed))
    if view == "2":
        return _encode(detail_crop(front))
    return _encode(front.resize(THUMB, Image.Resampling.LANCZOS) if view == "small" else front)


def detail_crop(image: Image.Image) -> Image.Image:
    """A close-up: the middle 45% of the photo enlarged back to the photo's size."""
    w, h = image.size
    box = (round(w * 0.275), round(h * 0.3), round(w * 0.725), round(h * 0.75))
    return image.crop(box).resize((w, h), Image.Resampling.BICUBIC)


def file_image(path: Path, view: str) -> bytes:
    """One view of a photo file: "1" its original bytes, "2" a detail crop, "small" a thumbnail."""
    raw = path.read_bytes()
    if view == "1":
        return raw
    with Image.open(io.BytesIO(raw)) as im:
        rgb = im.convert("RGB")
    if view == "2":
        return _encode(detail_crop(rgb))
    rgb.thumbnail(THUMB, Image.Resampling.LANCZOS)
    return _encode(rgb)


def site_images(shop_name: str) -> dict[str, bytes]:
    """The logo, icons, favicon and home-page banner every page shows: none is a product."""
    images: dict[str, bytes] = {}
    logo = Image.new("RGB", (180, 40), "white")
    draw = ImageDraw.Draw(logo)
    draw.rectangle((2, 6, 30, 34), fill=(30, 60, 50))
    draw.text((40, 14), shop_name.upper(), fill=(30, 60, 50))
    images["logo.png"] = _encode(logo, "PNG")
    shapes = {
        "search": lambda d: (d.ellipse((4, 4, 15, 15), outline=0, width=2),
                             d.line((14, 14, 20, 20), fill=0, width=3)),
        "account": lambda d: (d.ellipse((8, 3, 16, 11), outline=0, width=2),
                              d.arc((4, 12, 20, 28), 180, 360, fill=0, width=2)),
        "heart": lambda d: d.polygon((12, 20, 3, 10, 7, 4, 12, 8, 17, 4, 21, 10), outline=0),
        "bag": lambda d: (d.rectangle((4, 8, 20, 21), outline=0, width=2),
                          d.arc((8, 3, 16, 13), 180, 360, fill=0, width=2)),
        "card": lambda d: d.rounded_rectangle((1, 5, 22, 19), 3, outline=0, width=2),
    }
    for name, draw_icon in shapes.items():
        icon = Image.new("LA", (24, 24), (0, 0))
        draw_icon(ImageDraw.Draw(icon))
        images[f"{name}.png"] = _encode(icon, "PNG")
    images["favicon.png"] = _encode(logo.crop((2, 6, 31, 35)).resize((32, 32)), "PNG")
    x = np.linspace(0.0, 1.0, 960, dtype=np.float32)[None, :, None]
    banner = (np.array([236, 226, 210]) * (1 - x) + np.array([196, 210, 200]) * x)
    banner = np.broadcast_to(banner, (300, 960, 3)).astype(np.uint8)
    images["banner.jpg"] = _encode(Image.fromarray(banner))
    return images
