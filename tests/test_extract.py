"""Extraction on saved HTML: each markup layer, malformed JSON-LD, packshot choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garment.errors import GarmentError
from garment.scrape.extract import extract_product, pagination_urls, parse_html
from garment.scrape.images import check_image, forbids_ai, save_image
from garment.scrape.profile import load_profile
from garment.scrape.schemaorg import loads_tolerant, parse_price
from shopsite import ShopSite

URL = "http://127.0.0.1:8000/p/1"


@pytest.fixture(scope="module")
def shop() -> ShopSite:
    site = ShopSite(n_products=24)
    site.port = 8000  # pages rendered offline, never served
    return site


def page(head: str = "", body: str = "") -> str:
    return (f"<html><head>{head}</head><body><header><img src='/static/logo.png' "
            f"alt='Shop logo'></header><main>{body}</main></body></html>")


def ld(obj: object) -> str:
    return f"<script type='application/ld+json'>{json.dumps(obj)}</script>"


@pytest.mark.parametrize("i,layer", [(1, "jsonld"), (4, "jsonld"), (2, "microdata"),
                                     (3, "opengraph")])
def test_shop_pages_each_markup(shop: ShopSite, i: int, layer: str) -> None:
    url = f"{shop.url}p/{i}"
    p = extract_product(shop.product_page(i), url)
    assert p is not None and p.extractor == layer
    assert (p.name, p.price, p.currency) == (f"Garment {i}", 10.99 + i, "EUR")
    assert p.image_urls == [f"{shop.img}/img/{i}.jpg"]
    assert p.canonical_url == url and p.sources["name"] == layer
    if layer != "opengraph":
        assert p.sku == f"SKU-{i:04d}" and p.brand == "Acme"
    if layer == "jsonld":  # 1: @graph with a breadcrumb; 4: malformed, breadcrumb apart
        assert p.category == "Women" and p.sources["category"] == "breadcrumb"


@pytest.mark.parametrize("raw", [
    '{"@type": "Product", "name": "Coat", "offers": {"price": "10", },}',       # commas
    '{"@type": "Product", "name": "Coat", "offers": {"price": "10"}};',         # semicolon
    '{"@type": "Product", "name": "Co\tat\n", "offers": {"price": "10"}}',      # controls
    '<!-- {"@type": "Product", "name": "Coat", "offers": {"price": "10"}} -->',  # comment
    '{"@type": "WebSite"} {"@type": "Product", "name": "Coat", "offers": {"price": 10}}',
    '{"@context": "https://schema.org", "@graph": [{"@type": "Organization"}, '
    '{"@type": ["Product"], "name": "Coat", "offers": [{"price": "10.00"}]}]}',
    '{"@type": "http://schema.org/Product", "name": "Coat", '
    '"offers": {"@type": "AggregateOffer", "lowPrice": "10"}}',
])
def test_malformed_and_varied_jsonld(raw: str) -> None:
    html = page(f"<script type='application/ld+json'>{raw}</script>")
    p = extract_product(html, URL)
    assert p is not None and p.extractor == "jsonld"
    assert p.name and p.name.replace("\t", "").startswith("Co") and p.price == 10.0


def test_hopeless_jsonld_is_skipped_not_raised() -> None:
    assert loads_tolerant("{not json at all") == []
    assert extract_product(page("<script type='application/ld+json'>{oops</script>"),
                           URL) is None


def test_rdfa_product() -> None:
    body = ("<div vocab='https://schema.org/' typeof='Product'><span property='name'>Coat"
            "</span><img property='image' src='/img/3.jpg'><div property='offers' "
            "typeof='Offer'><span property='price'>99.50</span><span property="
            "'priceCurrency'>USD</span></div></div>")
    p = extract_product(page(body=body), URL)
    assert p is not None and p.extractor == "rdfa"
    assert (p.name, p.price, p.currency) == ("Coat", 99.5, "USD")
    assert p.image_urls == ["http://127.0.0.1:8000/img/3.jpg"]


def test_not_a_product_page(shop: ShopSite) -> None:
    assert extract_product(shop.listing("women", 1), f"{shop.url}c/women") is None
    assert extract_product(shop.home(), shop.url) is None
    listing = page(ld([{"@type": "Product", "name": f"P{i}", "url": f"/p/{i}"}
                       for i in range(3)]))
    assert extract_product(listing, "http://127.0.0.1:8000/c/all") is None


def test_packshot_never_logo_icon_or_pixel() -> None:
    head = ld({"@type": "Product", "name": "Coat", "image": [
        "/static/logo.png", "/icons/cart.svg", "/img/placeholder.gif", "/img/coat.jpg"]})
    p = extract_product(page(head), URL)
    assert p is not None and p.image_urls == ["http://127.0.0.1:8000/img/coat.jpg"]
    # No image in the markup: the content image, not the header logo or a 1x1 pixel.
    body = ("<img src='/t.gif' width='1' height='1'><div class='brand-logo'><img src='/a.jpg'>"
            "</div><img class='photo' data-src='/img/big.jpg' src='data:image/gif;base64,x'>")
    og = "<meta property='og:type' content='product'><meta property='og:title' content='X'>"
    p = extract_product(page(og, body), URL)
    assert p is not None and p.image_urls == ["http://127.0.0.1:8000/img/big.jpg"]
    assert p.sources["image_urls"] == "dom"


def test_noai_meta_and_headers(shop: ShopSite) -> None:
    p = extract_product(shop.product_page(14), f"{shop.url}p/14")
    assert p is not None and p.noai
    assert forbids_ai(["noindex, noai"]) and forbids_ai(["noimageai"])
    assert not forbids_ai(["noindex", "nofollow"])


def test_pagination_links(shop: ShopSite) -> None:
    women = pagination_urls(parse_html(shop.listing("women", 1)), f"{shop.url}c/women")
    assert f"{shop.url}c/women?page=2" in women
    men = pagination_urls(parse_html(shop.listing("men", 1)), f"{shop.url}c/men")
    assert f"{shop.url}c/men?p=2" in men
    assert not any("/p/" in u for u in women + men)


def test_price_parsing() -> None:
    assert parse_price("1.299,00 €") == (1299.0, "EUR")
    assert parse_price("$1,299.50") == (1299.5, "USD")
    assert parse_price("12,99") == (12.99, None)
    assert parse_price(49) == (49.0, None)
    assert parse_price("free") == (None, None)


def test_site_profile(tmp_path: Path) -> None:
    prof = tmp_path / "shop.toml"
    prof.write_text('start_urls = ["http://127.0.0.1:8000/"]\npagination = "/page/\\\\d+"\n'
                    '[selectors]\nproduct = "div.pdp"\nname = "h1.t"\n'
                    'price = ".price::text"\nimage = "//img[@id=\'main\']/@src"\n'
                    'category = "ol.crumbs li"\n'
                    '[[image_rewrite]]\npattern = "w_\\\\d+"\nreplace = "w_1200"\n')
    profile = load_profile(prof)
    html = page(body="<div class='pdp'><h1 class='t'>Boot</h1><span class='price'>£80"
                     "</span><ol class='crumbs'><li>Men</li><li>Shoes</li></ol>"
                     "<img id='main' src='https://cdn.example/w_200/boot.jpg'></div>")
    p = extract_product(html, URL, profile)
    assert p is not None and p.extractor == "profile"
    assert (p.name, p.price, p.currency, p.category) == ("Boot", 80.0, "GBP", "Men > Shoes")
    assert p.image_urls == ["https://cdn.example/w_1200/boot.jpg"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[selectors]\ncolour = ".c"\n')
    with pytest.raises(GarmentError, match="colour.*allowed"):
        load_profile(bad)


def test_image_checks(tmp_path: Path) -> None:
    from shopsite import make_jpeg, make_png

    good = make_jpeg(3)
    check = check_image(good)
    assert (check.status, check.width, check.height, check.format) == ("ok", 200, 260, "jpeg")
    assert check_image(good[: len(good) // 2]).status == "corrupt"
    assert check_image(b"<html>nope</html>" * 50).status == "not_image"
    assert check_image(make_png((120, 20)), min_bytes=0).status == "too_small"  # < 28 px
    assert check_image(good, max_px=100).status == "too_large"
    rel = save_image(tmp_path, good, check)
    assert rel == f"images/{check.sha256[:2]}/{check.sha256}.jpg"  # type: ignore[index]
    assert (tmp_path / rel).read_bytes() == good


@pytest.mark.parametrize("depth", [200_000, 2_000, 100])
def test_deeply_nested_jsonld_is_an_error_not_a_crash(depth: int) -> None:
    from garment.scrape.schemaorg import MAX_DEPTH, JsonLdTooDeep

    nested = "[" * depth + "]" * depth
    with pytest.raises(JsonLdTooDeep):
        loads_tolerant(nested)
    html = page(f"<script type='application/ld+json'>{nested}</script>"
                + ld({"@type": "Product", "name": "Coat"}))
    with pytest.raises(JsonLdTooDeep):  # the crawl counts it (PageErrorMiddleware)
        extract_product(html, URL)
    ok = "[" * (MAX_DEPTH - 2) + '{"@type": "Product", "name": "Deep"}' + "]" * (MAX_DEPTH - 2)
    assert loads_tolerant(ok)  # real markup, however verbose, stays well inside


def test_largest_rendition_first() -> None:
    head = ld({"@type": "Product", "name": "Coat", "image": [
        "/img/coat.jpg?w=200", "/img/back.jpg", "/img/coat.jpg?w=1600"]})
    p = extract_product(page(head), URL)
    assert p is not None and p.image_urls == [
        "http://127.0.0.1:8000/img/coat.jpg?w=1600", "http://127.0.0.1:8000/img/coat.jpg?w=200",
        "http://127.0.0.1:8000/img/back.jpg"]
    og = "<meta property='og:type' content='product'><meta property='og:title' content='X'>"
    body = ("<picture><source srcset='/img/x-640.webp 640w, /img/x-1280.webp 1280w'>"
            "<img src='/img/x-320.jpg' alt='X'></picture>")
    p = extract_product(page(og, body), URL)
    assert p is not None and p.image_urls == ["http://127.0.0.1:8000/img/x-1280.webp"]
    body = "<img src='/img/t.jpg' srcset='/img/t.jpg 1x, /img/t@2x.jpg 2x' width='60'>"
    p = extract_product(page(og, body), URL)  # a 60 px thumbnail is a packshot, not an icon
    assert p is not None and p.image_urls == ["http://127.0.0.1:8000/img/t@2x.jpg"]


# -- real markup, as shops write it (pages written here, after the shapes seen on shops) --

def test_jsonld_in_script_comment_and_cdata_wrappers() -> None:
    node = json.dumps({"@type": "Product", "name": "Wrap dress", "sku": "106606",
                       "offers": {"price": "29.99", "priceCurrency": "EUR"}})
    for wrapped in (f"/*<![CDATA[*/ {node} /*]]>*/", f"//<![CDATA[\n{node}\n//]]>",
                    f"<![CDATA[{node}]]>", node.replace('"', "&quot;")):
        p = extract_product(page(f"<script type='application/ld+json'>{wrapped}</script>"), URL)
        assert p is not None and (p.name, p.sku, p.price) == ("Wrap dress", "106606", 29.99)


def test_one_node_per_size_gives_the_product_reference_and_stock() -> None:
    sizes = [{"@type": "Product", "name": "Boots", "sku": f"84518927-040-{s}",
              "offers": {"price": "69.95", "priceCurrency": "EUR", "availability":
                         f"https://schema.org/{'InStock' if s == 38 else 'OutOfStock'}"}}
             for s in (36, 37, 38)]
    p = extract_product(page(ld(sizes)), URL)
    assert p is not None and p.sku == "84518927-040" and p.price == 69.95
    assert p.availability == "InStock"  # one size left: the product is on sale


def test_product_group_gives_group_id_and_the_shown_variant() -> None:
    group = {"@type": "ProductGroup", "name": "Cardigan", "productGroupID": "12185160",
             "brand": {"@type": "Brand", "name": "Knitco"}, "hasVariant": [
                 {"@type": "Product", "sku": f"12185160-{c}", "color": c, "url": f"/p/1?c={c}",
                  "image": f"/img/{c}.jpg", "offers": {"price": p, "priceCurrency": "EUR"}}
                 for c, p in (("navy", "49.99"), ("grey", "39.99"))]}
    p = extract_product(page(ld(group)), "http://127.0.0.1:8000/p/1?c=grey")
    assert p is not None and (p.name, p.sku, p.brand) == ("Cardigan", "12185160", "Knitco")
    assert p.price == 39.99 and p.image_urls == ["http://127.0.0.1:8000/img/grey.jpg"]
    assert p.image_candidates[0] == {"url": "http://127.0.0.1:8000/img/grey.jpg",
                                     "source": "jsonld", "variant": True}


@pytest.mark.parametrize("offers,price", [
    ({"@type": "AggregateOffer", "lowprice": "3499", "highprice": "4999",
      "pricecurrency": "ARS"}, 3499.0),                                        # lower case
    ({"@type": "Offer", "offers": [{"price": "79.00", "priceCurrency": "ARS"}]}, 79.0),
    ({"priceSpecification": [{"price": "219.99", "priceType": "https://schema.org/ListPrice"},
                             {"price": "110.00", "priceCurrency": "ARS"}]}, 110.0),
    ([{"price": "62.95", "availability": "OutOfStock"}, {"price": "70.50", "availability":
      "InStock"}, {"price": "80.50", "availability": "InStock"}], 70.5),         # sold-out size
    ({"price": "0", "priceCurrency": "ARS"}, None),                           # on request
])
def test_offers_in_every_shape(offers: object, price: float | None) -> None:
    p = extract_product(page(ld({"@type": "Product", "name": "Top", "offers": offers})), URL)
    assert p is not None and p.price == price


def test_template_placeholders_are_no_values() -> None:
    body = ("<div itemscope itemtype='https://schema.org/Product'><h1 itemprop='name'>Bra</h1>"
            "<span itemprop='brand'>$metabrand</span><span itemprop='sku'>{{ sku }}</span>"
            "<div itemprop='offers' itemscope itemtype='https://schema.org/Offer'>"
            "<meta itemprop='price' content='20.00'><meta itemprop='priceCurrency' content='EUR'>"
            "</div></div>")
    p = extract_product(page(body=body), URL)
    assert p is not None and p.name == "Bra" and p.brand is None and p.sku is None


def test_microdata_reads_only_visible_text() -> None:
    body = ("<div itemscope itemtype='http://schema.org/Product'><h1 itemprop='name'>"
            "<span class='g-hdn'>Details about&nbsp;</span>Graffiti Hoodie</h1>"
            "<span itemprop='offers' itemscope itemtype='http://schema.org/Offer'>"
            "<span itemprop='price' content='25.00'>EUR 25,00</span>"
            "<meta itemprop='priceCurrency' content='EUR'></span></div>")
    p = extract_product(page(body=body), URL)
    assert p is not None and p.name == "Graffiti Hoodie" and p.price == 25.0


def test_markup_price_shown_struck_through_gives_way_to_the_sale_price() -> None:
    body = ("<div itemscope itemtype='http://schema.org/Product'><h1 itemprop='name'>Soma</h1>"
            "<div itemprop='offers' itemscope itemtype='http://schema.org/Offer'>"
            "<meta itemprop='price' content='219.99'><meta itemprop='priceCurrency' "
            "content='EUR'></div><div class='price-block'><span class='original-price'>"
            "EUR219.99</span><span class='current-price'>EUR110.00</span></div></div>")
    p = extract_product(page(body=body), URL)
    assert p is not None and p.price == 110.0 and p.sources["price"] == "fallback"


@pytest.mark.parametrize("markup,expected", [
    (ld({"@type": "Product", "name": "A", "offers": {"price": 5, "availability":
                                                     "http://schema.org/OutOfStock"}}),
     ("OutOfStock", "jsonld")),
    (ld({"@type": "Product", "name": "A", "offers": {"price": 5, "availability": "SoldOut"}}),
     ("OutOfStock", "jsonld")),
    ("<meta property='og:type' content='product'><meta property='og:title' content='A'>"
     "<meta property='product:availability' content='in stock'>", ("InStock", "opengraph")),
    (ld({"@type": "Product", "name": "A", "offers": {"price": 5}}), ("InStock", "fallback")),
    (ld({"@type": "Product", "name": "A"}), (None, None)),
])
def test_availability(markup: str, expected: tuple[str | None, str | None]) -> None:
    p = extract_product(page(markup), URL)
    assert p is not None and (p.availability, p.sources.get("availability")) == expected


def test_extract_pages_and_the_extract_command(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from garment.scrape.extract import PAGE_KEYS, extract_pages

    product = tmp_path / "coat.html"
    product.write_bytes(page(ld({"@type": "Product", "name": "Coat", "sku": "C-1",
                                 "image": "/img/coat.jpg", "offers": {
                                     "price": "99.50", "priceCurrency": "eur",
                                     "availability": "https://schema.org/PreOrder"}})
                             ).encode("utf-8"))
    listing = tmp_path / "list.html"
    listing.write_text(page(body="<h1>Coats</h1>"), encoding="utf-8")
    rows = extract_pages([product, listing], url="https://shop.example/p/coat")
    assert set(PAGE_KEYS) <= set(rows[0]) and rows[0]["product"] and not rows[1]["product"]
    assert (rows[0]["name"], rows[0]["price"], rows[0]["currency"], rows[0]["availability"]) == \
        ("Coat", 99.5, "EUR", "PreOrder")
    assert rows[0]["image_url"] == "https://shop.example/img/coat.jpg"
    assert rows[0]["sources"]["price"] == "jsonld"
    result = cli("extract", str(product), str(listing), "--url", "https://shop.example/p/coat")
    lines = [json.loads(line) for line in result.output.splitlines()]  # type: ignore[attr-defined]
    assert [r["sku"] for r in lines] == ["C-1", None]
    with pytest.raises(GarmentError, match="cannot read page .*missing.html"):
        extract_pages([tmp_path / "missing.html"])


def test_availability_is_stored_and_exported(tmp_path: Path) -> None:
    import csv

    from garment.export import export
    from garment.store import Catalogue

    p = extract_product(page(ld({"@type": "Product", "name": "Coat", "offers": {
        "price": 10, "availability": "http://schema.org/OutOfStock"}})), URL)
    assert p is not None
    with Catalogue.open(tmp_path / "cat") as cat:
        cat.save_product(p.as_dict(), None)
    export(tmp_path / "cat", tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        assert [r["availability"] for r in csv.DictReader(f)] == ["OutOfStock"]


def test_a_dollar_price_is_no_template_placeholder() -> None:
    body = ("<div itemscope itemtype='http://schema.org/Product'><h1 itemprop='name'>Skate"
            "</h1><div itemprop='offers' itemscope itemtype='http://schema.org/Offer'>"
            "<meta itemprop='price' content='$60'><meta itemprop='priceCurrency' "
            "content='CAD'></div></div>")
    p = extract_product(page(body=body), URL)
    assert p is not None and (p.price, p.currency) == (60.0, "CAD")


def test_og_price_makes_a_titled_page_an_item_for_sale() -> None:
    head = ("<meta property='og:title' content='Magazine, one year'>"
            "<meta property='og:price' content='30,000원~'>")
    p = extract_product(page(head), URL)
    assert p is not None and p.extractor == "opengraph"
    assert (p.price, p.currency, p.availability) == (30000.0, "KRW", "InStock")
    sale = ("<meta property='og:type' content='product'><meta property='og:title' content='Top'>"
            "<meta property='product:price:amount' content='40.00'><meta property="
            "'product:price:currency' content='EUR'><meta property='product:sale_price:amount' "
            "content='29.95'><meta property='product:sale_price:currency' content='EUR'>")
    p = extract_product(page(sale), URL)
    assert p is not None and (p.price, p.currency) == (29.95, "EUR")
    # A title alone is no item for sale.
    assert extract_product(page("<meta property='og:title' content='About us'>"), URL) is None


@pytest.mark.parametrize("button,expected", [
    ("<button>Add to your basket</button>", ("InStock", "fallback")),
    ("<button disabled>Add to your basket</button>", ("OutOfStock", "jsonld")),
    ("<button class='btn btn--disabled'>Add to basket</button>", ("OutOfStock", "jsonld")),
    ("<button>Add to basket</button><p>Sold out</p>", ("OutOfStock", "jsonld")),
])
def test_a_buy_button_the_buyer_can_press_beats_stale_sold_out_markup(
        button: str, expected: tuple[str, str]) -> None:
    markup = ld({"@type": "Product", "name": "Chelsea Boot", "sku": "B-1", "image": "/b.jpg",
                 "offers": {"price": "136.00", "priceCurrency": "GBP",
                            "availability": "OutOfStock"}})
    body = f"<div class='product'><h1>Chelsea Boot</h1><span>£136</span>{button}</div>"
    p = extract_product(page(markup, body=body), URL)
    assert p is not None and (p.availability, p.sources["availability"]) == expected


@pytest.mark.parametrize("words,expected", [
    ("NOT SOLD", "InStock"), ("Sold", "OutOfStock"), ("Auf Lager", "InStock"),
    ("nicht verfügbar", "OutOfStock"), ("Épuisé", "OutOfStock"), ("Na skladě", "InStock"),
    ("https://schema.org/PreOrder", "PreOrder"), ("Colour: red", None),
    ("In stock. Dispatched from and sold by Shop.", "InStock"),
])
def test_microdata_availability_written_as_words(words: str, expected: str | None) -> None:
    body = ("<div itemscope itemtype='http://schema.org/Product'><h1 itemprop='name'>Lamp</h1>"
            "<div itemprop='offers' itemscope itemtype='http://schema.org/Offer'>"
            f"<span itemprop='availability'>{words}</span></div></div>")
    p = extract_product(page(body=body), URL)
    assert p is not None and p.availability == expected


@pytest.mark.parametrize("markup", [
    # microdata: the value in a <link href> or <meta content>
    "<div itemscope itemtype='http://schema.org/Product'><h1 itemprop='name'>Coat</h1>"
    "<div itemprop='offers' itemscope itemtype='http://schema.org/Offer'><link "
    "itemprop='availability' href='https://schema.org/OutOfStock'></div></div>",
    "<div itemscope itemtype='http://schema.org/Product'><h1 itemprop='name'>Coat</h1>"
    "<div itemprop='offers' itemscope itemtype='http://schema.org/Offer'><meta "
    "itemprop='availability' content='out_of_stock'></div></div>",
    # RDFa with a full IRI
    "<div vocab='https://schema.org/' typeof='Product'><span property='name'>Coat</span>"
    "<div property='offers' typeof='Offer'><link property='availability' "
    "href='https://schema.org/OutOfStock'></div></div>",
    # JSON-LD: a compact IRI, and availability said of the product itself
    ld({"@type": "Product", "name": "Coat", "offers": {"availability": "schema:OutOfStock"}}),
    ld({"@type": "Product", "name": "Coat", "availability": "OutOfStock"}),
    # OpenGraph
    "<meta property='og:type' content='product'><meta property='og:title' content='Coat'>"
    "<meta property='og:availability' content='oos'>",
])
def test_availability_in_every_markup_shape(markup: str) -> None:
    p = extract_product(page(body=markup), URL)
    assert p is not None and p.availability == "OutOfStock"


@pytest.mark.parametrize("og_title,title,site,name", [
    ("[Timecommerce Tmall] Big bra set", "Big bra set - Tmall", "", "Big bra set"),
    ("Wool coat | Shopname", "Wool coat", "Shopname", "Wool coat"),
    ("Wool coat - Blue", "Wool coat - Blue | Shopname", "", "Wool coat - Blue"),
    ("Wool coat  -  Blue", "Something else", "", "Wool coat - Blue"),
])
def test_og_title_without_the_shops_name(og_title: str, title: str, site: str,
                                         name: str) -> None:
    head = (f"<title>{title}</title><meta property='og:type' content='product'>"
            f"<meta property='og:title' content='{og_title}'>" +
            (f"<meta property='og:site_name' content='{site}'>" if site else ""))
    p = extract_product(page(head), URL)
    assert p is not None and p.name == name
