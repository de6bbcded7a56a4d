"""Scrape, structured data: tolerant JSON-LD loading and schema.org Product nodes -> fields.

Shops ship JSON-LD that ``json.loads`` rejects: raw control characters inside strings,
trailing commas, a trailing semicolon, HTML comments or CDATA around the JSON, several
objects in one block. ``loads_tolerant`` repairs these before giving up on a block. The
node helpers work on JSON-LD, and on microdata/RDFa once extruct has put them in the
same shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

_COMMENT = re.compile(r"^\s*(<!--|<!\[CDATA\[)|(-->|\]\]>)\s*$")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

PRODUCT_TYPES = frozenset({"product", "productgroup", "productmodel", "individualproduct",
                           "someproducts", "vehicle"})

CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD", "¥": "JPY", "₹": "INR", "₩": "KRW",
                    "CHF": "CHF", "kr": "SEK", "zł": "PLN"}


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
    text = _COMMENT.sub("", text.strip()).strip()
    attempts = (text, _TRAILING_COMMA.sub(r"\1", text),
                _CONTROL.sub(" ", _TRAILING_COMMA.sub(r"\1", text)))
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


def parse_price(value: Any) -> tuple[float | None, str | None]:
    """(amount, currency) from '1.299,00 €', '$49.99', 49.5 ...; currency from a symbol."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    s = text(value)
    if not s:
        return None, None
    currency = next((code for sym, code in CURRENCY_SYMBOLS.items() if sym in s), None)
    digits = re.sub(r"[^0-9.,]", "", s)
    if not re.search(r"\d", digits):
        return None, currency
    if "," in digits and "." in digits:
        dec = "," if digits.rfind(",") > digits.rfind(".") else "."
        digits = digits.replace("." if dec == "," else ",", "").replace(",", ".")
    elif "," in digits:
        head, _, tail = digits.rpartition(",")
        # '1,299' is a thousands separator, '12,99' a decimal comma.
        digits = digits.replace(",", "") if len(tail) == 3 else \
            head.replace(",", "") + "." + tail
    try:
        return float(digits.strip(".")), currency
    except ValueError:
        return None, currency


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


def _offer(offers: Any) -> dict[str, Any]:
    """The first offer with a price (Offer, AggregateOffer, list, priceSpecification)."""
    for o in offers if isinstance(offers, list) else [offers]:
        if not isinstance(o, dict):
            continue
        price = o.get("price", o.get("lowPrice"))
        spec = o.get("priceSpecification")
        if price is None and spec:
            spec = spec[0] if isinstance(spec, list) and spec else spec
            if isinstance(spec, dict):
                price = spec.get("price")
                o = {**o, "priceCurrency": o.get("priceCurrency") or spec.get("priceCurrency")}
        if price is None and "offers" in o:
            return _offer(o["offers"])
        if price is not None:
            return {"price": price, "currency": text(o.get("priceCurrency"))}
    return {}


def product_fields(node: dict[str, Any], base: str) -> dict[str, Any]:
    """Garment's product fields from a schema.org Product node (missing ones omitted)."""
    out: dict[str, Any] = {}
    for field, keys in (("name", ("name",)), ("description", ("description",)),
                        ("sku", ("sku", "productID", "mpn", "gtin13", "gtin"))):
        for k in keys:
            if text(node.get(k)):
                out[field] = text(node.get(k))
                break
    if text(node.get("brand")):
        out["brand"] = text(node.get("brand"))
    offer = _offer(node.get("offers"))
    if not offer and isinstance(node.get("hasVariant"), list):
        for variant in node["hasVariant"]:
            if isinstance(variant, dict) and (offer := _offer(variant.get("offers"))):
                break
    if offer:
        amount, symbol = parse_price(offer["price"])
        if amount is not None:
            out["price"] = amount
        if offer.get("currency") or symbol:
            out["currency"] = (offer.get("currency") or symbol or "").upper()
    category = node.get("category")
    if isinstance(category, str) and category.strip():
        out["category"] = " > ".join(p.strip() for p in re.split(r"\s*[>/|]\s*", category)
                                     if p.strip())
    images = _image_urls(node.get("image"), base)
    if images:
        out["image_urls"] = images
    if isinstance(node.get("url"), str) and node["url"].strip():
        out["url"] = urljoin(base, node["url"].strip())
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


def pick_product(nodes: list[dict[str, Any]], urls: set[str]) -> dict[str, Any] | None:
    """The page's product: the one Product node, or the one whose url is the page's.

    A listing often marks up every product it shows; several products and none of them
    this page means a listing, not a product page.
    """
    products = [n for n in nodes if is_product(n)]
    if len(products) == 1:
        return products[0]
    for n in products:
        if isinstance(n.get("url"), str) and n["url"].split("#")[0] in urls:
            return n
    # The same product described twice (e.g. a Product and its ProductGroup) share a name.
    names = {text(n.get("name")) for n in products}
    return products[0] if products and len(names) == 1 else None


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
