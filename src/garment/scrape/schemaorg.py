"""Scrape, structured data: tolerant JSON-LD loading and schema.org Product nodes -> fields.

Shops ship JSON-LD that ``json.loads`` rejects: raw control characters inside strings,
trailing commas, a trailing semicolon, HTML comments or CDATA around the JSON, several
objects in one block. ``loads_tolerant`` repairs these before giving up on a block. The
node helpers work on JSON-LD, and on microdata/RDFa once extruct has put them in the
same shape.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

#: Wrappers around a block's JSON: HTML comments, CDATA sections, and the JavaScript
#: comments that hide CDATA markers from a script parser (``/*<![CDATA[*/ ... /*]]>*/``).
_WRAPPER_START = re.compile(r"^\s*(<!--|<!\[CDATA\[|/\*.*?\*/|//[^\n]*(\n|$))", re.S)
_WRAPPER_END = re.compile(r"(-->|\]\]>|/\*[^*]*\*/|//[^\n\"]*)\s*$")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

PRODUCT_TYPES = frozenset({"product", "productgroup", "productmodel", "individualproduct",
                           "someproducts", "vehicle"})

CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "US$": "USD", "$": "USD", "¥": "JPY", "₹": "INR",
                    "₩": "KRW", "원": "KRW", "zł": "PLN", "kr": "SEK", "Kč": "CZK", "₽": "RUB",
                    "руб": "RUB", "лв": "BGN", "₺": "TRY", "R$": "BRL", "Rs": "INR", "₴": "UAH",
                    "₸": "KZT", "тг": "KZT", "₪": "ILS", "₫": "VND", "฿": "THB", "₱": "PHP",
                    "Kn": "HRK", "kn": "HRK", "Ft": "HUF", "lei": "RON", "円": "JPY"}


#: JSON-LD nested deeper than this is refused: real markup stays under 15 levels, and
#: the recursive helpers below must never meet a structure deep enough to exhaust the
#: stack (200,000 nested lists are a few hundred kB of page).
MAX_DEPTH = 64


class JsonLdTooDeep(Exception):
    """A JSON-LD block nested beyond ``MAX_DEPTH``: the page is an error, not a product."""

    reason = "jsonld_too_deep"


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` deep (iterative: no stack)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (list, dict)):
            if depth > limit:
                return True
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


def _decode_all(text: str) -> list[Any]:
    """Every JSON value in ``text``, one after another, separated by space or ';'."""
    dec = json.JSONDecoder(strict=False)  # strict=False accepts control chars in strings
    out, i = [], 0
    while i < len(text):
        while i < len(text) and text[i] in " \t\r\n;,":
            i += 1
        if i >= len(text):
            break
        value, i = dec.raw_decode(text, i)
        out.append(value)
    return out


def loads_tolerant(text: str) -> list[Any]:
    """Parse a JSON-LD block; returns its top-level values ([] when beyond repair).

    Raises JsonLdTooDeep when the block nests beyond ``MAX_DEPTH``.
    """
    raw, text = text.strip(), _unwrap(text)
    repaired = _CONTROL.sub(" ", _TRAILING_COMMA.sub(r"\1", text))
    # Some shops entity-escape the block (&quot;), which a script element never needs.
    attempts = (raw, text, _TRAILING_COMMA.sub(r"\1", text), repaired, html.unescape(repaired))
    for attempt in attempts:
        try:
            values = _decode_all(attempt)
        except ValueError:
            continue
        except RecursionError:  # json's C scanner stops at the interpreter's stack limit
            raise JsonLdTooDeep(f"JSON-LD nested beyond Python's stack limit "
                                f"({len(text):,} characters)") from None
        if _too_deep(values):
            raise JsonLdTooDeep(f"JSON-LD nested more than {MAX_DEPTH} levels deep")
        return values
    return []


def _unwrap(text: str) -> str:
    """``text`` without the comment and CDATA wrappers around its JSON (bounded)."""
    text = text.strip()
    for _ in range(8):
        stripped = _WRAPPER_END.sub("", _WRAPPER_START.sub("", text, count=1), count=1).strip()
        if stripped == text:
            break
        text = stripped
    return text


def iter_nodes(obj: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every dict node, flattening lists and ``@graph`` and looking inside ``mainEntity``
    and ``itemListElement`` (bounded depth)."""
    if depth > 6:
        return
    if isinstance(obj, list):
        for x in obj:
            yield from iter_nodes(x, depth + 1)
    elif isinstance(obj, dict):
        if "@graph" in obj:
            yield from iter_nodes(obj["@graph"], depth + 1)
        yield obj
        for key in ("mainEntity", "mainEntityOfPage", "item", "itemListElement"):
            if isinstance(obj.get(key), (dict, list)):
                yield from iter_nodes(obj[key], depth + 1)


def types_of(node: dict[str, Any]) -> set[str]:
    """Lower-case short type names: 'https://schema.org/Product' -> 'product'."""
    t = node.get("@type") or node.get("type") or []
    names = t if isinstance(t, list) else [t]
    return {str(n).rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1].lower() for n in names}


def is_product(node: dict[str, Any]) -> bool:
    return bool(types_of(node) & PRODUCT_TYPES)


def text(value: Any) -> str | None:
    """A plain string from a JSON-LD value: str, number, {'name'|'@value'}, or a list."""
    if isinstance(value, list):
        for v in value:
            t = text(v)
            if t:
                return t
        return None
    if isinstance(value, dict):
        for key in ("name", "@value", "value", "@id"):
            if key in value:
                return text(value[key])
        return None
    if value is None or isinstance(value, bool):
        return None
    s = " ".join(str(value).split())
    return s or None


def currency_code(raw: str | None) -> str | None:
    """An ISO 4217 code from a code or a symbol ('€' -> 'EUR'); None when unknown."""
    if not raw:
        return None
    raw = raw.strip()
    if re.fullmatch(r"[A-Za-z]{3}", raw):
        return raw.upper()
    return CURRENCY_SYMBOLS.get(raw) or next(
        (code for sym, code in CURRENCY_SYMBOLS.items() if sym in raw), None)


def parse_price(value: Any) -> tuple[float | None, str | None]:
    """(amount, currency) from '1.299,00 €', '$49.99', 49.5 ...; currency from a symbol
    or code. A plain decimal number is read as written; text by price-parser."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    s = text(value)
    if not s or PLACEHOLDER.match(s) or not re.search(r"\d", s):
        return None, None
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s), None
    from price_parser import Price

    price = Price.fromstring(s)
    return price.amount_float, currency_code(price.currency)


def _image_urls(value: Any, base: str) -> list[str]:
    out: list[str] = []
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, dict):
            v = v.get("contentUrl") or v.get("url") or v.get("@id")
            if isinstance(v, list):
                v = v[0] if v else None
        if isinstance(v, str) and v.strip() and not v.startswith("data:"):
            out.append(urljoin(base, v.strip()))
    return out


#: Template text a shop failed to fill in (``$metabrand``, ``{{ brand }}``, ``<%= sku %>``);
#: a variable starts with a letter, so a price in dollars (``$60``) is none.
PLACEHOLDER = re.compile(r"^\s*(\$\{?[A-Za-z_][\w.]*\}?|\{\{.*\}\}|\{%.*%\}|<%.*%>|%[\w.]+%|"
                         r"#\{.*\}|\[\[.*\]\]|undefined|null|nan)\s*$", re.I | re.S)
#: priceSpecification types of a price the buyer does not pay now.
NOT_NOW = re.compile(r"(list|strikethrough|msrp|srp|regular|original|was|invoice)", re.I)
#: schema.org ItemAvailability short names, by their letters lower-cased; OpenGraph's and
#: common spellings map onto them.
AVAILABILITY = {n.lower(): n for n in (
    "InStock", "OutOfStock", "PreOrder", "PreSale", "BackOrder", "Discontinued",
    "InStoreOnly", "OnlineOnly", "LimitedAvailability", "MadeToOrder", "Reserved")}
# SoldOut is schema.org's word for an event; for a product it is OutOfStock.
AVAILABILITY.update({"soldout": "OutOfStock", "available": "InStock", "availablefororder": "BackOrder",
                     "oos": "OutOfStock", "unavailable": "OutOfStock", "instockonline":
                     "InStock", "pending": "PreOrder"})


def get(node: dict[str, Any], *keys: str) -> Any:
    """``node``'s value for the first of ``keys`` it has, matched case-insensitively
    (shops write ``lowprice``, ``PriceCurrency``); None when it has none."""
    for k in keys:
        if k in node:
            return node[k]
    lower = {str(k).lower(): v for k, v in node.items()}
    return next((lower[k.lower()] for k in keys if k.lower() in lower), None)


def value(node: dict[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` with real text (template placeholders are none)."""
    for k in keys:
        t = text(get(node, k))
        if t and not PLACEHOLDER.match(t):
            return t
    return None


#: Availability written as words in the languages shops write it (a microdata value
#: read from the page: "Auf Lager", "Épuisé", "Not sold"); the negative words first, as
#: they contain the positive ones ("nicht verfügbar", "indisponible").
OUT_OF_STOCK_TEXT = re.compile(
    r"out\s*of\s*stock|sold\s*out|^\s*sold\W*$|unavailable|not\s+available|no\s+longer|"
    r"ausverkauft|nicht\s+(mehr\s+)?(verf[üu]gbar|lieferbar|vorr[äa]tig)|[ée]puis[ée]|"
    r"indisponible|rupture|agotad[oa]|no\s+disponible|esaurit[oa]|non\s+disponibile|"
    r"uitverkocht|niet\s+(leverbaar|op\s+voorraad)|nedostupn|vyprodan|wyprzedan|niedost[eę]pn|"
    r"нет\s+в\s+наличии|распродан|品切れ|在庫切れ|缺貨|售完|품절", re.I)
IN_STOCK_TEXT = re.compile(
    r"in\s*stock|available|auf\s+lager|lieferbar|verf[üu]gbar|vorr[äa]tig|en\s+stock|"
    r"disponible|disponibile|op\s+voorraad|leverbaar|na\s+sklad|skladem|dost[eę]pn|dostupn|"
    r"raspolo[žz]iv|dobavljiv|в\s+наличии|有現貨|有货|現貨|在庫あり|재고\s*있음|not\s+sold", re.I)


def availability(raw: Any) -> str | None:
    """A schema.org ItemAvailability short name from 'http://schema.org/InStock',
    'instock', OpenGraph's 'in stock', a short phrase ('Auf Lager', 'Sold out') ...;
    None when unknown."""
    t = text(raw)
    if not t:
        return None
    # The last part of an IRI, full or compact: ".../InStock", "schema:InStock", "#InStock".
    key = re.sub(r"[^a-z]", "", re.split(r"[/:#]", t.rstrip("/"))[-1].lower())
    if key in AVAILABILITY or len(t) > 60:
        return AVAILABILITY.get(key)
    if OUT_OF_STOCK_TEXT.search(t):
        return "OutOfStock"
    return "InStock" if IN_STOCK_TEXT.search(t) else None


def offers(value_: Any, depth: int = 0) -> list[dict[str, Any]]:
    """Every priced offer in ``value_`` (Offer, AggregateOffer, lists, nested ``offers``,
    ``priceSpecification``): dicts of price (float), currency, availability and
    ``now`` (False for a list or strikethrough price)."""
    out: list[dict[str, Any]] = []
    if depth > 4:
        return out
    for o in value_ if isinstance(value_, list) else [value_]:
        if not isinstance(o, dict):
            continue
        currency = value(o, "priceCurrency", "currency")
        avail = availability(get(o, "availability"))
        entries = [(get(o, "price", "lowPrice", "minPrice", "highPrice"), currency, True)]
        spec = get(o, "priceSpecification")
        for sp in spec if isinstance(spec, list) else [spec]:
            if isinstance(sp, dict):
                now = not NOT_NOW.search(text(get(sp, "priceType")) or "")
                entries.append((get(sp, "price", "minPrice"),
                                value(sp, "priceCurrency") or currency, now))
        for raw, cur, now in entries:
            amount, symbol = parse_price(raw)
            if amount is not None:
                out.append({"price": amount, "currency": cur or symbol, "availability": avail,
                            "now": now})
        nested = get(o, "offers")
        if nested is not None:
            out.extend(offers(nested, depth + 1))
        if avail and not any(e["availability"] for e in out):
            out.append({"price": None, "currency": currency, "availability": avail,
                        "now": True})
    return out


def best_offer(found: list[dict[str, Any]]) -> dict[str, Any]:
    """The price the page shows the buyer now: the lowest current price of the offers in
    stock (a sale beats the list price; a "from" range starts at its lowest), with the
    availability of the offers."""
    # A zero price is a placeholder ("price on request"), not a price.
    priced = [o for o in found if o["price"] is not None and o["price"] != 0]
    now = [o for o in priced if o["now"]] or priced
    # Sizes sold out at a lower price are not what the page offers.
    now = [o for o in now if o["availability"] in (None, "InStock")] or now
    best = dict(min(now, key=lambda o: o["price"])) if now else {}
    avails = [o["availability"] for o in found if o["availability"]]
    if avails:
        # The product is in stock when any of its offers is.
        best["availability"] = ("InStock" if "InStock" in avails else
                                best.get("availability") or avails[0])
    return best


def product_fields(node: dict[str, Any], base: str) -> dict[str, Any]:
    """Garment's product fields from a schema.org Product node (missing ones omitted)."""
    out: dict[str, Any] = {}
    for field, keys in (("name", ("name",)), ("description", ("description",)),
                        ("sku", ("sku", "productID", "mpn")),
                        ("brand", ("brand", "manufacturer"))):
        if found := value(node, *keys):
            out[field] = found
    priced = offers(get(node, "offers"))
    variants = get(node, "hasVariant")
    if not any(o["price"] for o in priced) and isinstance(variants, list):
        for variant in variants:
            if isinstance(variant, dict):
                priced += offers(get(variant, "offers"))
    offer = best_offer(priced)
    family = best_offer(node.get(FAMILY_OFFERS) or [])
    if family.get("availability"):
        offer["availability"] = family["availability"]
    if offer.get("price") is not None:
        out["price"] = offer["price"]
    if offer.get("currency"):
        out["currency"] = str(offer["currency"]).upper()
    if offer.get("availability"):
        out["availability"] = offer["availability"]
    elif avail := availability(get(node, "availability")):
        out["availability"] = avail  # said of the product itself, outside its offers
    category = get(node, "category")
    if isinstance(category, str) and category.strip():
        out["category"] = " > ".join(p.strip() for p in re.split(r"\s*[>/|]\s*", category)
                                     if p.strip())
    images = _image_urls(get(node, "image"), base)
    if images:
        out["image_urls"] = images
    url = get(node, "url")
    if isinstance(url, str) and url.strip():
        out["url"] = urljoin(base, url.strip())
    return out


def breadcrumb(nodes: list[dict[str, Any]]) -> list[str]:
    """Names of a BreadcrumbList's items in position order ([] when there is none)."""
    for node in nodes:
        if "breadcrumblist" not in types_of(node):
            continue
        items = node.get("itemListElement") or []
        items = items if isinstance(items, list) else [items]
        ranked = []
        for i, it in enumerate(items):
            if not isinstance(it, dict):
                continue
            name = text(it.get("name")) or text(it.get("item"))
            try:
                pos = float(it.get("position", i))
            except (TypeError, ValueError):
                pos = float(i)
            if name:
                ranked.append((pos, name))
        return [name for _, name in sorted(ranked)]
    return []


#: Keys of the node ``variants.pick_product`` merges for the variant the page shows: that
#: it is one, and every offer of the product's variants.
SHOWN_VARIANT = "_shown_variant"
FAMILY_OFFERS = "_family_offers"


def compact_rdfa(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """extruct's expanded RDFa (full IRIs, @value lists, @id links) -> JSON-LD-like nodes."""
    by_id = {it.get("@id"): it for it in items if isinstance(it, dict)}

    def short(key: str) -> str:
        return key.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]

    def conv(item: dict[str, Any], depth: int) -> dict[str, Any]:
        node: dict[str, Any] = {"@type": [short(t) for t in item.get("@type", [])]}
        for key, values in item.items():
            if key.startswith("@") or not isinstance(values, list):
                continue
            out = []
            for v in values:
                if "@value" in v:
                    out.append(v["@value"])
                elif "@id" in v:
                    ref = by_id.get(v["@id"])
                    out.append(conv(ref, depth + 1) if ref and depth < 4 else v["@id"])
            node[short(key)] = out[0] if len(out) == 1 else out
        return node

    return [conv(it, 0) for it in items if isinstance(it, dict) and it.get("@type")]
