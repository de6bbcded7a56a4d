"""Scrape, packshot checks: downloaded bytes -> verdict and file, pure and offline-testable.

The original bytes are kept; the file name is the SHA-256 of the bytes (never anything
from the URL) with the extension of the format Pillow reads, so identical images are
stored once.

A check never costs more than a small image's decode: the size comes from the header
(Pillow's lazy open), images up to ``FULL_DECODE_PIXELS`` are decoded in full, larger
ones are checked by their structure only (JPEG end marker, PNG chunk checksums, GIF
trailer, WebP length), so a 9400x9400 PNG costs its bytes, not 340 MB of pixels. The
pixel limit and the rule counting decoded pixels are classify's (``garment.convert``'s
MAX_PIXELS and decoded_pixels), so whatever the crawl stores as "ok" is an image
classify accepts.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

NOAI = re.compile(r"\bno(image)?ai\b", re.I)
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
              "TIFF": "tif", "AVIF": "avif"}

#: Statuses after which the next candidate image of a product is tried.
TRY_NEXT = frozenset({"too_small", "too_large", "not_image", "corrupt", "http_error",
                      "refused"})

#: The network reads 28x28: a shorter side from this on is a usable packshot.
MIN_IMAGE_PX = 28
#: A packshot whose shorter side reaches this ends the search; a smaller one is kept
#: unless a later candidate of the product is larger.
GOOD_IMAGE_PX = 100
#: Images with at most this many pixels are decoded in full (at most ~16 MB RGBA).
FULL_DECODE_PIXELS = 4_000_000
#: Renditions wider than this are tried last (CrawlConfig.max_image_px's default).
MAX_RENDITION_PX = 10_000
#: Query parameters that set a rendition's width / only its size (never its content).
WIDTH_PARAMS = frozenset({"w", "width", "wid", "imwidth", "im_w", "sw", "mw", "maxwidth",
                          "resize_w"})
SIZE_PARAMS = WIDTH_PARAMS | frozenset({"h", "height", "hei", "imheight", "im_h", "sh",
                                        "mh", "maxheight", "resize_h"})
#: A size suffix before the extension: WordPress's shirt-300x400.jpg, Shopify's shirt_600x.jpg.
SIZE_SUFFIX = re.compile(r"[-_](\d{2,5})x(\d{2,5})?(?=(@\dx)?\.\w{3,4}$)")
#: One srcset candidate (HTML's rules): a URL, trailing commas not its own, then
#: descriptors up to the next comma ("300w", "2x").
SRCSET_ITEM = re.compile(r"[\s,]*(\S+?)(?:,+(?=\s|$)|(?=\s|$)([^,]*))")
DESCRIPTOR = re.compile(r"^\s*(\d+(?:\.\d+)?)([wx])\s*$")

# -- packshot choice: markup evidence ------------------------------------------------------
#: URL words of a product-only photo, and of a worn, styled or scene photo (whole words
#: of the URL: ``filter=packshot``, ``/cutout/``, ``_model_``).
PACKSHOT_WORDS = re.compile(r"(?<![a-z0-9])(pack[-_]?shots?|product[-_]?shots?|cut[-_]?outs?|"
                            r"ghost|flat[-_]?lays?|still[-_]?life)(?![a-z0-9])", re.I)
WORN_WORDS = re.compile(r"(?<![a-z0-9])(models?|worn|on[-_]?model|lifestyle|outfits?|"
                        r"editorial|campaign|mood|styled)(?![a-z0-9])", re.I)
#: Evidence weights (points) a picture's markup earns; the content score
#: (``garment.convert.packshot_score``, 0..1) adds up to ``CONTENT_WEIGHT`` more.
EVIDENCE = {"og": 3.0, "packshot_word": 4.0, "worn_word": -3.0, "shown_variant": 2.0,
            "product_markup": 1.0, "more_sources": 1.0, "first": 0.5, "small": -1.0,
            "zoom": 1.0, "alt_name": 1.0, "thumbnail": -1.5}
#: <img> attributes that offer a photo at a larger size (a zoomable main photo).
ZOOM_ATTRS = frozenset({"data-zoom-image", "data-zoom", "data-large", "data-large-image",
                        "data-old-hires", "data-hires", "data-full", "data-fullsize"})
#: Markup (class, id) of an <img> or its near ancestors that shows it as a thumbnail.
THUMB_MARK = re.compile(r"thumb|swatch|carousel-nav|mini(?![a-z])", re.I)
CONTENT_WEIGHT = 4.0
#: Markup layers that describe the product itself (their images are its photos).
PRODUCT_SOURCES = frozenset({"jsonld", "microdata", "rdfa", "profile", "feed", "sitemap"})
#: Absolute or protocol-relative URLs anywhere in a page's text (markup, inline JSON).
PAGE_URL = re.compile(r"(?:https?:)?//[^\s\"'<>()\\,]+")


@dataclass
class Picture:
    """One candidate picture of a product: its renditions (largest first), where the
    page names it, and the evidence so far (points and readable reasons)."""

    renditions: list[str]
    sources: list[str]
    variant: bool = False
    evidence: float = 0.0
    reasons: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.renditions[0]

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "sources": self.sources, "variant": self.variant,
                "evidence": self.evidence, "reasons": list(self.reasons)}


@functools.lru_cache(maxsize=16384)  # a page names each picture many times
def picture_key(url: str) -> tuple[str, tuple[str, ...], str]:
    """Which picture a URL shows, whatever its size and image service: (host, the last
    three path segments, the query without size parameters). An image service's prefix
    (``/dw/image/v2/SITE/on/...``) and the plain file of the same picture agree."""
    parts = urlsplit(rendition(url)[0])
    segments = tuple(s for s in parts.path.split("/") if s)
    return (parts.hostname or "").lower(), segments[-3:], parts.query


def _page_renditions(page: str, keys: set[Any], base_scheme: str) -> dict[Any, list[str]]:
    """Other renditions of the pictures ``keys`` (``picture_key``) named anywhere in the
    page's text: srcsets, zoom attributes, inline JSON (``\\/`` unescaped)."""
    found: dict[Any, list[str]] = {}
    # File names without extension (a size suffix sits before it): a cheap first filter.
    names = {key[1][-1].rsplit(".", 1)[0] for key in keys if key[1]}
    text = page.replace("\\/", "/").replace("&amp;", "&")
    for m in PAGE_URL.finditer(text):
        url = m.group(0)
        if not any(name in url for name in names):
            continue
        if url.startswith("//"):
            url = f"{base_scheme}:{url}"
        if rendition(url)[1] is not None and (key := picture_key(url)) in keys:
            found.setdefault(key, []).append(url)
    return found


def img_hints(tree: Any, page_url: str, name: str | None = None,
              keys: set[Any] | None = None) -> dict[Any, set[str]]:
    """How the page shows each picture (``picture_key`` -> hints), read off its <img>
    elements: "zoom" (offered larger: a zoom attribute), "alt_name" (its alt text names
    the product ``name``), "thumbnail" (in thumbnail markup) or "shown" (elsewhere).
    With ``keys``, only those pictures are read (a page's other images cost a lookup)."""
    from urllib.parse import urljoin

    words = set(re.findall(r"\w{3,}", (name or "").lower()))
    hints: dict[Any, set[str]] = {}
    for img in tree.iter("img"):
        urls = [v for k, v in img.attrib.items() if k in ZOOM_ATTRS or k in (
            "src", "data-src", "data-original") and v]
        urls += [m.group(1) for k in ("srcset", "data-srcset")
                 for m in SRCSET_ITEM.finditer(img.get(k) or "")]
        found = {picture_key(urljoin(page_url, u)) for u in (u.strip() for u in urls)
                 if u and not u.startswith("data:")}
        if keys is not None:
            found &= keys
        if not found:
            continue
        marks = " ".join(a.get(k) or "" for a in [img, *list(img.iterancestors())[:3]]
                         if isinstance(a.tag, str) for k in ("class", "id"))
        flags = {"thumbnail" if THUMB_MARK.search(marks) else "shown"}
        if ZOOM_ATTRS & set(img.attrib):
            flags.add("zoom")
        alt = set(re.findall(r"\w{3,}", (img.get("alt") or "").lower()))
        if words and len(words & alt) >= max(1, len(words) // 2):
            flags.add("alt_name")
        for key in found:
            hints.setdefault(key, set()).update(flags)
    return hints


def rank_pictures(candidates: list[dict[str, Any]], og_images: list[str] | None = None,
                  page: str | None = None, page_url: str = "",
                  max_px: int = MAX_RENDITION_PX,
                  hints: dict[Any, set[str]] | None = None) -> list[Picture]:
    """The product's candidate pictures, best evidence first.

    ``candidates`` are ``{"url", "source", "variant"}`` dicts in page order (extraction's
    ``image_candidates``; ``source`` the layer that named the image: jsonld, og, microdata,
    gallery...; ``variant`` True when it comes from the variant the page shows).
    Renditions of one picture (``picture_key``: size parameters, size suffixes, image
    service prefixes) are merged and, with ``page``, completed by the picture's other
    renditions named anywhere in the page: a picture is tried at its largest rendition
    within ``max_px`` first. Evidence: the page's og:image (``og_images``), packshot words
    in the URL, the variant the page shows, product markup, several layers naming it,
    first in page order, how the page shows it (``hints``, from ``img_hints``: offered
    zoomed, its alt text naming the product); worn/styled words and a picture shown only
    as a thumbnail count against it. Ties keep page order.
    """
    og_keys = {picture_key(u) for u in og_images or []}
    pictures: dict[Any, Picture] = {}
    for c in candidates:
        url = c.get("url") or ""
        if not url:
            continue
        pic = pictures.setdefault(picture_key(url), Picture([], []))
        if url not in pic.renditions:
            pic.renditions.append(url)
        source = str(c.get("source") or "markup")
        if source not in pic.sources:
            pic.sources.append(source)
        pic.variant = pic.variant or bool(c.get("variant"))
    if page and any(rendition(u)[1] is not None for p in pictures.values()
                    for u in p.renditions):
        scheme = urlsplit(page_url).scheme or "https"
        for key, urls in _page_renditions(page, set(pictures), scheme).items():
            pictures[key].renditions.extend(u for u in urls
                                            if u not in pictures[key].renditions)
    ranked = []
    for i, (key, pic) in enumerate(pictures.items()):
        # The largest rendition at the path the page names first (an image service's or
        # a mirror's copy of the same picture only after it), within max_px.
        lead = rendition(pic.renditions[0])[0]
        pic.renditions = sorted(pic.renditions, key=lambda u: (
            rendition(u)[0] != lead, *_size_rank(u, max_px)))
        _score_markup(pic, i, key in og_keys, (hints or {}).get(key, set()))
        ranked.append((-pic.evidence, i, pic))
    return [pic for _, _, pic in sorted(ranked, key=lambda t: t[:2])]


def _score_markup(pic: Picture, position: int, is_og: bool, shown: set[str]) -> None:
    """Add ``pic``'s markup evidence (points and reasons)."""
    points: list[tuple[str, str]] = []
    if is_og or "og" in pic.sources or "opengraph" in pic.sources:
        points.append(("og", "the page's og:image"))
    urltext = unquote(rendition(pic.url)[0])
    if m := PACKSHOT_WORDS.search(urltext):
        points.append(("packshot_word", f"URL says {m.group(0)!r}"))
    elif m := WORN_WORDS.search(urltext):
        points.append(("worn_word", f"URL says {m.group(0)!r} (worn or styled photo)"))
    if pic.variant:
        points.append(("shown_variant", "the variant the page shows"))
    if PRODUCT_SOURCES & set(pic.sources):
        points.append(("product_markup", "named by product markup"))
    if len(pic.sources) > 1:
        points.append(("more_sources", f"named by {len(pic.sources)} layers"))
    if position == 0:
        points.append(("first", "first in page order"))
    if "zoom" in shown:
        points.append(("zoom", "the page offers it zoomed"))
    if "alt_name" in shown:
        points.append(("alt_name", "its alt text names the product"))
    if "thumbnail" in shown and "shown" not in shown:
        points.append(("thumbnail", "shown only as a thumbnail"))
    for name, why in points:
        pic.evidence += EVIDENCE[name]
        pic.reasons.append(f"{why} ({EVIDENCE[name]:+g})")



@dataclass
class ImageCheck:
    """The verdict on one download: ``status`` 'ok' or why not."""

    status: str
    error: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    sha256: str | None = None
    bytes: int | None = None

    @property
    def short_side(self) -> int:
        """The shorter side in pixels (0 when unknown)."""
        return min(self.width or 0, self.height or 0)


def forbids_ai(headers: list[str]) -> bool:
    """Whether X-Robots-Tag values (or meta robots contents) say noai / noimageai."""
    return any(NOAI.search(h) for h in headers)


def pixel_limit() -> int:
    """Classify's decode-bomb limit: the crawl refuses what classify would refuse."""
    from garment.convert import MAX_PIXELS

    return MAX_PIXELS


def decoded_pixels(fmt: str, width: int, height: int) -> int:
    """Pixels classify decodes for an image (``garment.convert.decoded_pixels``): JPEGs at
    reduced scale (libjpeg's 1/8 at most), every other format in full."""
    from garment.convert import decoded_pixels as classify_decodes

    return classify_decodes(fmt, width, height)


def srcset_best(srcset: str, max_px: int = MAX_RENDITION_PX) -> str | None:
    """The largest candidate of a srcset: the widest ``w`` within ``max_px`` (else the
    narrowest), or the highest density ``x``; None when there is none."""
    items: list[tuple[str, float, str]] = []
    for m in SRCSET_ITEM.finditer(srcset):
        url, desc = m.group(1), DESCRIPTOR.match(m.group(2) or "")
        if not url.startswith("data:"):
            items.append((url, float(desc.group(1)) if desc else 1.0,
                          desc.group(2) if desc else "x"))
    widths = [(v, u) for u, v, kind in items if kind == "w"]
    if widths:
        fitting = [(v, u) for v, u in widths if v <= max_px]
        return max(fitting)[1] if fitting else min(widths)[1]
    return max(((v, u) for u, v, _ in items), default=(0.0, None))[1]


@functools.lru_cache(maxsize=16384)
def rendition(url: str) -> tuple[str, int | None]:
    """(the image's URL without size parameters or suffix, the width the URL asks for)."""
    parts = urlsplit(url)
    width = None
    query = []
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k.lower() in SIZE_PARAMS and v.isdigit():  # ?w=front names a view, not a size
            if k.lower() in WIDTH_PARAMS:
                width = int(v)
            continue
        query.append((k, v))
    path = parts.path
    if m := SIZE_SUFFIX.search(path):
        width = width or int(m.group(1))
        path = path[:m.start()] + path[m.end():]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), "")), width


def _size_rank(url: str, max_px: int) -> tuple[int, int]:
    """Order of a rendition: the original (no size asked) first, then the widest within
    ``max_px``, then wider ones narrowest first."""
    width = rendition(url)[1]
    return (0, 0) if width is None else (1, -width) if width <= max_px else (2, width)


def largest_first(urls: list[str], max_px: int = MAX_RENDITION_PX) -> list[str]:
    """``urls`` with the renditions of each image together, at the position of the first:
    the original (no size asked) first, then the widest within ``max_px``, then wider
    ones narrowest first."""
    groups: dict[str, list[tuple[tuple[int, int], int, str]]] = {}
    for i, u in enumerate(urls):
        groups.setdefault(rendition(u)[0], []).append((_size_rank(u, max_px), i, u))
    return [u for group in groups.values() for _, _, u in sorted(group)]


#: A downloaded picture's content score (``packshot_score``) and why, when it was checked.
Scored = tuple[float, list[str]] | None


def check_and_score(body: bytes, min_px: int, max_px: int, min_bytes: int
                    ) -> tuple[ImageCheck, Scored]:
    """``check_image``, and the content score of an image that passes it (0 when the
    conversion cannot read it)."""
    from garment.convert import ConversionError, packshot_score

    check = check_image(body, min_px, max_px, min_bytes)
    if check.status != "ok":
        return check, None
    try:
        return check, packshot_score(body)
    except ConversionError as exc:
        return check, (0.0, [f"unreadable: {exc.reason}"])


def check_image(body: bytes, min_px: int = MIN_IMAGE_PX, max_px: int = 10_000,
                min_bytes: int = 100, max_pixels: int | None = None) -> ImageCheck:
    """Judge ``body`` as a packshot from its header, decoding only small images.

    ``min_px``/``max_px`` bound the shorter/longer side, ``max_pixels`` the area
    (default: ``pixel_limit()``); the refusal message names the limit used.
    """
    sha = hashlib.sha256(body).hexdigest()
    size = len(body)
    base: dict[str, Any] = {"sha256": sha, "bytes": size}
    if size < min_bytes:
        return ImageCheck("too_small", f"{size} bytes < {min_bytes}", **base)
    from PIL import Image

    limit = pixel_limit() if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            # The limit below is ours (classify's); Pillow's own is only a backstop.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(body))
    except Image.DecompressionBombError as exc:
        return ImageCheck("too_large", f"{exc}"[:200], **base)
    except Exception as exc:  # Pillow raises several types for "not an image"
        return ImageCheck("not_image", f"{type(exc).__name__}: {exc}"[:200], **base)
    width, height = im.size
    fmt = (im.format or "").upper()
    info: dict[str, Any] = {"width": width, "height": height, "format": fmt.lower(), **base}
    if max(width, height) > max_px:
        return ImageCheck("too_large", f"{width}x{height} > {max_px} px", **info)
    if (decoded := decoded_pixels(fmt, width, height)) > limit:
        return ImageCheck("too_large", f"{width}x{height} {fmt or 'image'} decodes to "
                                       f"{decoded:,} pixels, over the {limit:,} pixel "
                                       "limit", **info)
    if min(width, height) < min_px:
        return ImageCheck("too_small", f"{width}x{height} < {min_px} px", **info)
    try:
        if width * height <= FULL_DECODE_PIXELS:
            im.load()  # decodes every byte: truncated and corrupt files fail here
        else:
            _check_structure(im, fmt, body)
    except Exception as exc:  # OSError, SyntaxError, ValueError, struct.error...
        return ImageCheck("corrupt", f"{type(exc).__name__}: {exc}"[:200], **info)
    return ImageCheck("ok", None, **info)


def _check_structure(im: Any, fmt: str, body: bytes) -> None:
    """Raise OSError when a large image is visibly cut short, without decoding pixels."""
    if fmt == "PNG":
        im.verify()  # walks every chunk to IEND checking CRCs; inflates nothing
    elif fmt == "JPEG":
        # Entropy-coded data stuffs every 0xFF byte, so FFD9 near the end is the real end
        # of image (an EXIF thumbnail's own FFD9 sits in the header, far from the end).
        if b"\xff\xd9" not in body[-64:]:
            # Data after the image (a motion photo's video...) or a cut: decoding at 1/8
            # scale tells them apart at 1/64 of the pixels.
            im.draft("L", (im.width // 8, im.height // 8))
            im.load()
    elif fmt == "GIF":
        if not body.rstrip(b"\x00").endswith(b";"):
            raise OSError("GIF without its trailer: cut short")
    elif fmt == "WEBP":
        if len(body) < 8 + int.from_bytes(body[4:8], "little"):
            raise OSError("WebP shorter than its RIFF header says: cut short")


#: Image folders this process has made (a set's add and lookup are atomic in CPython).
_MADE: set[Path] = set()


def save_image(folder: Path, body: bytes, check: ImageCheck) -> str:
    """Write ``body`` under ``folder/images/`` once; returns the path relative to folder.

    Safe from any number of threads and processes at once: each writer has its own
    temporary file in the target folder, renamed over the final name atomically.
    """
    ext = EXTENSIONS.get((check.format or "").upper(), "bin")
    sha = check.sha256 or hashlib.sha256(body).hexdigest()
    rel = Path("images") / sha[:2] / f"{sha}.{ext}"
    dest = folder / rel
    if not dest.exists():
        if dest.parent not in _MADE:  # one mkdir per folder, not one per image
            dest.parent.mkdir(parents=True, exist_ok=True)
            _MADE.add(dest.parent)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{sha[:16]}.", suffix=".part", dir=dest.parent)
        except FileNotFoundError:  # the folder went away since it was made
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{sha[:16]}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide packshots from other users
            os.replace(tmp, dest)  # atomic: a kill never leaves half a file under the name
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return rel.as_posix()
