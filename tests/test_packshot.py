"""Packshot choice: markup evidence (images.rank_pictures), content (convert.packshot_score),
and the crawl's choice with its reasons, on a local shop served on 127.0.0.1."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from garment.convert import ConversionError, packshot_score
from garment.scrape.extract import parse_html
from garment.scrape.images import img_hints, picture_key, rank_pictures
from garment.scrape.reader import page_pictures


def packshot(size: tuple[int, int] = (300, 400)) -> Image.Image:
    """A dark garment whole on a white studio background."""
    im = Image.new("RGB", size, (255, 255, 255))
    w, h = size
    ImageDraw.Draw(im).rectangle((w // 4, h // 6, 3 * w // 4, 5 * h // 6), fill=(40, 40, 90))
    return im


def worn(size: tuple[int, int] = (300, 400)) -> Image.Image:
    """A person wearing it in a street scene: textured background, cut by the frame."""
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.normal(120, 45, (size[1], size[0], 3)).clip(0, 255).astype("uint8"))
    d = ImageDraw.Draw(im)
    w, h = size
    d.rectangle((w // 3, 0, 2 * w // 3, h), fill=(200, 150, 120))  # the model, head to toe cut
    d.rectangle((w // 4, h // 5, 3 * w // 4, 3 * h // 4), fill=(40, 40, 90))
    return im


def jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


# -- content ----------------------------------------------------------------------------
def test_packshot_score_prefers_one_product_on_a_plain_background() -> None:
    clean, why = packshot_score(packshot())
    scene, why_scene = packshot_score(worn())
    assert clean > 0.9 and scene < 0.6
    assert "whole in frame" in why[2] and "cut by 2 sides" in why_scene[2]
    empty, why_empty = packshot_score(Image.new("L", (200, 200), 255))
    assert empty <= 0.75 and "covers 0%" in why_empty[1]
    full, _ = packshot_score(Image.new("L", (200, 200), 30))  # no background: nothing stands out
    assert full < clean
    assert packshot_score(jpeg(packshot()))[0] > 0.9  # bytes, decoded like classify does
    with pytest.raises(ConversionError):
        packshot_score(b"not an image at all")


def test_packshot_score_on_tiny_and_grey_studio_images() -> None:
    assert packshot_score(packshot((12, 16)))[0] > 0.5  # repeated up to a usable size
    grey = Image.new("L", (300, 400), 215)
    ImageDraw.Draw(grey).ellipse((90, 60, 210, 340), fill=60)
    assert packshot_score(grey)[0] > 0.9


# -- markup evidence ----------------------------------------------------------------------
def test_og_and_packshot_word_outrank_the_first_markup_image() -> None:
    cdn = "https://img.cdn.example/a"
    cands = [{"url": f"{cdn}/worn1.jpg?imwidth=103", "source": "jsonld"},
             {"url": f"{cdn}/shot2.jpg?imwidth=103&filter=packshot", "source": "jsonld"},
             {"url": f"{cdn}/detail3.jpg?imwidth=103", "source": "jsonld"}]
    og = [f"{cdn}/shot2.jpg?imwidth=762&filter=packshot"]
    escaped = json.dumps(f"{cdn}/worn1.jpg?imwidth=2400").replace("/", "\\/")  # JSON's \/
    page = (f'<img srcset="{cdn}/shot2.jpg?imwidth=1800&amp;filter=packshot 1800w, '
            f'{cdn}/shot2.jpg?imwidth=20000&filter=packshot 20000w">'
            f'<script>{{"zoom": {escaped}}}</script>')
    pics = rank_pictures(cands + [{"url": og[0], "source": "og"}], og, page,
                         "https://shop.example/p/1", max_px=4000)
    assert [picture_key(p.url)[1][-1] for p in pics] == ["shot2.jpg", "worn1.jpg", "detail3.jpg"]
    top = pics[0]
    # Largest rendition within max_px first, the one over it last.
    assert top.renditions[0].endswith("imwidth=1800&filter=packshot")
    assert top.renditions[-1].endswith("imwidth=20000&filter=packshot")
    assert any("og:image" in r for r in top.reasons) and any("packshot" in r for r in top.reasons)
    assert top.sources == ["jsonld", "og"]
    assert pics[1].renditions[0].endswith("worn1.jpg?imwidth=2400")  # found in inline JSON
    suffixed = rank_pictures([{"url": "https://c.example/a/shirt-300x400.jpg"}],
                             page='<a data-zoom="https://c.example/a/shirt-600x800.jpg">',
                             page_url="https://shop.example/p/2")
    assert suffixed[0].renditions == ["https://c.example/a/shirt-600x800.jpg",
                                      "https://c.example/a/shirt-300x400.jpg"]


def test_worn_words_variant_and_page_order() -> None:
    base = "https://cdn.example/p"
    pics = rank_pictures([{"url": f"{base}/model-front.jpg", "source": "jsonld"},
                          {"url": f"{base}/b.jpg", "source": "jsonld"},
                          {"url": f"{base}/c.jpg", "source": "gallery"}])
    assert [p.url for p in pics] == [f"{base}/b.jpg", f"{base}/c.jpg", f"{base}/model-front.jpg"]
    assert rank_pictures([{"url": f"{base}/x.jpg", "source": "jsonld"},
                          {"url": f"{base}/y.jpg", "source": "jsonld", "variant": True}]
                         )[0].url == f"{base}/y.jpg"
    # Ties keep page order; a word inside another (a scene7 host, "models2020") is no word.
    same = rank_pictures([{"url": "https://x.scene7.com/is/image/A/1?x=models2020"},
                          {"url": "https://x.scene7.com/is/image/A/2"}])
    assert [p.url[-1] for p in same] == ["0", "2"]


def test_an_image_service_prefix_and_the_plain_file_are_one_picture() -> None:
    plain = "https://shop.example/on/static/-/cat/default/dw1/large/123_Black_001.jpg"
    served = ("https://shop.example/dw/image/v2/SITE/on/static/-/cat/default/dw1/large/"
              "123_Black_001.jpg?sw=2400")
    other = "https://shop.example/on/static/-/cat/default/dw2/large/123_Blue_001.jpg"
    pics = rank_pictures([{"url": other, "source": "jsonld", "variant": True},
                          {"url": served, "source": "gallery"}, {"url": plain, "source": "og"}],
                         og_images=[plain])
    # One picture; the path the page names first leads, the other copy follows.
    assert pics[0].renditions == [served, plain] and pics[0].sources == ["gallery", "og"]


def test_page_pictures_adds_the_og_image_and_drops_furniture() -> None:
    html = ("<html><head><meta name='og:image' content='https://cdn.example.com/main.jpg'>"
            "<meta property='og:image' content='https://shop.example/favicon-192.png'></head>"
            "<body></body></html>")
    product = {"image_urls": ["https://cdn.example.com/other.jpg"],
               "sources": {"image_urls": "jsonld"}}
    pics = page_pictures(product, parse_html(html), html, "https://shop.example/p/1", 10_000)
    assert [p.url for p in pics] == ["https://cdn.example.com/main.jpg",
                                     "https://cdn.example.com/other.jpg"]


def test_how_the_page_shows_a_picture_counts() -> None:
    cdn = "https://cdn.example/i"
    html = ("<html><body><ul class='thumbs'>" + "".join(
        f"<li><img src='{cdn}/t{i}._40_.jpg'></li>" for i in range(4)) + "</ul>"
        f"<div id='main'><img src='{cdn}/main_500.jpg' alt='Leather boot by Acme' "
        f"data-old-hires='{cdn}/main_1500.jpg'></div></body></html>")
    tree = parse_html(html)
    hints = img_hints(tree, "https://shop.example/p/1", "Leather boot")
    assert hints[picture_key(f"{cdn}/main_1500.jpg")] == {"shown", "zoom", "alt_name"}
    assert hints[picture_key(f"{cdn}/t0._40_.jpg")] == {"thumbnail"}
    cands = [{"url": f"{cdn}/t{i}._40_.jpg", "source": "gallery"} for i in range(4)]
    cands.insert(3, {"url": f"{cdn}/main_1500.jpg", "source": "gallery"})
    pics = rank_pictures(cands, hints=hints)
    assert pics[0].url == f"{cdn}/main_1500.jpg"
    assert any("zoomed" in r for r in pics[0].reasons)
    assert any("thumbnail" in r for r in pics[-1].reasons)


# -- the crawl's choice -------------------------------------------------------------------
class Shop:
    """Two products: one whose first JSON-LD image is a worn street photo and second a
    plain packshot (content decides), one with an og:image packshot in three sizes."""

    def __init__(self) -> None:
        self.images = {"/img/street1.jpg": jpeg(worn()), "/img/pack.jpg": jpeg(packshot()),
                       "/img/shot.jpg?w=300": jpeg(packshot((300, 400))),
                       "/img/shot.jpg?w=600": jpeg(packshot((600, 800))),
                       "/img/other.jpg": jpeg(worn((200, 260)))}
        self.hits: list[str] = []
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                shop.hits.append(self.path)
                body, ctype = shop.route(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def route(self, path: str) -> tuple[bytes | None, str]:
        if path in self.images:
            return self.images[path], "image/jpeg"
        html = "text/html; charset=utf-8"
        if path == "/":
            return b"<html><body><a href='/p/1'>one</a> <a href='/p/2'>two</a></body></html>", html
        if path == "/p/1":
            ld = {"@context": "https://schema.org", "@type": "Product", "name": "Coat",
                  "sku": "C1", "image": [f"{self.url}img/street1.jpg", f"{self.url}img/pack.jpg"]}
            return (f"<html><head><script type='application/ld+json'>{json.dumps(ld)}</script>"
                    "</head><body><h1>Coat</h1></body></html>").encode(), html
        if path == "/p/2":
            ld = {"@context": "https://schema.org", "@type": "Product", "name": "Dress",
                  "sku": "D2", "image": [f"{self.url}img/other.jpg"]}
            return (f"<html><head><meta property='og:image' content='{self.url}img/shot.jpg"
                    f"?w=300'><script type='application/ld+json'>{json.dumps(ld)}</script>"
                    f"</head><body><img srcset='{self.url}img/shot.jpg?w=300 300w, {self.url}"
                    f"img/shot.jpg?w=600 600w'></body></html>").encode(), html
        return None, "text/plain"


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Shop, Path]]:
    from garment.scrape import CrawlConfig, crawl

    shop = Shop()
    out = tmp_path_factory.mktemp("packshot")
    crawl(CrawlConfig([shop.url], out=out, delay=0.0, concurrency=2, render="never"))
    yield shop, out
    shop.server.shutdown()


def test_crawl_chooses_by_evidence_and_content_and_says_why(crawled) -> None:  # type: ignore[no-untyped-def]
    from garment.store import Catalogue

    shop, out = crawled
    with Catalogue.open(out, create=False) as cat:
        sku = {p["id"]: p["sku"] for p in cat.products()}
        images = {sku[i["product_id"]]: i for i in cat.images()}
    coat, dress = images["C1"], images["D2"]
    assert coat["url"].endswith("/img/pack.jpg") and coat["status"] == "ok"
    why = json.loads(coat["choice"])
    assert why["content"] > 0.9 and [j["url"].rsplit("/", 1)[1] for j in why["judged"]] == [
        "street1.jpg", "pack.jpg"]
    assert any(r.startswith("content") for r in why["reasons"])
    # The og:image at its largest rendition; a good packshot ends the search at once.
    assert dress["url"].endswith("/img/shot.jpg?w=600") and dress["width"] == 600
    assert "/img/other.jpg" not in shop.hits and "/img/shot.jpg?w=300" not in shop.hits
    assert any("og:image" in r for r in json.loads(dress["choice"])["reasons"])
