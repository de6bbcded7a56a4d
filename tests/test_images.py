"""Packshot checks and storage: small packshots kept, big ones judged from the header,
identical bytes saved from many threads at once, the largest rendition first."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFile

from garment.scrape.images import (
    FULL_DECODE_PIXELS,
    check_image,
    decoded_pixels,
    largest_first,
    pixel_limit,
    rendition,
    save_image,
    srcset_best,
)
from shopsite import make_jpeg


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(size: tuple[int, int]) -> Image.Image:
    """An image with detail (a flat one compresses below any byte floor)."""
    return Image.effect_mandelbrot(size, (-2.0, -1.2, 0.8, 1.2), 64).convert("RGB")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``x``height`` but holds a single row: enough for a
    header check, tiny to build."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims ``width``x``height``."""
    data = bytearray(encode(photo((64, 64)), "JPEG", quality=90))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any full decode fails the test: big images must be judged without one."""
    def refuse(self: ImageFile.ImageFile) -> None:
        if self.size[0] * self.size[1] > FULL_DECODE_PIXELS:
            raise AssertionError(f"decoded a {self.size} image in full")
        original(self)
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# -- storage ------------------------------------------------------------------------------
def test_identical_packshots_saved_from_many_threads(tmp_path: Path) -> None:
    body = make_jpeg(7)
    check = check_image(body)
    barrier = threading.Barrier(32)
    results: list[str] = []
    failures: list[BaseException] = []

    def save() -> None:
        barrier.wait()
        try:
            for _ in range(5):
                results.append(save_image(tmp_path, body, check))
        except BaseException as exc:  # collected: the assertion below names it
            failures.append(exc)

    threads = [threading.Thread(target=save) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not failures, failures[:3]
    assert len(results) == 160 and len(set(results)) == 1
    files = [p for p in (tmp_path / "images").rglob("*") if p.is_file()]
    assert files == [tmp_path / results[0]]  # one file, no temporary left behind
    assert files[0].read_bytes() == body


def test_a_failed_write_leaves_no_temporary(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    body = make_jpeg(8)
    check = check_image(body)

    def boom(src: object, dst: object) -> None:
        raise OSError("disk full")
    monkeypatch.setattr("garment.scrape.images.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_image(tmp_path, body, check)
    assert not [p for p in (tmp_path / "images").rglob("*") if p.is_file()]


# -- sizes --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_packshots_down_to_28_px_are_kept_with_their_size(fmt: str) -> None:
    ok = check_image(encode(photo((28, 37)), fmt))
    assert (ok.status, ok.width, ok.height, ok.format) == ("ok", 28, 37, fmt.lower())
    small = check_image(encode(photo((27, 60)), fmt))
    assert small.status == "too_small" and "27x60 < 28 px" in (small.error or "")
    assert check_image(encode(photo((60, 80)), fmt), min_px=100).status == "too_small"


def test_a_60x80_webp_thumbnail_is_not_refused_for_its_bytes() -> None:
    im = Image.radial_gradient("L").resize((60, 80)).convert("RGB")
    ImageDraw.Draw(im).ellipse((10, 15, 50, 70), fill=(180, 40, 60))  # a garment, roughly
    body = encode(im, "WEBP", quality=75)
    assert len(body) < 500  # the old byte floor refused it
    assert check_image(body).status == "ok"


def test_huge_png_refused_from_its_header(no_decoding: None) -> None:
    check = check_image(png_header_only(9400, 9400), min_bytes=0)
    assert check.status == "too_large" and (check.width, check.height) == (9400, 9400)
    assert f"{pixel_limit():,} pixel limit" in (check.error or "")  # the limit is named


def test_large_images_are_checked_by_structure_not_decoded(no_decoding: None) -> None:
    big = encode(Image.new("L", (3000, 2000), 128), "PNG")
    assert check_image(big).status == "ok"
    cut = check_image(big[:-20])  # IEND lost in transit
    assert cut.status == "corrupt"
    # classify decodes a JPEG at reduced scale: 6000x8000 is within its limit.
    assert decoded_pixels("JPEG", 6000, 8000) <= pixel_limit()
    jpeg = jpeg_claiming(6000, 8000)
    assert check_image(jpeg).status == "ok"
    assert check_image(jpeg[: len(jpeg) * 2 // 3]).status == "corrupt"  # no end marker
    assert check_image(png_header_only(6000, 8000), min_bytes=0).status == "too_large"


def test_small_images_are_decoded_in_full() -> None:
    body = make_jpeg(3)
    assert check_image(body).status == "ok"
    assert check_image(body[: len(body) // 2]).status == "corrupt"
    assert check_image(b"<html>nope</html>" * 50).status == "not_image"
    assert check_image(body, max_px=100).status == "too_large"
    png = encode(photo((200, 260)), "PNG")
    assert check_image(png, max_pixels=200 * 260).status == "ok"
    assert check_image(png, max_pixels=200 * 259).status == "too_large"


# -- renditions ---------------------------------------------------------------------------
def test_srcset_gives_the_largest_rendition_within_the_limit() -> None:
    assert srcset_best("a.jpg 300w, b.jpg 1200w, c.jpg 600w") == "b.jpg"
    assert srcset_best("a.jpg 300w, b.jpg 20000w", max_px=10_000) == "a.jpg"
    assert srcset_best("a.jpg 30000w, b.jpg 20000w", max_px=10_000) == "b.jpg"
    assert srcset_best("a.jpg, b.jpg 2x") == "b.jpg"
    assert srcset_best("/w_300,h_400/a.jpg 300w, /w_900,h_1200/a.jpg 900w") == \
        "/w_900,h_1200/a.jpg"
    assert srcset_best("data:image/gif;base64,R0lG 1x, c.jpg 2x") == "c.jpg"
    assert srcset_best("   ") is None


def test_renditions_of_one_image_largest_first_in_place() -> None:
    assert rendition("https://c.example/a.jpg?w=300&v=2") == ("https://c.example/a.jpg?v=2", 300)
    assert rendition("https://c.example/a-300x400.jpg") == ("https://c.example/a.jpg", 300)
    assert rendition("https://c.example/v.php?w=front") == ("https://c.example/v.php?w=front",
                                                             None)
    urls = ["https://c.example/a.jpg?w=300", "https://c.example/b.jpg",
            "https://c.example/a.jpg?w=1200", "https://c.example/a.jpg?w=20000",
            "https://c.example/b-150x150.jpg"]
    assert largest_first(urls) == [
        "https://c.example/a.jpg?w=1200", "https://c.example/a.jpg?w=300",
        "https://c.example/a.jpg?w=20000",  # over max_px: last of its image
        "https://c.example/b.jpg", "https://c.example/b-150x150.jpg"]  # the original first
