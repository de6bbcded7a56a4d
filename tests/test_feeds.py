"""Shop feeds: image sitemaps, Shopify's /products.json, Google Merchant feeds (offline),
and a crawl of a local shop on 127.0.0.1 that publishes all three."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image, ImageDraw

from garment.scrape import feeds
from shopsite import reply, serve

IMAGE_SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://shop.example/p/1</loc>
    <image:image><image:loc>https://cdn.example/1-a.jpg</image:loc></image:image>
    <image:image><image:loc>https://cdn.example/1-b.jpg</image:loc></image:image></url>
  <url><loc>https://shop.example/p/2</loc></url>
  <url><loc>https://shop.example/p/3</loc>
    <image:image><image:loc>javascript:alert(1)</image:loc></image:image></url>
</urlset>"""

MERCHANT_RSS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><title>Shop</title>
<item><g:id>A1-S</g:id><title>Plain title</title><g:title>Wool coat</g:title>
  <link>https://shop.example/coat</link><g:price>120.00 EUR</g:price>
  <g:sale_price>99.50 EUR</g:sale_price><g:brand>Acme</g:brand>
  <g:availability>in stock</g:availability><g:product_type>Women &gt; Coats</g:product_type>
  <g:image_link>https://cdn.example/coat.jpg</g:image_link>
  <g:additional_image_link>https://cdn.example/coat-2.jpg</g:additional_image_link>
  <g:additional_image_link>https://cdn.example/coat-3.jpg</g:additional_image_link>
  <description>&secret;</description></item>
<item><g:id>A1-M</g:id><g:title>Wool coat</g:title><link>https://shop.example/coat</link>
  <g:price>120.00 EUR</g:price></item>
<item><g:id>B2</g:id><g:title>Sandal</g:title><link>/sandal</link>
  <g:price>30 GBP</g:price><g:availability>out_of_stock</g:availability>
  <g:image_link>/img/sandal.jpg</g:image_link></item>
</channel></rss>"""

MERCHANT_TSV = (b"id\ttitle\tlink\tprice\timage_link\tadditional_image_link\tbrand\n"
                b"T1\tLinen shirt\thttps://shop.example/shirt\t45.00 EUR\t"
                b"https://cdn.example/shirt.jpg\thttps://cdn.example/s2.jpg,https://cdn.example/"
                b"s3.jpg\tAcme\n")


def test_image_sitemap_gives_each_page_its_photos() -> None:
    assert feeds.sitemap_images(IMAGE_SITEMAP) == {
        "https://shop.example/p/1": ["https://cdn.example/1-a.jpg", "https://cdn.example/1-b.jpg"]}
    assert feeds.sitemap_images(b"<urlset><url><loc>x</loc></url></urlset>") == {}


def test_merchant_xml_feed_one_product_per_page_sale_price_no_entities() -> None:
    coat, sandal = feeds.merchant_products(MERCHANT_RSS, "https://shop.example/feed.xml")
    assert (coat.url, coat.sku, coat.name, coat.brand) == (
        "https://shop.example/coat", "A1-S", "Wool coat", "Acme")
    assert (coat.price, coat.currency, coat.availability) == (99.5, "EUR", "InStock")
    assert coat.category == "Women > Coats" and coat.extractor == "feed"
    assert coat.image_urls == ["https://cdn.example/coat.jpg", "https://cdn.example/coat-2.jpg",
                               "https://cdn.example/coat-3.jpg"]
    assert not coat.description  # the external entity is never read
    assert coat.sources["price"] == "feed" and coat.sources["image_urls"] == "feed"
    assert sandal.url == "https://shop.example/sandal" and sandal.availability == "OutOfStock"
    assert (sandal.price, sandal.currency) == (30.0, "GBP")
    assert sandal.image_urls == ["https://shop.example/img/sandal.jpg"]


def test_merchant_atom_and_tsv_feeds() -> None:
    atom = (b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">'
            b'<entry><g:id>Z9</g:id><title>Scarf</title><link href="https://shop.example/scarf"/>'
            b'<g:price>12 EUR</g:price><g:image_link>https://cdn.example/scarf.jpg</g:image_link>'
            b'</entry></feed>')
    (scarf,) = feeds.merchant_products(atom)
    assert (scarf.url, scarf.name, scarf.price, scarf.image_urls) == (
        "https://shop.example/scarf", "Scarf", 12.0, ["https://cdn.example/scarf.jpg"])
    (shirt,) = feeds.merchant_products(MERCHANT_TSV)
    assert (shirt.sku, shirt.name, shirt.price, shirt.currency) == ("T1", "Linen shirt", 45.0, "EUR")
    assert shirt.image_urls[1:] == ["https://cdn.example/s2.jpg", "https://cdn.example/s3.jpg"]


def test_shopify_products_json() -> None:
    page = {"products": [
        {"id": 7, "handle": "blue-dress", "title": "Blue dress", "vendor": "Acme",
         "product_type": "Dresses", "body_html": "<p>Light <b>cotton</b></p>",
         "variants": [{"sku": "BD-S", "price": "59.00", "available": False},
                      {"sku": "BD-M", "price": "49.00", "available": True}],
         "images": [{"src": "https://cdn.shopify.com/s/files/dress.jpg"}]},
        {"title": "no handle"}]}
    (dress,) = feeds.shopify_products(json.dumps(page).encode(), "https://shop.example", "EUR")
    assert (dress.url, dress.sku, dress.price, dress.currency) == (
        "https://shop.example/products/blue-dress", "BD-M", 49.0, "EUR")
    assert dress.description == "Light cotton" and dress.availability == "InStock"
    assert dress.image_urls == ["https://cdn.shopify.com/s/files/dress.jpg"]
    assert feeds.shopify_products(b"not json", "https://x") == []
    assert feeds.is_shopify("<script src='//cdn.shopify.com/s/a.js'>", {})
    assert feeds.is_shopify("", {"X-ShopId": "1"}) and not feeds.is_shopify("<p>", {})
    assert feeds.shopify_currency('Shopify.currency = {"active":"SEK","rate":"1.0"};') == "SEK"


# -- a crawl ------------------------------------------------------------------------------
def jpeg() -> bytes:
    im = Image.new("RGB", (200, 260), (255, 255, 255))
    ImageDraw.Draw(im).rectangle((50, 40, 150, 220), fill=(20, 60, 20))
    buf = io.BytesIO()
    im.save(buf, "JPEG")
    return buf.getvalue()


class FeedShop:
    """A Shopify-like shop: /products.json in pages of two, an image sitemap for a page
    whose markup has no image, and a Merchant feed naming a page no link leads to."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.photo = jpeg()
        self.server = serve(self._handle, protocol="HTTP/1.0")
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        self.hits.append(handler.path)
        reply(handler, *self.route(handler.path))

    def route(self, target: str) -> tuple[int, str, bytes]:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        html = "text/html; charset=utf-8"
        if path == "/":
            return 200, html, (b"<html><head><script src='https://cdn.shopify.com/s/t.js'>"
                               b"</script><script>Shopify.currency = {\"active\":\"EUR\"};"
                               b"</script></head><body><a href='/products/shirt-1'>Shirt</a>"
                               b"</body></html>")
        if path == "/products.json":
            page = int(query["page"][0])
            handles = {1: ["shirt-1", "shirt-2"], 2: ["shirt-3"]}.get(page, [])
            return 200, "application/json", json.dumps({"products": [
                {"id": i, "handle": h, "title": h.replace("-", " ").title(), "vendor": "Acme",
                 "variants": [{"sku": h.upper(), "price": "19.90", "available": True}],
                 "images": [{"src": f"{self.url}/img/{h}.jpg"}]}
                for i, h in enumerate(handles)]}).encode()
        if path == "/sitemap.xml":
            return 200, "application/xml", (
                '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/'
                '0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"><url><loc>'
                f'{self.url}/p/plain</loc><image:image><image:loc>{self.url}/img/plain.jpg'
                '</image:loc></image:image></url></urlset>').encode()
        if path == "/p/plain":
            ld = {"@context": "https://schema.org", "@type": "Product", "name": "Plain tee",
                  "sku": "PT-1"}
            return 200, html, (f"<html><head><script type='application/ld+json'>{json.dumps(ld)}"
                               f"</script></head><body><h1>Plain tee</h1></body></html>").encode()
        if path == "/feed.xml":
            return 200, "application/xml", (
                '<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>M-77</g:id>'
                f'<g:title>Merchant boot</g:title><link>{self.url}/item/77</link>'
                f'<g:price>80.00 EUR</g:price><g:image_link>{self.url}/img/boot.jpg'
                '</g:image_link></item></channel></rss>').encode()
        if path.startswith("/img/"):
            return 200, "image/jpeg", self.photo
        return 404, "text/plain", b"not found"


@pytest.fixture(scope="module")
def feed_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FeedShop, Path]]:
    from garment.scrape import CrawlConfig, crawl

    shop = FeedShop()
    out = tmp_path_factory.mktemp("feeds")
    crawl(CrawlConfig([f"{shop.url}/"], out=out, delay=0.0, render="never",
                      feeds=[f"{shop.url}/feed.xml"]))
    yield shop, out
    shop.server.shutdown()


def test_crawl_reads_the_shops_feeds(feed_crawl) -> None:  # type: ignore[no-untyped-def]
    from garment.store import Catalogue

    shop, out = feed_crawl
    with Catalogue.open(out, create=False) as cat:
        rows = cat.products()
        products = {p["sku"]: p for p in rows}
        images = {i["product_id"]: i for i in cat.images()}
    assert len(rows) == 5
    assert set(products) == {"SHIRT-1", "SHIRT-2", "SHIRT-3", "PT-1", "M-77"}
    shirt = products["SHIRT-1"]
    assert (shirt["price"], shirt["currency"], shirt["extractor"]) == (19.9, "EUR", "feed")
    assert shirt["canonical_url"] == f"{shop.url}/products/shirt-1"
    assert images[shirt["id"]]["url"].endswith("/img/shirt-1.jpg")
    # Stored once each; the feed-only page is never fetched (a page linked from the home
    # page may be, while the feed is still on its way: its product is then the same one).
    assert len(products) == len(images) == 5
    assert not [h for h in shop.hits if h.startswith(("/products/shirt-2", "/item/"))]
    assert [h for h in shop.hits if h.startswith("/products.json")] == [
        "/products.json?limit=250&page=1", "/products.json?limit=250&page=2",
        "/products.json?limit=250&page=3"]
    # The image sitemap gave the packshot of a page whose markup has none.
    plain = products["PT-1"]
    assert images[plain["id"]]["url"].endswith("/img/plain.jpg")
    assert images[plain["id"]]["status"] == "ok"
    boot = products["M-77"]
    assert boot["price"] == 80.0 and images[boot["id"]]["url"].endswith("/img/boot.jpg")
