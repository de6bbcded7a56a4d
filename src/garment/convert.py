"""Convert: a shop photo in, a 28x28 uint8 image in Fashion-MNIST's convention out.

Fashion-MNIST (Xiao et al. 2017, section 2) made each image from a Zalando packshot in
seven steps: PNG; trim edges within 5% of the corner colour; resize the longest edge to 28
by subsampling; sharpen (Gaussian, radius and sigma 1); extend the shortest edge to 28,
centred; negate; 8-bit grayscale. Its images are light products on black, filling the
frame, each stretched so its brightest pixel is ~255.

``convert`` follows those steps, made robust for real shops: the background is modelled
from the border (a plane fitted to it, so gradients and light-grey studios work), the
product is a tight crop on pixels that differ from that background, intensity is
"darkness relative to the local background" (white products on white do not vanish:
their silhouette gets a floor), and the result is stretched like Fashion-MNIST's. JPEGs are
decoded at reduced scale (Pillow's ``draft`` scale, by libjpeg-turbo through simplejpeg where
it applies) so no full-resolution work is done; everything after decoding runs as one call into
a small C kernel (``garment/_convert.c``: the per-pixel passes, the crop, and Pillow's bilinear
resize and unsharp mask reproduced pixel for pixel).

A recipe (name, version, params) pins every constant; a model records the recipe it was
trained with, and classification converts with exactly that recipe.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from garment.errors import GarmentError

try:  # the compiled kernel (garment/_convert.c), built when garment is installed
    from garment import _convert
except ImportError as exc:  # pragma: no cover - a source tree that was never installed
    raise ImportError(f"garment's conversion kernel is not built ({exc}); install garment with "
                      "`pip install -e .` (or `make setup`), which compiles it with the C compiler") from exc

try:  # libjpeg-turbo without Pillow's Python layer; Pillow decodes everything when absent
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - a platform without its wheels
    _simplejpeg = None

RECIPE_NAME = "garment-fmnist"
RECIPE_VERSION = 1

#: Radius of the Gaussian in the sharpening after the resize (the paper's: radius and sigma 1).
SHARPEN_RADIUS = 1

#: Decompression-bomb limit on the pixels a conversion decodes (``decoded_pixels``: JPEGs at
#: reduced scale, so a 6000x8000 photo costs 750x1000): images over it are refused
#: ("too-many-pixels"). The crawl's packshot check applies the same rule, so whatever it
#: stores is an image classify accepts.
MAX_PIXELS = 40_000_000
#: Formats decoded at reduced scale (a DCT scale of 1/2, 1/4 or 1/8): JPEG and the
#: multi-picture JPEGs of cameras (MPO).
JPEG_FORMATS = frozenset({"JPEG", "MPO"})


class ConversionError(GarmentError):
    """A per-item failure: ``reason`` is one of REASONS, the message says what and why."""

    REASONS = ("not-an-image", "truncated", "too-many-pixels", "unsupported", "empty")

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Recipe:
    """The conversion's constants. Defaults are the current recipe; the model file pins them."""

    name: str = RECIPE_NAME
    version: int = RECIPE_VERSION
    params: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        return self.params.get(key, DEFAULT_PARAMS[key])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {**DEFAULT_PARAMS, **self.params}}

    @functools.cached_property
    def kernel_args(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The recipe as the compiled kernel takes it: (parameter vector in KERNEL_PARAMS' order,
        framing codes, output size); computed once per Recipe."""
        blur_r, blur_ww, blur_fw = blur_constants(SHARPEN_RADIUS)
        values = {
            "dark": self.get("intensity") != "abs", "lighter_weight": self.get("lighter_weight"),
            "noise_floor_k": self.get("noise_floor_k"), "min_contrast": self.get("min_contrast"),
            "noise_k": self.get("noise_k"), "trim_fraction": self.get("trim_fraction"),
            "split_pairs": bool(self.get("split_pairs")), "silhouette_floor": self.get("silhouette_floor"),
            "stretch_q": float(self.get("stretch_percentile")) / 100.0, "fill": self.get("fill"),
            "sharpen_percent": int(self.get("sharpen_percent")), "blur_r": blur_r, "blur_ww": blur_ww,
            "blur_fw": blur_fw,
        }
        vector = np.array([float(values[name]) for name in KERNEL_PARAMS])
        codes = np.array([FRAMING_CODES[f] for f in self.get("framings")], np.int64)
        return vector, codes, int(self.get("size"))


#: The compiled kernel's parameter vector, in order (garment/_convert.c's enum).
KERNEL_PARAMS = ("dark", "lighter_weight", "noise_floor_k", "min_contrast", "noise_k", "trim_fraction",
                 "split_pairs", "silhouette_floor", "stretch_q", "fill", "sharpen_percent",
                 "blur_r", "blur_ww", "blur_fw")
#: The kernel's framing codes.
FRAMING_CODES = {"crop": 0, "frame": 1}


def blur_constants(radius: float, passes: int = 3) -> tuple[int, int, int]:
    """Pillow's box-blur parameters for a Gaussian of ``radius`` made of ``passes`` box blurs:
    (whole radius, weight of the window's pixels, weight of the next one on each side), in 24-bit
    fixed point, computed in float32 as Pillow's C does."""
    f = np.float32
    sigma2 = f(f(radius) * f(radius)) / f(passes)
    length = f(np.sqrt(12.0 * float(sigma2) + 1.0))
    whole = f(np.floor((float(length) - 1.0) / 2.0))
    a = f(f(f(2) * whole + f(1)) * f(whole * f(whole + f(1)) - f(3) * sigma2))
    a = f(a / f(f(6) * f(sigma2 - f(whole + f(1)) * f(whole + f(1)))))
    box = f(whole + a)
    ww = int(f(16777216) / f(box * f(2) + f(1)))
    return int(box), ww, (16777216 - (int(box) * 2 + 1) * ww) // 2


DEFAULT_PARAMS: dict[str, Any] = {
    # Smallest side requested from the JPEG decoder's reduced-scale (DCT) decode, in pixels.
    "draft_size": 96,
    # After decoding, larger images are box-reduced so the longest side is at most this.
    "work_size": 160,
    # Border band used to model the background, as a fraction of the shorter side.
    "border": 0.04,
    # A pixel is product when it differs from the background plane by more than
    # max(min_contrast, noise_k * border noise) grey levels.
    "min_contrast": 14.0,
    "noise_k": 4.0,
    # Rows/columns with fewer product pixels than this fraction of the crop are trimmed.
    "trim_fraction": 0.01,
    # Split a pair of shoes photographed side by side: keep the larger of two blobs
    # separated by an empty vertical gap (Fashion-MNIST shows one shoe).
    "split_pairs": True,
    # Product intensity: "dark" = darkness below the background (Fashion-MNIST's negation);
    # "abs" = any difference from it, lighter pixels weighted by lighter_weight.
    "intensity": "dark",
    "lighter_weight": 1.0,
    # Subtract this many noise levels from the intensity (a soft threshold on JPEG noise).
    "noise_floor_k": 0.0,
    # Intensity floor inside the product silhouette, as a fraction of 255, so that a white
    # product on white keeps its shape after negation.
    "silhouette_floor": 0.25,
    # Stretch so this percentile of product pixels maps to 255 (Fashion-MNIST's images
    # all reach ~255).
    "stretch_percentile": 99.0,
    # Sharpen after resizing (the paper's Gaussian sharpen, radius 1): unsharp-mask percent.
    "sharpen_percent": 60,
    # Size of the square output.
    "size": 28,
    # Fraction of the output's side the product's longest edge spans (Fashion-MNIST: 1.0).
    "fill": 1.0,
    # Views made of each photo: "crop" (tight on the product) and/or "frame" (whole photo).
    "framings": ["crop"],
}

DEFAULT_RECIPE = Recipe()


def get_recipe(spec: Recipe | dict[str, Any] | None) -> Recipe:
    """A Recipe from a model card's ``recipe`` dict (None: the default recipe)."""
    if spec is None:
        return DEFAULT_RECIPE
    if isinstance(spec, Recipe):
        return spec
    name, version = spec.get("name", RECIPE_NAME), int(spec.get("version", RECIPE_VERSION))
    if name != RECIPE_NAME or version > RECIPE_VERSION:
        raise GarmentError(
            f"recipe {name} v{version} unknown to this garment (knows {RECIPE_NAME} "
            f"v{RECIPE_VERSION}); upgrade garment or use a model trained with this version"
        )
    unknown = set(spec.get("params", {})) - set(DEFAULT_PARAMS)
    if unknown:
        raise GarmentError(f"recipe params {sorted(unknown)} unknown; known: {sorted(DEFAULT_PARAMS)}")
    framings = spec.get("params", {}).get("framings", DEFAULT_PARAMS["framings"])
    if not framings or set(framings) - {"crop", "frame"}:
        raise GarmentError(f"recipe framings {framings!r} invalid; use one or both of 'crop', 'frame'")
    fill = spec.get("params", {}).get("fill", DEFAULT_PARAMS["fill"])
    if not 0 < fill <= 1:
        raise GarmentError(f"recipe fill {fill!r} invalid; use a fraction of the output's side in (0, 1]")
    return Recipe(name, version, dict(spec.get("params", {})))


# --------------------------------------------------------------------------- decoding


def open_image(src: str | Path | bytes | Image.Image, draft_size: int = 96) -> Image.Image:
    """Decode ``src`` to an 8-bit "L" image, upright, alpha composited on white.

    JPEGs are decoded at the smallest DCT scale whose result is at least ``draft_size``
    on its shorter side. Animated images give their first frame. Raises ConversionError.
    """
    img = _decode(src, draft_size)
    return Image.fromarray(img, "L") if isinstance(img, np.ndarray) else img


def _decode_grey(src: str | Path | bytes | Image.Image, draft_size: int) -> np.ndarray:
    """``open_image`` as a writable C-ordered (H, W) uint8 array."""
    img = _decode(src, draft_size)
    return img if isinstance(img, np.ndarray) else np.array(img)


def decoded_pixels(fmt: str, width: int, height: int, draft_size: int | None = None) -> int:
    """Pixels a conversion decodes for a ``width`` x ``height`` image of format ``fmt``
    (Pillow's name: "JPEG", "PNG"...): JPEGs at the reduced scale ``open_image`` asks for
    (``draft_size``; None: the default recipe's), every other format in full. MAX_PIXELS
    bounds this number."""
    if fmt.upper() in JPEG_FORMATS and width > 0 and height > 0:
        scale = _jpeg_scale(width, height, DEFAULT_PARAMS["draft_size"] if draft_size is None
                            else draft_size)
        return -(-width // scale) * -(-height // scale)
    return width * height


def _jpeg_scale(width: int, height: int, draft_size: int) -> int:
    """The DCT scale denominator Pillow's ``draft`` picks (and the fast path copies): the
    largest power-of-two reduction, at most 8, that keeps the request's size."""
    req_w, req_h = _draft_request(width, height, draft_size)
    return next(f for f in (8, 4, 2, 1) if min(width // req_w, height // req_h) >= f)


def _too_many_pixels(name: str, fmt: str, w: int, h: int, draft_size: int) -> ConversionError | None:
    n = decoded_pixels(fmt, w, h, draft_size)
    if n <= MAX_PIXELS:
        return None
    scaled = f" decodes to {n:,} pixels," if n != w * h else ""
    return ConversionError("too-many-pixels", f"{name}: {w}x{h}{scaled} over the {MAX_PIXELS:,} "
                                              "pixel limit")


def _decode(src: str | Path | bytes | Image.Image, draft_size: int) -> np.ndarray | Image.Image:
    """``open_image``'s work: a grey array from libjpeg-turbo where that path applies, else
    Pillow's "L" image."""
    name = str(src) if isinstance(src, (str, Path)) else type(src).__name__
    if isinstance(src, (str, Path, bytes)):
        data = src if isinstance(src, bytes) else _read_jpeg(src)
        fast = _decode_jpeg(data, draft_size) if data else None
        if fast is not None:
            return fast
        src = data or src
    if isinstance(src, Image.Image):
        img = src
    else:
        try:
            fp = io.BytesIO(src) if isinstance(src, bytes) else src
            with warnings.catch_warnings():
                # The limit is MAX_PIXELS on the decoded pixels (a large JPEG decodes small);
                # Pillow's own error, on header sizes past twice its warning, is a backstop.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(fp)
        except (UnidentifiedImageError, ValueError) as exc:
            raise ConversionError("not-an-image", f"{name}: not an image ({exc})") from exc
        except Image.DecompressionBombError as exc:
            raise ConversionError("too-many-pixels", f"{name}: too many pixels ({exc})") from exc
        except OSError as exc:
            raise ConversionError("not-an-image", f"{name}: cannot read ({exc})") from exc
    w, h = img.size
    if w < 1 or h < 1:
        raise ConversionError("empty", f"{name}: empty image")
    if error := _too_many_pixels(name, img.format or "", w, h, draft_size):
        raise error
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)
        if img.format in JPEG_FORMATS and img.mode in ("RGB", "L", "CMYK", "YCbCr"):
            img.draft("L", _draft_request(w, h, draft_size))
        ImageOps.exif_transpose(img, in_place=True)  # in place: no copy when already upright
        return _to_l(img)
    except Image.DecompressionBombError as exc:
        raise ConversionError("too-many-pixels", f"{name}: too many pixels ({exc})") from exc
    except (OSError, SyntaxError, EOFError) as exc:
        msg = str(exc)
        reason = "truncated" if "truncat" in msg or "broken" in msg or isinstance(exc, EOFError) else "unsupported"
        raise ConversionError(reason, f"{name}: {msg or type(exc).__name__}") from exc
    except ValueError as exc:
        raise ConversionError("unsupported", f"{name}: {exc}") from exc


def _draft_request(w: int, h: int, draft_size: int) -> tuple[int, int]:
    """The size asked of the JPEG decoder: the image reduced by a whole factor so that its
    shorter side stays at least ``draft_size``."""
    step = max(1, min(w, h) // max(1, draft_size))
    return max(1, w // step), max(1, h // step)


def _read_jpeg(path: str | Path) -> bytes | None:
    """The file's bytes when it starts like a JPEG, else None (Pillow reads it from the path)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            return head + f.read() if head == b"\xff\xd8" else None
    except OSError as exc:
        raise ConversionError("not-an-image", f"{path}: cannot read ({exc.strerror or exc})") from exc


def _decode_jpeg(data: bytes, draft_size: int) -> np.ndarray | None:
    """A JPEG decoded straight to grey at Pillow's ``draft`` scale by libjpeg-turbo (simplejpeg):
    the same pixels as Pillow's path, a third faster (no marker parsing in Python). None when
    this path does not apply and Pillow decides: not a JPEG, CMYK, rotated by EXIF, over a
    pixel limit (its own or Pillow's), damaged (Pillow then names the error)."""
    if _simplejpeg is None or data[:2] != b"\xff\xd8":
        return None
    try:
        h, w, colorspace, _ = _simplejpeg.decode_jpeg_header(data)
        if colorspace not in ("Gray", "YCbCr") or w < 1 or h < 1:
            return None
        bomb = Image.MAX_IMAGE_PIXELS  # Pillow refuses twice this at open: so does the crawl
        if decoded_pixels("JPEG", w, h, draft_size) > MAX_PIXELS or (bomb and w * h > 2 * bomb):
            return None
        if _exif_orientation(data) != 1:
            return None
        scale = _jpeg_scale(w, h, draft_size)
        out_w, out_h = -(-w // scale), -(-h // scale)
        grey = _simplejpeg.decode_jpeg(data, colorspace="GRAY", min_height=out_h, min_width=out_w)
    except ValueError:
        return None
    if grey.shape[:2] != (out_h, out_w):
        return None
    return grey.reshape(out_h, out_w)  # (H, W, 1) -> (H, W): a view, writable and C-ordered


def _exif_orientation(data: bytes) -> int:
    """The JPEG's EXIF orientation (1: upright, also when it has no EXIF); 0 when unreadable."""
    exif = _exif_segment(data)
    if exif is None:
        return 1
    try:
        tags = Image.Exif()
        tags.load(exif)
        return int(tags.get(0x0112, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF: let the Pillow path decide
        return 0


def _exif_segment(data: bytes) -> bytes | None:
    """The EXIF payload of a JPEG's APP1 segment, found by walking the segments before the image
    data (a few, each announcing its length), or None."""
    pos, end = 2, min(len(data), 1 << 16)
    while pos + 4 <= end and data[pos] == 0xFF:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xFF:  # a fill byte before the marker
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: no more header segments
            return None
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            return data[pos + 4 : pos + 2 + length]
        pos += 2 + length
    # Not a clean run of segments up to the image data: look for EXIF anywhere in the header.
    found = data.find(b"Exif\x00\x00", 0, end)
    return data[found:] if found >= 0 else None


def _to_l(img: Image.Image) -> Image.Image:
    """Any mode to "L": alpha on white, 16-bit and float rescaled, CMYK and palettes converted."""
    mode = img.mode
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if mode == "L":
        img.load()
        return img
    return img.convert("RGB").convert("L") if mode in ("CMYK", "YCbCr", "LAB", "HSV") else img.convert("L")


# --------------------------------------------------------------------------- conversion


@functools.lru_cache(maxsize=64)
def _border(h: int, w: int, band: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The border band's flat indices, their coordinates [x/w, y/h] (2, n) and the pseudo-inverse
    (3, n) of the least-squares design [1, x/w, y/h] (cached per shape: a shop's photos come in a
    few sizes)."""
    mask = np.zeros((h, w), dtype=bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    idx = np.flatnonzero(mask)
    ys, xs = np.divmod(idx, w)
    xy = np.stack([xs / w, ys / h])
    design_t = np.stack([np.ones(len(xs)), xy[0], xy[1]])
    pinv = np.ascontiguousarray(np.linalg.solve(design_t @ design_t.T, design_t))
    return idx, xy, pinv


def convert(src: str | Path | bytes | Image.Image, recipe: Recipe | dict[str, Any] | None = None) -> np.ndarray:
    """Convert one image to (28, 28) uint8 in Fashion-MNIST's convention (the recipe's first
    framing). Raises ConversionError."""
    return convert_views(src, recipe)[0]


def convert_views(src: str | Path | bytes | Image.Image,
                  recipe: Recipe | dict[str, Any] | None = None) -> np.ndarray:
    """Convert one image to (V, 28, 28) uint8: one view per framing in the recipe's ``framings``.

    "crop" is tight on the product, like Fashion-MNIST; "frame" is the whole packshot,
    where a small accessory stays small. The model's in-scope score averages the views.
    """
    r = get_recipe(recipe)
    g = _decode_grey(src, r.get("draft_size"))
    h, w = g.shape
    work = int(r.get("work_size"))
    factor = max(1, math.ceil(max(h, w) / work))  # larger images are box-reduced to work_size
    h, w = (h - 1) // factor + 1, (w - 1) // factor + 1
    if min(h, w) < 4:  # a sliver: repeat pixels up to 4 before modelling its border
        img = Image.fromarray(g, "L")
        img = img.reduce(factor) if factor > 1 else img
        g = np.array(img.resize((max(4, w), max(4, h)), Image.Resampling.NEAREST))
        factor, (h, w) = 1, g.shape
    band = max(1, int(round(min(h, w) * r.get("border"))))
    params, framings, size = r.kernel_args
    views = np.empty((len(framings), size, size), np.uint8)
    _convert.convert(g, factor, *_border(h, w, band), params, framings, views)
    return views


def convert_many(sources: list[Any],
                 recipe: Recipe | dict[str, Any] | None = None) -> tuple[np.ndarray, list[str | None]]:
    """Convert a list; failed items give a zero image and their error message (never raise)."""
    out = np.zeros((len(sources), 28, 28), dtype=np.uint8)
    errors: list[str | None] = []
    for i, s in enumerate(sources):
        try:
            out[i] = convert(s, recipe)
            errors.append(None)
        except ConversionError as exc:
            errors.append(f"{exc.reason}: {exc}")
    return out, errors



# --------------------------------------------------------------------------- packshot check

#: A border band pixel further than the conversion's product threshold from the fitted
#: background plane counts as "off the background"; these fractions judge the photo.
PACKSHOT_BORDER_OK = 0.03      # off-background border pixels of a clean studio shot
PACKSHOT_BORDER_BAD = 0.35     # a scene, or a product cut by the frame all round
PACKSHOT_NOISE_OK = 4.0        # grey levels of residual noise on a plain background
PACKSHOT_NOISE_BAD = 12.0      # a textured or photographed background
PACKSHOT_COVER = (0.04, 0.80)  # product pixels / all: less is a speck, more is no background
PACKSHOT_SIDE_TOUCH = 0.15     # a side whose edge line is this much product is "cut"


def packshot_score(src: str | Path | bytes | Image.Image) -> tuple[float, list[str]]:
    """How much a photo looks like a packshot, one product on a plain background, measured
    the way the conversion sees it: (score in [0, 1], readable reasons).

    The background plane is fitted to the border band as ``convert`` does; the score
    combines how much of that band lies off the plane (a scene or a cropped model photo:
    much), the plane's residual noise (a textured background: high), the product's cover
    of the frame (a speck, or a close-up without background) and the sides the product is
    cut by. Raises ConversionError for what ``convert`` cannot read.
    """
    r = DEFAULT_RECIPE
    g = _decode_grey(src, r.get("draft_size"))
    h, w = g.shape
    factor = max(1, math.ceil(max(h, w) / int(r.get("work_size"))))
    if factor > 1 or min(h, w) < 8:
        img = Image.fromarray(g, "L").reduce(factor) if factor > 1 else Image.fromarray(g, "L")
        if min(img.size) < 8:
            img = img.resize((max(8, img.width), max(8, img.height)), Image.Resampling.NEAREST)
        g = np.array(img)
        h, w = g.shape
    band = max(1, int(round(min(h, w) * r.get("border"))))
    idx, xy, pinv = _border(h, w, band)
    inten, diff = np.empty((h, w), np.float32), np.empty((h, w), np.float32)
    mask = np.empty((h, w), bool)
    rows, cols = np.empty(h, np.int64), np.empty(w, np.int64)
    noise = _convert.analyse(g, idx, xy, pinv, True, 1.0, 0.0, float(r.get("min_contrast")),
                             float(r.get("noise_k")), inten, diff, mask, rows, cols)
    border = float(mask.ravel()[idx].mean())
    cover = float(mask.mean())
    edges = (mask[0].mean(), mask[-1].mean(), mask[:, 0].mean(), mask[:, -1].mean())
    cut = sum(float(e) > PACKSHOT_SIDE_TOUCH for e in edges)

    def ramp(x: float, good: float, bad: float) -> float:
        return float(min(1.0, max(0.0, (bad - x) / (bad - good))))

    plain = ramp(border, PACKSHOT_BORDER_OK, PACKSHOT_BORDER_BAD)
    quiet = ramp(noise, PACKSHOT_NOISE_OK, PACKSHOT_NOISE_BAD)
    lo, hi = PACKSHOT_COVER
    covered = 1.0 if lo <= cover <= hi else (cover / lo if cover < lo
                                             else max(0.0, (1.0 - cover) / (1.0 - hi)))
    whole = 1.0 - cut / 4.0
    # Cover multiplies: without a product in the frame the rest says nothing.
    score = round((0.4 * plain + 0.3 * quiet + 0.3 * whole) * (0.5 + 0.5 * covered), 3)
    reasons = [f"border {border:.0%} off a plain background (noise {noise:.1f})",
               f"product covers {cover:.0%} of the frame",
               f"cut by {cut} side{'s' * (cut != 1)}" if cut else "product whole in frame"]
    return score, reasons


ImageFile.LOAD_TRUNCATED_IMAGES = False
