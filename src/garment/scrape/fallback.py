"""Scrape, generic extraction: what a product page shows without product markup.

Read off the visible page, never from scripts, styles or visually hidden elements: the
name from the first shown ``<h1>``, the price from the price-marked element nearest it
(read by price-parser; old, list and struck-through prices, unit, delivery and instalment
prices skipped, unless the product's box shows only an old one; carousels and "related"
strips are other products'), the product reference from "Article number / Item no. / Ref
/ SKU ..." labels or the URL's id as the page writes it, the brand after a "Brand" (else
"Manufacturer") label, the availability from the buy
button or a sold-out notice in the product's own box, else a short stock note ("In
stock", "Nicht lieferbar"), and the content images (``<img>`` in the main content first,
never in header/nav/footer or with logo-like markup). A page counts as a product page
when it has a name and a price with one to three buy buttons (a listing shows many), or
a labelled reference with a price, a buy button or an availability. ``extract`` uses
these fields where markup gave none, records them as coming from ``fallback`` (images:
``dom``), and lets the page's labelled reference, a sale price shown beside markup's
struck-through one, and a buy button the buyer can press beside markup's "sold out" win
over markup.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urljoin

from garment.scrape import schemaorg
from garment.scrape.images import MIN_IMAGE_PX, srcset_best
from garment.scrape.pagewords import (
    BRAND_LABEL,
    BUY,
    SKU_LABEL,
    SOLD_OUT,
    availability,
    labelled_reference,
    url_ids,
    url_reference,
)

#: Markup (class, id, alt) of an <img> or its ancestors that marks it as furniture.
JUNK_CONTEXT = re.compile(r"(logo|icon|brand-mark|avatar|badge|social|payment|banner)", re.I)
FURNITURE_TAGS = frozenset({"header", "nav", "footer", "aside"})
INVISIBLE_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head"})
#: Class names that hide an element from sight (helpers of common CSS kits and their
#: short prefixed forms: "g-hdn", "u-hidden"); responsive ones ("hidden-xs") hide it on
#: some screens only and are not among them.
HIDDEN_CLASS = re.compile(r"^(sr-only|visually-?hidden|screen-?reader(-text|-only)?|a11y-hidden|"
                          r"clipped|hidden|hide|d-none|is-hidden|offscreen|"
                          r"[a-z]{1,3}[-_](hdn|hidden|hide))$", re.I)
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
#: An element whose class/id/itemprop says it holds a price, and one that holds a price
#: the buyer does not pay now (list, struck-through, "was", unit or instalment price).
PRICE_MARK = re.compile(r"price|preis|prix|precio|prezzo|cena|amount", re.I)
OLD_PRICE = re.compile(r"old|was|strike|regular|list|compare|original|rrp|uvp|msrp|before|"
                       r"crossed|preisempf", re.I)
OTHER_PRICE = re.compile(r"instal|per-?unit|unit-?price|base-?price|saving|shipping|delivery",
                         re.I)
STRUCK_TAGS = frozenset({"del", "s", "strike"})
#: A container of other products (a carousel, "related", "customers also bought"): its
#: prices are theirs.
OTHERS = re.compile(r"carousel|recommend|related|similar|upsell|up-sell|cross-?sell|"
                    r"also-?(bought|viewed|like)|recently-?viewed", re.I)
MAX_BUY_BUTTONS = 3


def is_hidden(el: Any) -> bool:
    """Whether ``el`` itself is hidden from sight (class, style, the hidden attribute;
    aria-hidden hides from screen readers only)."""
    return (el.get("hidden") is not None or
            any(HIDDEN_CLASS.match(c) for c in (el.get("class") or "").split()) or
            bool(HIDDEN_STYLE.search(el.get("style") or "")))


def visible_copy(tree: Any) -> Any:
    """A copy of ``tree`` without hidden elements that carry no structured data, so
    microdata values read only the text a buyer sees ("Details about" read to screen
    readers before a name is not part of it)."""
    import copy

    doc = copy.deepcopy(tree)
    for el in list(doc.iter()):
        if not isinstance(el.tag, str) or el.getparent() is None or not is_hidden(el):
            continue
        if el.get("itemprop") is None and not el.xpath(".//*[@itemprop or @itemscope]"):
            el.drop_tree()
    return doc


def visible_text(el: Any, skip: frozenset[str] = frozenset()) -> str:
    """The text of ``el`` a buyer sees: no scripts, styles or hidden elements (nor, within
    ``el``, elements whose tag is in ``skip``); a button written as ``<input type=submit
    value=...>`` shows its value."""
    parts: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 60 or not isinstance(node.tag, str):
            return
        if node.tag in INVISIBLE_TAGS or is_hidden(node) or depth and node.tag in skip:
            return
        if node.tag == "input" and (node.get("type") or "").lower() in ("submit", "button"):
            parts.append(node.get("value") or "")
        parts.append(node.text or "")
        for child in node:
            walk(child, depth + 1)
            parts.append(child.tail or "")

    walk(el, 0)
    return " ".join(" ".join(parts).split())


def _in_furniture(el: Any) -> bool:
    return any(isinstance(a.tag, str) and a.tag in FURNITURE_TAGS for a in el.iterancestors())


def _title(tree: Any) -> tuple[Any, str | None]:
    """The page's title element and text: the first shown ``<h1>`` with text outside
    header, nav and footer (a hidden dialog's heading is not it); else a shown ``<h1>``
    inside one that begins as the document's ``<title>`` does (a page that wraps its
    content in ``<header>``; a shop's logo heading names the shop, not the product)."""
    framed = []
    for h1 in tree.iter("h1"):
        if any(is_hidden(a) for a in h1.iterancestors() if isinstance(a.tag, str)):
            continue
        if name := visible_text(h1):
            if not _in_furniture(h1):
                return h1, name
            framed.append((h1, name))
    title = " ".join((tree.findtext(".//title") or "").split()).lower()
    for h1, name in framed:
        shared = len(os.path.commonprefix([title, name.lower()]))
        if shared >= max(8, min(len(title), len(name)) // 2):
            return h1, name
    return None, None


def _price_kind(el: Any) -> str:
    """'old' for a price the buyer no longer pays (marked old/list/was, or struck through,
    itself or within a few ancestors), 'other' for a unit, delivery or instalment
    price, else 'now'."""
    for a in (el, *list(el.iterancestors())[:3]):
        marks = " ".join(a.get(k) or "" for k in ("class", "id", "itemprop", "data-testid"))
        # An ancestor's words count only where it is itself about prices ("a-list-item"
        # holds any content).
        priced = a is el or PRICE_MARK.search(marks)
        if a.tag in STRUCK_TAGS or priced and OLD_PRICE.search(marks):
            return "old"
        if priced and OTHER_PRICE.search(marks):
            return "other"
    return "now"


def _read_price(el: Any) -> tuple[float, str | None] | None:
    from price_parser import Price

    if el.tag == "meta" or any(is_hidden(a) for a in (el, *el.iterancestors())
                               if isinstance(a.tag, str)):
        return None
    # A price box's struck-through old price is not part of its current one.
    raw = visible_text(el, STRUCK_TAGS)
    if not raw or len(raw) > 60 or not re.search(r"\d", raw):
        return None
    price = Price.fromstring(raw)
    if price.amount_float is None or price.amount_float <= 0:
        return None
    # price-parser knows the common signs; garment's table adds local ones ("тг.", "Kn").
    currency = schemaorg.currency_code(price.currency) or next(
        (code for word in re.findall(r"[^\d\s.,:;()+\-]+", raw)
         if (code := schemaorg.CURRENCY_SYMBOLS.get(word))), None)
    # A bare number is a price only inside a price-marked element with a decimal part.
    if currency is None and not re.search(r"\d[.,]\d{2}\b", raw):
        return None
    return price.amount_float, currency


def prices(tree: Any, h1: Any) -> tuple[list[tuple[float, str | None]], set[float]]:
    """(the page's current prices, those after the name first; the amounts it shows as
    old, list or struck-through prices). Only the innermost price-marked element
    that reads as a price counts (its container repeats it with others)."""
    readable: dict[Any, tuple[tuple[float, str | None], str]] = {}
    order: dict[Any, int] = {}
    for i, el in enumerate(tree.iter()):
        order[el] = i
        if not isinstance(el.tag, str) or el.tag in INVISIBLE_TAGS:
            continue
        marks = " ".join(el.get(a) or "" for a in ("class", "id", "itemprop", "data-testid"))
        if PRICE_MARK.search(marks) and len(readable) < 400 and (found := _read_price(el)):
            readable[el] = (found, _price_kind(el))
    shadowed = {a for el in readable for a in el.iterancestors() if a in readable}
    start = order.get(h1, 0) if h1 is not None else 0
    # Depth of each ancestor of the name: a price sharing a deeper ancestor with it sits
    # in the product's own box, not in a recommendation strip further down.
    depth = {a: -i for i, a in enumerate(h1.iterancestors())} if h1 is not None else {}

    def closeness(el: Any) -> int:
        return next((depth[a] for a in el.iterancestors() if a in depth), -10**6)

    def among_others(el: Any) -> bool:
        for a in list(el.iterancestors())[:30]:
            if a in depth:
                return False  # a box around the name too: the product's own
            if OTHERS.search(" ".join(a.get(k) or "" for k in ("class", "id"))):
                return True
        return False

    def ranked(kind: str) -> list[Any]:
        return sorted((el for el, (_, k) in readable.items()
                       if k == kind and el not in shadowed and not _in_furniture(el) and
                       not among_others(el)),
                      key=lambda el: (-closeness(el), order[el] <= start, order[el]))

    current, old = ranked("now"), ranked("old")
    was = {v[0] for v, kind in readable.values() if kind == "old"}
    if old and (not current or closeness(old[0]) > closeness(current[0])) and h1 is not None:
        # The product's own box shows only a price marked as old: with no new price beside
        # it, it is the price (the current ones are other products', further away).
        current = [old[0], *current]
        was.discard(readable[old[0]][0][0])
    return [readable[el][0] for el in current], was


def _box_availability(h1: Any) -> str | None:
    """The availability the product's own box shows: the smallest box around the name
    with a buy button or a sold-out notice (a recommendation strip has its own)."""
    if h1 is None:
        return None
    for box in list(h1.iterancestors())[:12]:
        if box.tag == "body":
            break
        if found := availability(visible_text(box)):
            return found
    return None


#: Markup of a control the buyer cannot use now.
DISABLED = re.compile(r"disabled|inactive|unavailable|sold-?out|out-?of-?stock", re.I)


def _enabled_buy_control(box: Any) -> bool:
    for el in box.iter("button", "input", "a"):
        words = visible_text(el) or el.get("value") or ""
        if not BUY.search(words):
            continue
        if (el.get("disabled") is None and el.get("aria-disabled") != "true" and
                not DISABLED.search(el.get("class") or "")):
            return True
    return False


def sells_now(tree: Any) -> bool:
    """Whether the product's own box (the smallest around the name with a buy button or
    a sold-out notice) shows a buy button the buyer can press and no sold-out notice:
    the page sells the product, whatever stale markup says."""
    h1, _ = _title(tree)
    if h1 is None:
        return False
    for box in list(h1.iterancestors())[:12]:
        if box.tag == "body":
            break
        text = visible_text(box)
        if SOLD_OUT.search(text):
            return False
        if BUY.search(text):
            return _enabled_buy_control(box)
    return False


#: A class or id naming something (a price's box, a struck price) the reader must weigh.
#: A class or id value naming an old price (``OLD_PRICE``), found in one pass over a page.
_OLD_PRICE_ATTR = re.compile(r"""\b(?:class|id)\s*=\s*["'][^"']*?(?:""" + OLD_PRICE.pattern +
                             r""")[^"']*["']""", re.I)
_STRUCK = re.compile(r"<(?:del|s|strike)[\s>]", re.I)
#: Markup fields that, all given, leave the reader nothing to fill.
COMPLETE = ("name", "price", "currency", "sku", "availability", "image_urls")


def may_correct(html: str, url: str, markup: dict[str, Any], tree: Any = None) -> bool:
    """Whether reading the page could change what complete markup says: a reference shown
    under a label or in the URL (it beats markup's sku), or a struck or old price (the sale
    price shown beats markup's). A few regular-expression passes over the raw page, so a
    page with full markup and none of these is not read a second time (the reader walks
    every visible element: most of a crawl's parsing time on such pages)."""
    if any(markup.get(f) in (None, "", []) for f in COMPLETE):
        return True
    if markup.get("availability") == "OutOfStock":
        return True  # the page may show a buy button markup's stale stock contradicts
    if _STRUCK.search(html):
        return True
    # The label is looked for in the body's text (scripts included: a superset of what
    # the reader sees), a fraction of the page's markup.
    body = tree.find("body") if tree is not None else None
    if SKU_LABEL.search(" ".join(body.itertext()) if body is not None else html):
        return True
    if any(sum(c.isdigit() for c in i) >= 6 for i in url_ids(url)):
        return True
    if tree is not None:  # every class and id value, searched at once
        return OLD_PRICE.search(" ".join(tree.xpath("//@class|//@id"))) is not None
    return _OLD_PRICE_ATTR.search(html) is not None


def extract(tree: Any, url: str, decide: bool = False) -> tuple[bool, dict[str, Any]]:
    """(whether the page looks like one product's page, the fields it shows). With
    ``decide`` (no markup says product: the fields matter only if the page is one), a page
    that cannot be one's (no title, or neither one buy button nor a labelled reference)
    is answered before its prices, stock and images are read: a listing costs little."""
    body = tree.find("body")
    text = visible_text(body if body is not None else tree)
    out: dict[str, Any] = {}
    h1, name = _title(tree)
    if name:
        out["name"] = name
    buttons = len(BUY.findall(text))
    formatted, plain = url_reference(url, text)
    sku = formatted or labelled_reference(text, url)
    if decide and (not name or not (sku or 0 < buttons <= MAX_BUY_BUTTONS)):
        return False, out
    current, was = prices(tree, h1)
    if current:
        out["price"] = current[0][0]
        if current[0][1]:
            out["currency"] = current[0][1]
    out["was_prices"] = was - {amount for amount, _ in current}
    if sku:
        out["sku"] = sku
    if plain:
        out["url_sku"] = plain
    # The product's own box is read only where the page has a buy button or notice at all.
    if avail := availability(text) or _stock_note(tree):
        out["availability"] = _box_availability(h1) or avail
    if images := dom_images(tree, url):
        out["image_urls"] = images
    # One product's page: a name, and a price with one buy button (a listing shows
    # many), or a labelled reference with a price, a buy button or a sold-out notice.
    is_product = bool(name and ("price" in out and 0 < buttons <= MAX_BUY_BUTTONS or
                                "sku" in out and ("price" in out or buttons or
                                                  out.get("availability"))))
    return is_product, out


# Plain contains() (no translate(), five times slower on a large page); the words' tails
# match "Availability", "inStock", "STOCK" alike.
_STOCK_WORDS = " or ".join(f"contains(., '{w}')" for w in ("vailab", "VAILAB", "tock", "TOCK"))
_STOCK_XPATH = f"//*[@id[{_STOCK_WORDS}] or @class[{_STOCK_WORDS}]]"


def _stock_note(tree: Any) -> str | None:
    """The availability a short stock note says ("In stock", "Disponibile presso questi
    venditori", "Nicht lieferbar") in an element whose id or class names availability or
    stock, for a page without a buy button or a sold-out notice."""
    for el in tree.xpath(_STOCK_XPATH)[:30]:
        if el.tag in INVISIBLE_TAGS or _in_furniture(el):
            continue
        note = visible_text(el)
        if note and len(note) <= 80 and (found := schemaorg.availability(note)):
            return found
    return None


def _is_furniture(img: Any, seen: dict[Any, bool] | None = None) -> bool:
    """Whether ``img`` is site furniture (tiny, or inside header/nav/footer or logo-like
    markup). ``seen`` remembers elements already judged (a gallery's images share them)."""
    for attr in ("width", "height"):
        value = (img.get(attr) or "").strip().rstrip("px")
        if value.isdigit() and int(value) < MIN_IMAGE_PX:
            return True
    seen = {} if seen is None else seen
    el = img
    for _ in range(12):  # bounded walk up the ancestors
        if el is None or not isinstance(el.tag, str):
            break
        junk = seen.get(el)
        if junk is None:
            marks = " ".join(el.get(a) or "" for a in ("class", "id", "alt", "role"))
            junk = seen[el] = el.tag in FURNITURE_TAGS or bool(JUNK_CONTEXT.search(marks))
        if junk:
            return True
        el = el.getparent()
    return False


def img_src(img: Any) -> str:
    """An <img>'s largest rendition: a zoom/large attribute, the best of its (or its
    <picture>'s) srcset, then the lazy-loading attributes and src."""
    for attr in ("data-zoom-image", "data-large", "data-old-hires"):
        value = (img.get(attr) or "").strip()
        if value and not value.startswith("data:"):
            return value
    sets = [img.get("srcset"), img.get("data-srcset")]
    el = img.getparent()
    for _ in range(3):  # libxml2 nests the <img> inside <source> (not void to it)
        if el is None or el.tag == "picture":
            break
        el = el.getparent()
    if el is not None and el.tag == "picture":
        sets += [s.get("srcset") for s in el.iter("source")]
    for srcset in sets:
        if srcset and (best := srcset_best(srcset)):
            return best
    for attr in ("data-src", "data-original", "src"):
        value = (img.get(attr) or "").strip()
        if value and not value.startswith("data:"):
            return value
    return ""


def dom_images(tree: Any, url: str) -> list[str]:
    """Content images when no markup names one: <img> in main/article first, never in
    header/nav/footer or with logo-like markup."""
    scope = tree.xpath("//main|//article|//*[@role='main']") or [tree]
    out = []
    seen: dict[Any, bool] = {}
    for img in scope[0].iter("img"):
        src = img_src(img)
        if src and not _is_furniture(img, seen):
            out.append(urljoin(url, src))
    return out


def labelled_brand(tree: Any) -> str | None:
    """The brand a page shows under a label in a details table or list ("Brand | Acme",
    "Marke: Acme"; else the maker's: "Manufacturer | Acme"): the text of the element
    after the label's. One pass over the elements' own text (labels are short)."""
    maker = None
    for el in tree.iter():
        label = el.text
        # Templates indent a label over several lines: its length bounds only the scan.
        if not label or len(label) > 200 or not isinstance(el.tag, str) or \
                el.tag in INVISIBLE_TAGS or not (m := BRAND_LABEL.match(label)):
            continue
        nxt = el.getnext()
        if nxt is None or not isinstance(nxt.tag, str):
            continue
        value = visible_text(nxt).strip("\u200e\u200f :")
        if not value or len(value) > 50 or schemaorg.PLACEHOLDER.match(value):
            continue
        if m.group(1):
            return value
        maker = maker or value
    return maker
