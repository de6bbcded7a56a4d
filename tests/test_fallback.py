"""Generic extraction of pages without product markup (pages written here)."""

from __future__ import annotations

import json

import pytest

from garment.scrape.extract import extract_product, parse_html
from garment.scrape.fallback import availability, url_ids, visible_text

URL = "https://shop.example/dp/B0ABC12345"


def shop_page(main: str, extra: str = "") -> str:
    return (f"<html><head><title>Shop</title></head><body><header><img src='/logo.png' "
            f"alt='logo'><span class='price'>€0.00</span> basket</header><main>{main}</main>"
            f"{extra}<footer>© Shop</footer></body></html>")


PRODUCT = ("<div id='product'><h1><span class='sr-only'>Product: </span>Rolling Duffle Bag</h1>"
           "<div class='price-box'><span class='old-price'>€99.00</span>"
           "<span class='price'>€87.11</span><span class='unit-price'>€8.71 / kg</span></div>"
           "<button>Add to Cart</button><table><tr><th>Item number</th><td>DB-3604</td></tr>"
           "</table><img src='/img/bag-1200.jpg' width='1200' height='1200'></div>")
STRIP = ("<section class='recommended'>" + "".join(
    f"<div><span class='price'>€{i}9.99</span><button>Add to cart</button></div>"
    for i in range(2)) + "</section>")


def test_product_page_without_markup() -> None:
    p = extract_product(shop_page(PRODUCT, STRIP), URL)
    assert p is not None and p.extractor == "fallback"
    assert (p.name, p.price, p.currency, p.sku, p.availability) == (
        "Rolling Duffle Bag", 87.11, "EUR", "DB-3604", "InStock")
    assert p.image_urls == ["https://shop.example/img/bag-1200.jpg"]
    assert {p.sources[f] for f in ("name", "price", "sku", "availability")} == {"fallback"}
    assert p.sources["image_urls"] == "dom"


def test_price_nearest_the_name_wins_over_an_earlier_strip() -> None:
    p = extract_product(shop_page(STRIP + PRODUCT), URL)
    assert p is not None and p.price == 87.11


def test_a_listing_is_no_product() -> None:
    tiles = "".join(f"<div><a href='/p/{i}'>Bag {i}</a><span class='price'>€{i}0.00</span>"
                    f"<button>Add to cart</button></div>" for i in range(1, 9))
    assert extract_product(shop_page(f"<h1>Bags</h1>{tiles}"), "https://shop.example/c/bags") \
        is None


def test_sold_out_page_gives_no_borrowed_price() -> None:
    main = ("<h1>Potato Chips</h1><div id='availability'>Currently unavailable.</div>"
            "<div>ASIN : B0ABC12345</div>")
    p = extract_product(shop_page(main, STRIP), URL)
    assert p is not None and p.availability == "OutOfStock" and p.price is None
    assert p.sku == "B0ABC12345"


@pytest.mark.parametrize("text,expected", [
    ("Size M Add to basket", "InStock"), ("Sold out", "OutOfStock"),
    ("In den Warenkorb", "InStock"), ("Ausverkauft", "OutOfStock"),
    ("Some sizes sold out. Add to bag", "InStock"), ("Welcome", None),
    ("Add to shopping bag", "InStock"), ("Sepete ekle", "InStock"), ("Koupit", "InStock"),
    ("Thêm vào giỏ hàng", "InStock"), ("Vyprodáno", "OutOfStock"), ("Hết hàng", "OutOfStock"),
    ("Sin stock", "OutOfStock"), ("אזל מהמלאי", "OutOfStock"),
])
def test_availability_words(text: str, expected: str | None) -> None:
    assert availability(text) == expected


def test_labelled_reference_wins_over_markup_ids() -> None:
    ld = json.dumps({"@type": "Product", "name": "Chelsea Boot", "sku": "238887908",
                     "offers": {"price": "136.00", "priceCurrency": "GBP"}})
    body = ("<h1>Chelsea Boot</h1><dl><dt>Product Code</dt><dd>- 39139301</dd></dl>")
    p = extract_product(f"<html><head><script type='application/ld+json'>{ld}</script></head>"
                        f"<body>{body}</body></html>", "https://shop.example/boot/p5095418")
    assert p is not None and p.sku == "39139301" and p.sources["sku"] == "fallback"


def test_the_url_id_as_the_page_writes_it() -> None:
    ld = json.dumps([{"@type": "Product", "name": "Boots", "sku": f"84518927-040-{s}",
                      "offers": {"price": "69.95"}} for s in (36, 37)])
    body = "<h1>Boots</h1><p>Black - 1002/710</p>"
    p = extract_product(f"<html><head><script type='application/ld+json'>{ld}</script></head>"
                        f"<body>{body}</body></html>",
                        "https://shop.example/en/boots-p11002710.html?v1=84518927")
    assert p is not None and p.sku == "1002/710"


def test_the_url_id_the_page_shows() -> None:
    body = "<h1>Calculator</h1><p>Posted 2 days ago · 36029524 · $15</p><button>Buy now</button>"
    og = ("<meta property='og:type' content='product'>"
          "<meta property='og:title' content='Calculator'>")
    p = extract_product(f"<html><head>{og}</head><body>{body}</body></html>",
                        "https://ads.example/classified-ad/Calculator_36029524")
    assert p is not None and p.sku == "36029524" and p.sources["sku"] == "url"
    # An id the page never shows is not taken from the URL.
    p = extract_product(f"<html><head>{og}</head><body><h1>Calculator</h1></body></html>",
                        "https://ads.example/classified-ad/Calculator_36029524")
    assert p is not None and p.sku is None


def test_url_ids() -> None:
    assert url_ids("https://s.example/dp/B07FW264WL") == ["B07FW264WL"]
    assert url_ids("https://s.example/store/122725?pid=260591") == ["260591", "122725"]
    assert url_ids("https://s.example/women/dresses/") == []


def test_visible_text_skips_scripts_and_hidden_helpers() -> None:
    tree = parse_html("<div>A<script>var x='B'</script><span class='visually-hidden'>C</span>"
                      "<span style='display:none'>D</span><span aria-hidden='true'>E</span>"
                      "<span class='hidden-xs'>F</span></div>")
    assert visible_text(tree) == "A E F"


def test_a_dollar_sign_is_the_shops_own_currency() -> None:
    main = "<h1>Botines</h1><span class='price'>$ 3.499</span><button>Add to cart</button>"
    p = extract_product(shop_page(main), "https://www.shop.com.ar/botines/PU_106160.html")
    assert p is not None and (p.price, p.currency) == (3499.0, "ARS")
    p = extract_product(shop_page(main), "https://www.shop.com/botines/PU_106160.html")
    assert p is not None and p.currency == "USD"


def test_full_markup_is_not_read_again_unless_the_page_could_correct_it() -> None:
    from garment.scrape.fallback import may_correct

    full = {"name": "Coat", "price": 10.0, "currency": "EUR", "sku": "A1", "availability": "InStock",
            "image_urls": ["http://s.test/1.jpg"]}
    page = '<html><body><h1 class="name">Coat</h1><span class="price">10 EUR</span></body></html>'
    assert not may_correct(page, "http://s.test/p/coat-p00042.html", full)
    assert may_correct(page, "http://s.test/p/coat.html", {**full, "sku": None})       # a field to fill
    assert may_correct(page.replace("</h1>", "</h1>Article number: 123456"), "http://s.test/p/c", full)  # a label
    assert may_correct(page.replace("<span", "<del>12 EUR</del><span"), "http://s.test/p/c", full)
    assert may_correct(page.replace('"price"', '"price price--old"'), "http://s.test/p/c", full)
    assert may_correct(page, "http://s.test/p/coat-1234567.html", full)               # an id in the URL


def test_one_word_buy_button_and_full_width_label() -> None:
    main = ("<h1>Ortopedski ulošci</h1><div class='price'>270,00 Kn</div>"
            "<form><button>Kupi</button></form><p>商品編號：M6729654</p>")
    p = extract_product(shop_page(main), "https://shop.example/ulosci-380")
    assert p is not None and p.extractor == "fallback"
    assert (p.price, p.availability, p.sku) == (270.0, "InStock", "M6729654")
    # The word inside another ("kupiec") is no button.
    assert availability("Kupiec roku") is None


def test_name_in_a_header_that_wraps_the_page() -> None:
    page = ("<html><head><title>Fridge RC 310 at a good price</title></head><body><header>"
            "<nav><a href='/'>Home</a></nav><h1>Fridge RC 310</h1><p>Item number: 73556</p>"
            "<button>Add to cart</button></header></body></html>")
    p = extract_product(page, "https://shop.example/product/fridge-rc-310/")
    assert p is not None and (p.name, p.sku, p.availability) == (
        "Fridge RC 310", "73556", "InStock")
    # A logo heading in the header names the shop, not the product.
    logo = page.replace("<h1>Fridge RC 310</h1>", "<h1>Shop</h1>")
    assert extract_product(logo, "https://shop.example/product/fridge-rc-310/") is None


def test_a_lone_price_marked_old_in_the_products_box_is_its_price() -> None:
    main = ("<div class='product'><h1>Diving Mask</h1><div class='prices'><p>"
            "<span class='price-old-live'>100.00€</span></p></div><button>Naroči</button>"
            "</div>")
    strip = "".join(f"<div class='tile'><span class='price'>{p}.00€</span></div>"
                    for p in (150, 50))
    p = extract_product(shop_page(main, strip), "https://shop.example/diving-mask")
    assert p is not None and p.price == 100.0
    # Beside a new price, the old one stays old.
    main = main.replace("</p>", "<span class='price-now'>80.00€</span></p>")
    p = extract_product(shop_page(main, strip), "https://shop.example/diving-mask")
    assert p is not None and p.price == 80.0


def test_other_products_prices_and_a_stock_note() -> None:
    main = ("<div id='dp'><div class='centre'><h1>Pink Dog Hair Dye</h1>"
            "<div id='availability'><span>Disponibile presso questi venditori.</span></div>"
            "<p>ASIN : B0756B4GVG</p></div>"
            "<div class='similarities-widget'><ol class='a-carousel'><li>"
            "<span class='price'>2,86 €</span></li></ol></div></div>")
    p = extract_product(shop_page(main), "https://shop.example/dp/B0756B4GVG")
    assert p is not None and p.extractor == "fallback"
    assert (p.price, p.availability, p.sku) == (None, "InStock", "B0756B4GVG")
    p = extract_product(shop_page(main.replace("Disponibile presso questi venditori",
                                               "Non disponibile")),
                        "https://shop.example/dp/B0756B4GVG")
    assert p is not None and p.availability == "OutOfStock"


def test_a_price_box_with_its_struck_old_price_and_a_local_currency_sign() -> None:
    main = ("<h1>Fridge RC 310</h1><div class='product-price'><s class='was'>144 990 тг.</s>"
            "<br><span class='now'>131 990 тг.</span></div><button>Купить</button>")
    p = extract_product(shop_page(main), "https://shop.example/product/fridge/")
    assert p is not None and (p.price, p.currency) == (131990.0, "KZT")
    # A word that merely contains a sign ("Knit") names no currency: a bare whole number
    # is then no price.
    main = "<h1>Knit top</h1><div class='price'>Knit 1299</div><button>Add to cart</button>"
    p = extract_product(shop_page(main), "https://shop.example/product/top/")
    assert p is None or p.price is None


def test_the_url_id_the_pictures_are_filed_under() -> None:
    ld = json.dumps({"@type": "Product", "name": "Baby Carrier One", "offers": {"price": "502.20"},
                     "image": "https://static.shop.example/products/big/p1/987929/i6d94.jpg"})
    page = (f"<html><head><script type='application/ld+json'>{ld}</script></head>"
            "<body><h1>Baby Carrier One</h1></body></html>")
    p = extract_product(page, "https://shop.example/carriers/Baby_One-987929.html")
    assert p is not None and p.sku == "987929" and p.sources["sku"] == "url"
    # Pictures filed under another number give no reference.
    p = extract_product(page, "https://shop.example/carriers/Baby_One-987930.html")
    assert p is not None and p.sku is None


def test_of_several_labelled_references_the_one_the_url_names() -> None:
    main = ("<h1>Garden Hose</h1><p>Manufacturer ACME · Référence QB737</p>"
            "<span class='price'>€12.00</span><button>Add to basket</button>"
            "<p>Enter the code EE5BKKRB at checkout</p><p>ASIN B08LNDXM65</p>")
    p = extract_product(shop_page(main), "https://shop.example/dp/B08LNDXM65")
    assert p is not None and p.sku == "B08LNDXM65"
    # None of them in the URL: the first one shown.
    p = extract_product(shop_page(main), "https://shop.example/garden-hose")
    assert p is not None and p.sku == "QB737"


@pytest.mark.parametrize("label", ["Cod produs:", "קוד מוצר:", "Termékkód:", "Ürün kodu:",
                                   "商品番号：", "상품번호:"])
def test_product_code_labels_in_more_languages(label: str) -> None:
    main = (f"<h1>Drum unit</h1><span class='price'>€59.90</span><p>{label} DR2401</p>"
            "<button>Add to cart</button>")
    p = extract_product(shop_page(main), "https://shop.example/drum-unit")
    assert p is not None and p.sku == "DR2401"


def test_an_id_a_slug_embeds_and_a_classified_ads_number() -> None:
    assert url_ids("https://ads.example/tv/c7200a278526196/fernseher") == [
        "c7200a278526196", "278526196"]
    main = ("<h1>Beamer</h1><span class='price'>€ 150,00</span><p>Standort: Feldkirch "
            "Anzeige: 278526196</p><button>Jetzt kaufen</button>")
    p = extract_product(shop_page(main), "https://ads.example/tv/c7200a278526196/beamer")
    assert p is not None and p.sku == "278526196"
    main = main.replace("Anzeige: 278526196", "Nr. 278526196")  # unlabelled: the URL's
    p = extract_product(shop_page(main), "https://ads.example/tv/c7200a278526196/beamer")
    assert p is not None and p.sku == "278526196" and p.sources["sku"] == "url"


@pytest.mark.parametrize("details,brand", [
    ("<table><tr><th>Brand</th><td>Acme</td></tr><tr><th>Colour</th><td>Red</td></tr></table>",
     "Acme"),
    ("<ul><li><span class='bold'>Hersteller\n  \u200f\n  :\n  \u200e</span><span>Think!</span></li>"
     "</ul>", "Think!"),                                       # a maker when no brand is shown
    ("<dl><dt>Manufacturer</dt><dd>Acme Works</dd><dt>Marke</dt><dd>Acme</dd></dl>", "Acme"),
    ("<p>Our brand promise: quality</p>", None),               # no label of its own
])
def test_labelled_brand(details: str, brand: str | None) -> None:
    main = (f"<h1>Boots</h1><span class='price'>€59.90</span><button>Add to cart</button>"
            f"{details}")
    p = extract_product(shop_page(main), "https://shop.example/boots")
    assert p is not None and p.brand == brand
    assert brand is None or p.sources["brand"] == "fallback"
