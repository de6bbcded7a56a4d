"""Scrape, OpenGraph: a page's <meta> tags -> product fields (og:type product, og:title,
product:price:amount, product:availability, og:image ...)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

from garment.scrape import schemaorg


def metas(tree: Any) -> dict[str, list[str]]:
    """<meta property|name=... content=...> values by lower-case key, in page order."""
    out: dict[str, list[str]] = {}
    for el in tree.iter("meta"):
        key = (el.get("property") or el.get("name") or "").strip().lower()
        content = (el.get("content") or "").strip()
        if key and content:
            out.setdefault(key, []).append(content)
    return out


def meta(tags: dict[str, list[str]], *names: str) -> list[str]:
    """The values of the first to last of ``names`` in ``tags`` (from ``metas``)."""
    return [v for n in names for v in tags.get(n, [])]


def read(tree: Any, url: str) -> tuple[bool, dict[str, Any]]:
    """(whether the page's OpenGraph calls it an item for sale, its fields)."""
    tags = metas(tree)
    og_type = (meta(tags, "og:type") or [""])[0].lower()
    is_product = og_type in {"product", "og:product", "product.item", "product.group"}
    out: dict[str, Any] = {}
    for fld, names in (("name", ("og:title",)), ("description", ("og:description",)),
                       ("brand", ("product:brand", "og:brand")),
                       ("sku", ("product:retailer_item_id", "product:sku"))):
        if values := [v for v in meta(tags, *names) if not schemaorg.PLACEHOLDER.match(v)]:
            out[fld] = values[0]
    if "name" in out:
        out["name"] = _without_site_name(out["name"], tree, tags)
    for raw in meta(tags, "product:availability", "og:availability"):
        if avail := schemaorg.availability(raw):
            out["availability"] = avail
            break
    # A sale price is what the buyer pays; ``og:price`` and ``product:price`` are older
    # spellings, often with the currency written in ("30,000원~").
    if amount := meta(tags, "product:sale_price:amount", "product:price:amount",
                       "og:price:amount", "og:price", "product:price"):
        price, symbol = schemaorg.parse_price(amount[0])
        if price is not None:
            out["price"] = price
            # A titled object with a price is an item for sale, whatever its og:type.
            is_product = is_product or "name" in out
        currency = meta(tags, "product:sale_price:currency", "product:price:currency",
                         "og:price:currency")
        if currency or symbol:
            out["currency"] = (currency[0] if currency else symbol or "").upper()
    if images := meta(tags, "og:image", "og:image:url", "og:image:secure_url"):
        out["image_urls"] = [urljoin(url, i) for i in images]
    return is_product, out


_TITLE_SEPARATOR = re.compile(r"\s+[-|–—:·]\s+|\s*｜\s*")


def _without_site_name(title: str, tree: Any, tags: dict[str, list[str]]) -> str:
    """``title`` without the shop's name around it ("[Shop] Dress", "Dress | Shop"): the
    name og:site_name gives, or the last part of the page's <title>."""
    page_title = " ".join((tree.findtext(".//title") or "").split())
    parts = _TITLE_SEPARATOR.split(page_title)
    sites = [s.lower() for s in meta(tags, "og:site_name") + parts[-1:] * (len(parts) > 1)
             if len(s) >= 2]
    title = " ".join(title.split())
    if not sites:
        return title
    lead = re.match(r"^[\[【(](.+?)[\]】)]\s*(.+)$", title)
    if lead and any(s in lead.group(1).lower() for s in sites):
        return lead.group(2)
    seps = list(_TITLE_SEPARATOR.finditer(title))
    if seps and seps[-1].start() > 0 and any(s in title[seps[-1].end():].lower() for s in sites):
        return title[:seps[-1].start()]
    return title
