"""Tests for the demo shop: a real local server checked with urllib."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from garment.errors import DataNotFoundError, GarmentError
from garment.shop import (
    CLASS_CATEGORIES,
    SCRIPT_NAME,
    SHOP_CATEGORIES,
    ShopConfig,
    category_label,
    start_shop,
)
from garment.shop.catalogue import BLIND_DEPARTMENTS, blind_department
from garment.shop.pages import DISALLOWED


def fetch(url: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def html(url: str) -> str:
    status, _, body = fetch(url)
    assert status == 200, url
    return body.decode("utf-8")


def jsonld_blocks(page: str) -> list[dict]:
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    return [json.loads(b) for b in blocks]


def _shop(**kwargs):
    try:
        return start_shop(ShopConfig(**kwargs))
    except DataNotFoundError:
        pytest.skip("Fashion-MNIST not installed")


@pytest.fixture(scope="module")
def shop():
    with _shop(n_products=60, per_page=4) as running:
        yield running


def test_home_links_departments_and_disallowed_area(shop):
    page = html(shop.url)
    assert shop.url.startswith("http://127.0.0.1:")
    for path in ("/women/", "/men/", "/shoes/", "/bags-accessories/"):
        assert f'href="{path}"' in page
    assert 'href="/account/login"' in page and 'href="/cart/"' in page
    assert f"{shop.image_url}img/site/logo.png" in page
    assert fetch(shop.url + "account/login")[0] == 200
    assert fetch(shop.url + "no/such/page")[0] == 404


def test_listing_pagination_covers_the_category(shop):
    path = "/women/dresses/"
    expected = {p.path for p in shop.products if p.department == "Women" and p.category == "Dresses"}
    assert len(expected) > 4  # more than one page at per_page=4
    seen, url, pages = set(), shop.url + path.lstrip("/"), 0
    while url and pages < 20:
        page = html(url)
        pages += 1
        seen |= set(re.findall(r'href="(/products/[^"]+)"', page))
        nxt = re.search(r'<link rel="next" href="([^"]+)">', page)
        url = nxt.group(1) if nxt else None
    assert seen == expected
    assert pages == -(-len(expected) // 4)
    assert f'<a href="{path}?page=2">2</a>' in html(shop.url + path.lstrip("/"))
    second = html(shop.url + "women/dresses/?page=2")
    assert f'<link rel="prev" href="{shop.url}women/dresses/">' in second
    assert f'<a href="{path}">1</a>' in second
    assert fetch(shop.url + f"women/dresses/?page={pages + 1}")[0] == 404
    assert fetch(shop.url + "women/dresses")[0] == 200  # redirected to the slash form


def test_product_page_structured_data_matches_products(shop):
    product = shop.products[5]
    page = html(product.url)
    blocks = jsonld_blocks(page)
    item = next(b for b in blocks if b["@type"] == "Product")
    assert item["name"] == product.name and item["sku"] == product.sku
    assert item["offers"]["price"] == product.price
    assert item["offers"]["priceCurrency"] == "EUR"
    assert item["image"] == list(product.image_urls) and len(item["image"]) == 3
    assert item["brand"]["name"] == product.brand
    crumbs = next(b for b in blocks if b["@type"] == "BreadcrumbList")["itemListElement"]
    assert [c["name"] for c in crumbs][-1] == product.category
    assert f'<link rel="canonical" href="{product.url}">' in page
    assert f'<meta property="og:image" content="{product.image_urls[0]}">' in page
    visible = re.search(r'class="breadcrumb".*?</nav>', page, re.S).group(0)
    assert re.findall(r"<span>([^<]+)</span>", visible)[-1] == product.category.replace("&", "&amp;")
    assert category_label(product.category) == product.label_index


def test_script_name_is_escaped(shop):
    product = next(p for p in shop.products if p.name == SCRIPT_NAME)
    page = html(product.url)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Tee" in page
    for block in re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S):
        assert "</" not in block
    assert jsonld_blocks(page)[0]["name"] == SCRIPT_NAME


def test_robots_and_sitemap(shop):
    status, headers, body = fetch(shop.url + "robots.txt")
    robots = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert "Disallow: /account/" in robots and "Disallow: /cart/" in robots
    assert f"Sitemap: {shop.url}sitemap.xml" in robots
    sitemap = html(shop.url + "sitemap.xml")
    assert set(re.findall(r"<loc>([^<]+)</loc>", sitemap)) == {p.url for p in shop.products}


def test_images_on_the_second_host_decode(shop):
    product = shop.products[0]
    assert all(u.startswith(shop.image_url + "img/") for u in product.image_urls)
    assert shop.image_url.startswith("http://localhost:")
    sizes = []
    for url in (*product.image_urls, product.thumb_url):
        status, headers, body = fetch(url)
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        with Image.open(io.BytesIO(body)) as im:
            im.load()
            sizes.append(im.size)
            if url == product.image_urls[0]:
                assert min(im.convert("L").getpixel((2, 2)), 255) > 230  # light background
    assert sizes == [(300, 400)] * 3 + [(150, 200)]
    status, headers, body = fetch(shop.image_url + "img/site/logo.png")
    assert status == 200 and Image.open(io.BytesIO(body)).format == "PNG"
    assert fetch(shop.image_url + "img/p/nothing.jpg")[0] == 404
    assert any(hit.host.startswith("localhost:") and hit.path.startswith("/img/")
               for hit in shop.log)


def test_prerender_fills_the_cache_with_the_packshots_served():
    with _shop(n_products=12, image_cache=100) as running:
        assert running.prerender() == 12
        assert running.image.cache_info().currsize == 12
        product = running.products[3]
        status, _, body = fetch(product.image_urls[0])
        assert status == 200 and body == running.image("/" + product.image_urls[0].split("/", 3)[3])
        assert running.image.cache_info().hits >= 2  # served from the cache, not drawn again


def test_localhost_falls_back_to_ipv4_when_ipv6_comes_first(shop, monkeypatch):
    real = socket.getaddrinfo

    def ipv6_first(host, *args, **kwargs):
        infos = real(host, *args, **kwargs)
        if host == "localhost":
            port = infos[0][4][1]
            infos = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0))] + infos
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", ipv6_first)
    assert fetch(shop.products[0].thumb_url)[0] == 200


def test_concurrent_requests(shop):
    urls = [p.url for p in shop.products[:16]] + [p.image_urls[0] for p in shop.products[:16]]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda u: fetch(u)[0], urls))
    assert statuses == [200] * len(urls)


def test_latency_is_added():
    with _shop(n_products=10, latency_ms=150) as slow:
        start = time.perf_counter()
        assert fetch(slow.url + "robots.txt")[0] == 200
        assert time.perf_counter() - start >= 0.15


def test_markup_modes():
    with _shop(n_products=40, markup="mixed", seed=2) as s:
        assert {p.markup for p in s.products} == {"jsonld", "microdata", "opengraph"}
        for p in s.products[:12]:
            page = html(p.url)
            has_jsonld = any(b["@type"] == "Product" for b in jsonld_blocks(page))
            has_microdata = 'itemtype="https://schema.org/Product"' in page
            assert (has_jsonld, has_microdata) == (p.markup == "jsonld", p.markup == "microdata")
            assert '<meta property="og:title" content="' in page


def _fault_run(seed: int) -> tuple[list[int], int]:
    with _shop(n_products=20, fault_rate=0.4, seed=seed) as flaky:
        statuses = []
        for p in flaky.products:
            status, headers, _ = fetch(p.url)
            statuses.append(status)
            if status == 503:
                assert headers["Retry-After"] == "1"
        assert {fetch(flaky.url + "robots.txt")[0] for _ in range(10)} == {200}
        broken = 0
        for p in flaky.products:
            status, _, body = fetch(p.thumb_url)
            if status == 200:
                try:
                    Image.open(io.BytesIO(body)).load()
                except OSError:
                    broken += 1
    return statuses, broken


def test_faults_are_503_with_retry_after_and_truncated_images_and_deterministic():
    statuses, broken = _fault_run(seed=1)
    assert set(statuses) == {200, 503}
    assert broken > 0
    assert _fault_run(seed=1) == (statuses, broken)


def test_same_seed_same_shop():
    def snapshot(seed: int) -> tuple[list, str, bytes]:
        with _shop(n_products=30, seed=seed) as s:
            rows = [(p.id, p.name, p.category, p.price, p.fmnist_index) for p in s.products]
            page = html(s.products[3].url).replace(s.url, "U/").replace(s.image_url, "I/")
            return rows, page, fetch(s.products[3].image_urls[0])[2]

    first = snapshot(3)
    assert snapshot(3) == first
    assert snapshot(4)[0] != first[0]


def _photo(path: Path, colour: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (120, 160), "white")
    image.paste(Image.new("RGB", (60, 100), colour), (30, 30))
    image.save(path, quality=90)


def test_images_folder_with_subfolders(tmp_path):
    _photo(tmp_path / "ankle_boot" / "a.jpg", "brown")
    _photo(tmp_path / "tshirt_top" / "b.jpg", "navy")
    _photo(tmp_path / "other" / "c.jpg", "red")
    _photo(tmp_path / "gadgets" / "d.jpg", "green")
    _photo(tmp_path / "e.jpg", "grey")
    with start_shop(ShopConfig(images=tmp_path)) as s:
        found = {p.image_path.name: (p.category, p.label_index, p.department) for p in s.products}
        assert found == {
            "a.jpg": ("Ankle boots", 9, "Shoes"),
            "b.jpg": ("T-shirts & tops", 0, "Clothing"),
            "c.jpg": ("Accessories", -1, "Bags & accessories"),
            "d.jpg": ("Gadgets", None, "More"),
            "e.jpg": ("New in", None, "More"),
        }
        boot = next(p for p in s.products if p.label_index == 9)
        assert fetch(boot.image_urls[0])[2] == (tmp_path / "ankle_boot" / "a.jpg").read_bytes()
        page = html(boot.url)
        assert next(b for b in jsonld_blocks(page) if b["@type"] == "Product")["name"] == "a"
        assert 'href="/shoes/ankle-boots/"' in html(s.url)


def test_images_folder_with_labels_csv(tmp_path):
    _photo(tmp_path / "images" / "dress" / "1.jpg", "pink")
    _photo(tmp_path / "images" / "other" / "2.jpg", "gold")
    with (tmp_path / "labels.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "label", "label_index", "retailer", "source_type", "width",
                      "height", "product_text"])
        out.writerow(["images/dress/1.jpg", "dress", 3, "Shop", "Dress", 120, 160,
                      "Wrap Dress | A midi dress in crepe."])
        out.writerow(["images/other/2.jpg", "other", -1, "Shop", "Watch", 120, 160, "Watch"])
    with start_shop(ShopConfig(images=tmp_path)) as s:
        dress, watch = s.products
        assert (dress.name, dress.description, dress.category, dress.label_index) == (
            "Wrap Dress", "A midi dress in crepe.", "Dresses", 3)
        assert (watch.name, watch.category, watch.label_index) == ("Watch", "Accessories", -1)
        assert Image.open(io.BytesIO(fetch(dress.image_urls[1])[2])).size == (120, 160)


def test_category_mapping_is_tolerant():
    assert category_label("ankle_boot") == category_label("Ankle boots") == 9
    assert category_label("tshirt_top") == category_label("T-shirts & tops") == 0
    assert category_label("other") == category_label("Accessories") == -1
    assert category_label("spaceships") is None
    assert sorted(i for i in SHOP_CATEGORIES.values() if i >= 0) == list(range(10))


@pytest.mark.parametrize("bad", [{"host": "0.0.0.0"}, {"n_products": 0}, {"fault_rate": 2.0},
                                 {"markup": "rdfa"}, {"images": Path("/no/such/folder")}])
def test_bad_config_is_a_clean_error(bad):
    with pytest.raises(GarmentError):
        start_shop(ShopConfig(**bad))


def test_cli_help():
    from typer.testing import CliRunner

    from garment.cli import app

    result = CliRunner().invoke(app, ["shop", "--help"])
    assert result.exit_code == 0 and "--latency" in result.output and "--blind" in result.output


# (folder, label index, source_type, product_text): names and descriptions as a retailer writes
# them, without a class word, so that a class word anywhere on the site can only be a leak.
_BLIND_ROWS = [
    ("ankle_boot", 9, "product_type_name=Boots", "Kobe Chelsea | Elastic gores and a loop at the back."),
    ("sneaker", 7, "product_type_name=Sneakers", "Curtis MidCut | Padded collar, cushioned insole."),
    ("dress", 3, "product_type_name=Dress", "Twister | Short and flared, in soft crepe."),
    ("tshirt_top", 0, "Tshirts", "Roadster Men Grey Crew Neck"),
    ("trouser", 1, "Track Pants", "Nike Women Navy Joggers"),
    ("pullover", 2, "product_type_name=Sweater", "Cosy Knit | Ribbed cuffs and hem."),
    ("bag", 8, "product_type_name=Bag", "Polly Shopper | Two handles and an inner pocket."),
    ("other", -1, "Watches", "Titan Nova 40mm | Steel case with a mesh strap."),
]


def _crawl_everything(shop, limit: int = 400) -> tuple[dict[str, bytes], set[str]]:
    """Every page and image the shop links to, from its home page, robots.txt and sitemap:
    (URL -> body of each fetched URL, every URL seen in any link or attribute)."""
    seen: set[str] = set()
    bodies: dict[str, bytes] = {}
    queue = [shop.url, shop.url + "robots.txt", shop.url + "sitemap.xml"]
    while queue and len(bodies) < limit:
        url = queue.pop()
        if url in bodies:
            continue
        status, _, body = fetch(url)
        assert status == 200, url
        bodies[url] = body
        if url.startswith(shop.image_url + "img/"):
            continue
        text = body.decode("utf-8").replace("&amp;", "&")
        links = re.findall(r'(?:href|src)="([^"]+)"|content="(http[^"]+)"|<loc>([^<]+)</loc>'
                           r'|Sitemap: (\S+)', text)
        for link in (next(part for part in parts if part) for parts in links):
            absolute = urllib.parse.urljoin(url, link)
            if absolute.startswith((shop.url, shop.image_url)):
                seen.add(absolute)
                if not absolute.startswith(tuple(shop.url + p.lstrip("/") for p in DISALLOWED)):
                    queue.append(absolute)
    assert not queue, f"more than {limit} URLs"
    return bodies, seen


def test_blind_shop_never_names_the_class(tmp_path):
    with (tmp_path / "labels.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "label", "label_index", "retailer", "source_type", "width",
                      "height", "product_text"])
        for k, (folder, index, source, text) in enumerate(_BLIND_ROWS):
            _photo(tmp_path / "images" / folder / f"{40711 + k}.jpg", "navy")
            out.writerow([f"images/{folder}/{40711 + k}.jpg", folder, index, "Shop", source,
                          120, 160, text])
    with start_shop(ShopConfig(images=tmp_path, blind=True, per_page=3, seed=5)) as s:
        bodies, seen = _crawl_everything(s)
        products = {p.image_path.parent.name: p for p in s.products}
        assert len(products) == len(_BLIND_ROWS)
        # Pages and URLs: every product and every image is reachable from the site.
        for p in s.products:
            assert p.url in bodies and {*p.image_urls, p.thumb_url} <= seen | set(bodies)
            assert all(u in bodies for u in p.image_urls)
        site = "\n".join([*seen, *bodies,
                          *(b.decode("utf-8") for u, b in bodies.items() if "/img/" not in u)])
        for cart in ("Bag (0)", "Your bag", "Add to bag", "/bag.png"):  # the shopping bag
            site = site.replace(cart, "")
        image_bytes = b"".join(b for u, b in bodies.items() if "/img/" in u)
        forbidden = {*CLASS_CATEGORIES, *(c for c in SHOP_CATEGORIES if c != "Accessories")}
        for folder, _, source, _ in _BLIND_ROWS:
            forbidden |= {folder, folder.replace("_", " "), folder.replace("_", "-"), source}
        forbidden |= {"Shoes", "ankle", "boot", "T-shirt", "tshirt", "trouser",
                      "pullover", "sweater", "sandal", "category"}
        for word in sorted(forbidden):
            pattern = re.compile(rf"(?<![a-z]){re.escape(word)}s?(?![a-z])", re.IGNORECASE)
            assert not pattern.search(site), word
            assert word.encode().lower() not in image_bytes.lower()
        for word in ("T-shirts &amp; tops", "product_type_name"):
            assert word not in site
        # What the retailer wrote is on the product page, with a coarse department.
        for folder, index, _, text in _BLIND_ROWS:
            p = products[folder]
            assert p.label_index == index  # the shop still knows the truth
            name, _, description = text.partition(" | ")
            page = bodies[p.url].decode("utf-8")
            assert p.name == name and f"<h1>{name}</h1>" in page
            assert (description or f"{name}.") in page
            crumbs = next(b for b in jsonld_blocks(page) if b["@type"] == "BreadcrumbList")
            assert [c["name"] for c in crumbs["itemListElement"]] == ["Home", p.department]
            assert f'<a href="/{p.department.lower()}/"><span>{p.department}</span>' in page
        departments = {folder: p.department for folder, p in products.items()}
        assert departments["ankle_boot"] == departments["sneaker"] == "Footwear"
        assert departments["bag"] == departments["other"] == "Accessories"
        assert departments["tshirt_top"] == "Men" and departments["trouser"] == "Women"
        assert {departments["dress"], departments["pullover"]} <= {"Women", "Men"}
        # Listings by department only, paginated over every product of the department.
        listings = {u.split("?")[0].removeprefix(s.url) for u in bodies
                    if u.startswith(s.url) and "/products/" not in u}
        assert {p for p in listings if p.count("/") > 1} == set()
        assert {f"{d.lower()}/" for d in departments.values()} <= listings


def test_blind_department_reads_the_name_and_is_coarse():
    rnd = random.Random(0)
    assert blind_department(0, "Nike Men Grey Jacket", rnd) == "Men"
    assert blind_department(4, "Women's Parka", rnd) == "Women"
    assert blind_department(6, "Menswear Oxford", rnd) in BLIND_DEPARTMENTS
    assert blind_department(9, "Women Chelsea", rnd) == "Footwear"
    assert blind_department(-1, "Men Watch", rnd) == blind_department(8, "Tote", rnd) == "Accessories"
    # Without the name's word, a coin toss that ignores the class: dresses land on both sides.
    assert {blind_department(3, "Twister", rnd) for _ in range(40)} == {"Women", "Men"}


def test_blind_fmnist_shop_shuffles_ids_and_hides_categories():
    with _shop(n_products=40, blind=True, seed=1) as s:
        assert {p.department for p in s.products} <= set(BLIND_DEPARTMENTS)
        assert all(p.category == p.department for p in s.products)
        # Built class by class, a shop would give consecutive ids to one class in turn.
        runs = [s.products[i].label_index == s.products[i + 10].label_index for i in range(30)]
        assert not all(runs)
        page = html(s.products[0].url)
        assert not any(f">{c}<" in page.replace("&amp;", "&") for c in CLASS_CATEGORIES)
        assert fetch(s.url + "women/dresses/")[0] == 404
