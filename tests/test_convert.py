"""The conversion, branch by branch, on images made in the test."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from garment.convert import DEFAULT_RECIPE, ConversionError, convert, convert_views, get_recipe
from garment.errors import GarmentError


def _product(size: tuple[int, int] = (300, 400), bg: int | tuple[int, ...] = 255, fg: int = 60,
             mode: str = "L") -> Image.Image:
    """A 'T-shirt' silhouette (body + sleeves) on a plain background."""
    img = Image.new(mode, size, bg)
    d = ImageDraw.Draw(img)
    w, h = size
    fill = fg if mode == "L" else (fg, fg // 2, fg // 3)
    d.rectangle([w * 0.3, h * 0.2, w * 0.7, h * 0.85], fill=fill)
    d.polygon([(w * 0.3, h * 0.2), (w * 0.1, h * 0.4), (w * 0.2, h * 0.45), (w * 0.3, h * 0.35)], fill=fill)
    d.polygon([(w * 0.7, h * 0.2), (w * 0.9, h * 0.4), (w * 0.8, h * 0.45), (w * 0.7, h * 0.35)], fill=fill)
    return img


def _jpeg(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _check_fmnist_like(a: np.ndarray) -> None:
    assert a.shape == (28, 28) and a.dtype == np.uint8
    assert a.max() >= 250  # stretched like Fashion-MNIST
    # background black at the corners, product light in the middle
    assert a[0, 0] == 0 and a[-1, -1] == 0 and a[14, 14] > 100
    # the longest edge fills the frame
    rows, cols = np.nonzero(a > 20)
    assert max(np.ptp(rows), np.ptp(cols)) >= 25


def test_white_background() -> None:
    _check_fmnist_like(convert(_product()))


def test_light_grey_background_and_jpeg_noise() -> None:
    _check_fmnist_like(convert(_jpeg(_product(bg=225))))


def test_gradient_background() -> None:
    img = _product()
    grad = np.linspace(200, 250, img.size[0])[None, :].repeat(img.size[1], 0)
    arr = np.where(np.asarray(img) == 255, grad, np.asarray(img)).astype(np.uint8)
    _check_fmnist_like(convert(Image.fromarray(arr)))


def test_light_product_on_white_keeps_its_silhouette() -> None:
    a = convert(_product(fg=235))
    assert a[14, 14] > 50 and a[0, 0] == 0


def test_dark_product() -> None:
    _check_fmnist_like(convert(_product(fg=0)))


def test_rgba_alpha_composited_on_white() -> None:
    img = _product(mode="RGB").convert("RGBA")
    arr = np.asarray(img).copy()
    arr[..., 3] = np.where(arr[..., 0] == 255, 0, 255)
    arr[arr[..., 3] == 0, :3] = 0  # transparent pixels are black underneath: must not show
    _check_fmnist_like(convert(Image.fromarray(arr, "RGBA")))


def test_palette_cmyk_16bit() -> None:
    _check_fmnist_like(convert(_product(mode="RGB").convert("P")))
    _check_fmnist_like(convert(_jpeg(_product(mode="RGB").convert("CMYK"))))
    arr16 = (np.asarray(_product()).astype(np.uint16) * 257)
    _check_fmnist_like(convert(Image.fromarray(arr16)))  # mode I;16


def test_exif_orientation_is_applied() -> None:
    img = _product(size=(400, 300))  # landscape pixels ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... displayed rotated 90 degrees
    data = _jpeg(img, exif=exif)
    b = convert(img.transpose(Image.Transpose.ROTATE_270))
    for variant in (data, data[:2] + b"\xff\xff" + data[2:]):  # also with fill bytes before a marker
        a = convert(variant)
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 20


def test_tiny_image() -> None:
    a = convert(_product(size=(6, 8)))
    assert a.shape == (28, 28) and a.max() > 0


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [_product().convert("P"), Image.new("P", (300, 400), 0)]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    _check_fmnist_like(convert(path))


def test_pair_of_shoes_keeps_one() -> None:
    img = Image.new("L", (400, 200), 255)
    d = ImageDraw.Draw(img)
    d.rectangle([20, 40, 180, 160], fill=40)
    d.rectangle([220, 40, 380, 160], fill=40)
    a = convert(img)
    cols = np.nonzero(a.max(0) > 20)[0]
    assert np.ptp(cols) >= 25 and (a[:, cols[0] : cols[-1]].max(0) > 20).all()  # one blob, no gap


def test_jpeg_fast_path_gives_pillows_pixels(tmp_path: Path) -> None:
    from garment import convert as convert_module
    from garment.convert import open_image

    for size, mode in (((360, 540), "RGB"), ((1001, 763), "RGB"), ((200, 97), "L"), ((33, 21), "RGB")):
        img = _product(mode=mode).resize(size)
        data = _jpeg(img)
        path = tmp_path / f"{size[0]}.jpg"
        path.write_bytes(data)
        assert convert_module._decode_jpeg(data, 96) is not None  # the fast path applies
        want = np.asarray(open_image(Image.open(io.BytesIO(data)), 96))  # Pillow's draft path
        for src in (data, path, str(path)):
            assert np.array_equal(np.asarray(open_image(src, 96)), want)
    # Pillow decides when the fast path does not apply: CMYK, EXIF rotation, damage.
    assert convert_module._decode_jpeg(_jpeg(_product(mode="RGB").convert("CMYK")), 96) is None
    exif = Image.Exif()
    exif[0x0112] = 6
    assert convert_module._decode_jpeg(_jpeg(_product(mode="RGB"), exif=exif), 96) is None
    exif[0x0112] = 1
    assert convert_module._decode_jpeg(_jpeg(_product(mode="RGB"), exif=exif), 96) is not None
    data = _jpeg(_product(mode="RGB"))
    assert convert_module._decode_jpeg(data[: len(data) // 2], 96) is None


def test_huge_dimensions_are_refused() -> None:
    buf = io.BytesIO()
    Image.new("L", (9000, 9000), 255).save(buf, "PNG")
    with pytest.raises(ConversionError) as exc:
        convert(buf.getvalue())
    assert exc.value.reason == "too-many-pixels"


def test_truncated_jpeg() -> None:
    data = _jpeg(_product(mode="RGB"))
    with pytest.raises(ConversionError) as exc:
        convert(data[: len(data) // 2])
    assert exc.value.reason == "truncated"


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("not an image")
    with pytest.raises(ConversionError) as exc:
        convert(path)
    assert exc.value.reason == "not-an-image" and "notes.jpg" in str(exc.value)


def test_silhouette_round_trip() -> None:
    """A Fashion-MNIST-like silhouette rendered as a photo converts back to the silhouette."""
    sil = np.zeros((28, 28), np.float32)
    sil[:, 8:20] = 1.0  # a "trouser-like" block filling the height, centred
    sil[10:, 13:15] = 0.0  # legs
    photo = Image.fromarray((255 - sil * 180).astype(np.uint8)).resize((280, 280), Image.NEAREST)
    back = convert(_jpeg(photo.convert("RGB"))).astype(np.float32) / 255
    mask = back > 0.3
    target = sil > 0.5
    iou = (mask & target).sum() / (mask | target).sum()
    assert iou > 0.7


def test_recipe_round_trip_and_unknown_params() -> None:
    assert get_recipe(DEFAULT_RECIPE.to_dict()) .to_dict() == DEFAULT_RECIPE.to_dict()
    with pytest.raises(GarmentError, match="unknown"):
        get_recipe({"name": "garment-fmnist", "version": 1, "params": {"bogus": 1}})
    with pytest.raises(GarmentError, match="upgrade garment"):
        get_recipe({"name": "garment-fmnist", "version": 99, "params": {}})


def test_two_framings_crop_and_frame() -> None:
    from garment.convert import convert_views

    img = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(img).ellipse([150, 150, 250, 250], fill=30)  # a small ring-like product
    recipe = {"name": "garment-fmnist", "version": 1, "params": {"framings": ["crop", "frame"]}}
    views = convert_views(img, recipe)
    assert views.shape == (2, 28, 28)
    crop, frame = (v > 50 for v in views)
    assert crop.sum() > 3 * frame.sum() > 0  # the whole packshot keeps the product small
    assert np.array_equal(views[0], convert(img, recipe))
    with pytest.raises(GarmentError, match="framings"):
        get_recipe({"name": "garment-fmnist", "version": 1, "params": {"framings": ["zoom"]}})


def test_compiled_quantile_matches_numpy() -> None:
    from garment._convert import quantile

    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 257, 1736, 5000):
        for a in (rng.random(n), rng.integers(0, 9, n).astype(np.float64), np.full(n, 63.75)):  # ties
            for q in (0.0, 0.5, 0.67, 0.99, 1.0):
                assert quantile(a, q) == pytest.approx(float(np.quantile(a, q)), rel=1e-9, abs=1e-12)


def test_background_fit_ignores_a_product_touching_the_border() -> None:
    from garment._convert import analyse
    from garment.convert import _border

    h, w = 120, 90
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.clip(200 + 30 * xx / w - 20 * yy / h, 0, 255).astype(np.uint8)  # a lit gradient studio
    g[40:h, 30:60] = 20  # a dark product reaching the bottom edge
    inten, diff = np.empty((h, w), np.float32), np.empty((h, w), np.float32)
    mask, rows, cols = np.empty((h, w), bool), np.empty(h, np.int64), np.empty(w, np.int64)
    noise = analyse(g, *_border(h, w, 4), True, 1.0, 0.0, 14.0, 4.0, inten, diff, mask, rows, cols)
    assert noise < 2.0  # the gradient is modelled, the product's border pixels are outliers
    assert mask[40:, 30:60].all() and not mask[:35].any() and not mask[:, :25].any()
    assert rows[:40].sum() == 0 and cols[30:60].min() == h - 40
    assert inten[60, 45] > 200 and inten[10, 10] < 1.0  # rounding of the gradient to 8 bits


def test_compiled_render_is_pillows_resize_and_sharpen() -> None:
    """The kernel's 28x28 render gives Pillow's pixels: resize(BILINEAR, reducing_gap=2.0), then
    UnsharpMask(radius 1, threshold 0), on random images of many shapes, scales and contents."""
    from PIL import ImageFilter

    from garment._convert import render
    from garment.convert import SHARPEN_RADIUS, blur_constants

    blur = blur_constants(SHARPEN_RADIUS)
    rng = np.random.default_rng(0)
    for case in range(1000):
        h, w = (int(v) for v in rng.integers(1, 170, 2))
        if case % 2:  # smooth content, like a product
            a = np.clip(np.cumsum(rng.normal(0, 9, (h, w)), 1) + 128, 0, 255).astype(np.uint8)
        else:
            a = rng.integers(0, 256, (h, w)).astype(np.uint8)
        size, fill = int(rng.choice([28, 20, 40])), float(rng.choice([1.0, 0.8, 0.5]))
        percent = int(rng.choice([0, 60, 150]))
        scale = size * fill / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = Image.fromarray(a, "L").resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
        if percent:
            small = small.filter(ImageFilter.UnsharpMask(radius=SHARPEN_RADIUS, percent=percent, threshold=0))
        want = np.zeros((size, size), np.uint8)
        want[(size - nh) // 2 : (size - nh) // 2 + nh, (size - nw) // 2 : (size - nw) // 2 + nw] = small
        got = np.full((size, size), 7, np.uint8)
        render(a, got, fill, percent, *blur)
        assert np.array_equal(got, want), (case, (h, w), (nh, nw), percent)


def test_kernel_refuses_inconsistent_arrays() -> None:
    from garment._convert import convert as kernel
    from garment.convert import DEFAULT_RECIPE, KERNEL_PARAMS, _border

    g = np.full((40, 30), 255, np.uint8)
    params, framings, size = DEFAULT_RECIPE.kernel_args
    out = np.empty((len(framings), size, size), np.uint8)
    idx, xy, pinv = _border(40, 30, 2)
    with pytest.raises(ValueError, match="shapes"):
        kernel(g, 1, idx, xy, pinv, params[:-1], framings, out)
    with pytest.raises(ValueError, match="border index"):
        kernel(g, 2, idx, xy, pinv, params, framings, out)  # indices of the unreduced image
    with pytest.raises(TypeError):
        kernel(g.astype(np.float32), 1, idx, xy, pinv, params, framings, out)
    big = params.copy()
    big[KERNEL_PARAMS.index("fill")] = 1.5  # get_recipe refuses such a recipe; the kernel too
    with pytest.raises(ValueError, match="larger than its output"):
        kernel(np.pad(np.zeros((10, 10), np.uint8), 15, constant_values=255), 1, *_border(40, 40, 2), big,
               np.array([0]), out[:1])
    with pytest.raises(GarmentError, match="fill"):
        get_recipe({"name": "garment-fmnist", "version": 1, "params": {"fill": 1.5}})


def test_crop_on_no_product_pixel_gives_a_blank_view() -> None:
    """A row and a column that qualify for the crop only through separate strokes meet on an empty
    pixel: the "pair" split of that 1x1 crop leaves nothing, and the crop view is blank."""
    g = np.full((40, 40), 255, np.uint8)
    g[20, 5:16] = 0  # a horizontal stroke: row 20 qualifies
    g[5:16, 30] = 0  # a vertical stroke: column 30 qualifies; (20, 30) itself is background
    recipe = {"name": "garment-fmnist", "version": 1,
              "params": {"trim_fraction": 0.05, "framings": ["crop", "frame"]}}
    crop, frame = convert_views(Image.fromarray(g), recipe)
    assert crop.max() == 0 and frame.max() > 0
