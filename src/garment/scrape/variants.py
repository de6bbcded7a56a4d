"""Scrape, product variants: several schema.org Product nodes of one page -> the product.

Shops describe one product as a ``ProductGroup`` with ``hasVariant``, or as one Product
node per size or colour; a listing marks up several unrelated products. ``pick_product``
tells them apart and merges a product's nodes into one: the variant the page shows, the
group's fields, the product-level reference.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from garment.scrape.schemaorg import (
    FAMILY_OFFERS,
    SHOWN_VARIANT,
    get,
    is_product,
    offers,
    types_of,
    value,
)


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [] if v is None else [v]


def _url_of(node: dict[str, Any], base: str) -> str:
    u = get(node, "url")
    return urljoin(base, u.strip()).split("#")[0] if isinstance(u, str) else ""


def _reference(family: list[dict[str, Any]], chosen: dict[str, Any]) -> str | None:
    """The product-level reference of a product described one node per variant: the
    group's id, else what every variant's sku starts with (cut at a separator)."""
    for node in [*family, chosen]:
        if ref := value(node, "productGroupID", "inProductGroupWithID"):
            return ref
    skus = sorted({s for n in family if "productgroup" not in types_of(n)
                   if (s := value(n, "sku", "productID", "mpn"))})
    if len(skus) < 2:
        return None
    prefix = skus[0][:len(skus[0])]
    for s in skus[1:]:
        while not s.startswith(prefix):
            prefix = prefix[:-1]
    cut = max(prefix.rfind(c) for c in "-_/. ")
    # Only a prefix ending at a separator is a reference ("1044/320/" of 1044/320/600/..).
    if cut >= 3 and len(prefix) > cut and prefix[cut] in "-_/. ":
        return prefix[:cut]
    return None


def pick_product(nodes: list[dict[str, Any]], urls: set[str]) -> dict[str, Any] | None:
    """The page's product as one node, or None for a listing.

    One Product node is the product. Several (a ProductGroup and its ``hasVariant``, or
    one node per size or colour sharing a name or group id) are one product: the node
    of the variant the page shows (its url is the page's, else the first variant) with
    the group's fields filled in and the product-level reference as sku. Several
    unrelated products, none of them this page, mean a listing.
    """
    products = [n for n in nodes if is_product(n)]
    groups = [n for n in products if "productgroup" in types_of(n)]
    variants = [v for g in groups for v in _as_list(get(g, "hasVariant"))
                if isinstance(v, dict) and v not in products]
    pool = products + variants
    if not pool:
        return None
    base = min(urls) if urls else ""
    shown = next((n for n in pool if _url_of(n, base) in urls), None)
    names = {value(n, "name") for n in products} - {None}
    family = (len(products) == 1 or len(groups) == 1 or len(names) <= 1 or
              len({value(n, "productGroupID", "inProductGroupWithID") for n in pool}) == 1
              and value(pool[0], "productGroupID", "inProductGroupWithID") is not None)
    if not family:
        return shown if shown in products else None
    members = [n for n in pool if "productgroup" not in types_of(n)]
    chosen = shown or (members[0] if members else pool[0])
    if len(pool) == 1:
        return chosen
    merged = {**(groups[0] if groups else {}), **{k: v for k, v in chosen.items()
                                                 if v not in (None, "", [])}}
    if ref := _reference(pool, chosen):
        merged["sku"] = ref
    merged[SHOWN_VARIANT] = True
    # The product is in stock when any of its variants is (sizes sell out one by one).
    merged[FAMILY_OFFERS] = [o for n in pool for o in offers(get(n, "offers"))]
    return merged
