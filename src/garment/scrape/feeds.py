"""Scrape, feeds: products and their images from a shop's own feeds, pure functions.

Discovery shortcuts a shop publishes, read instead of crawling every page where present:

- image sitemaps (``<image:image><image:loc>`` under a sitemap's ``<url>``): the photos
  of each page, candidates for its packshot (``sitemap_images``);
- Shopify's ``/products.json?limit=250&page=N``: every product with its images, price
  and vendor, a page of up to 250 at a time (``shopify_products``);
- a Google Merchant feed the user names (``--feed URL``): RSS 2.0 or Atom with ``g:``
  fields, or the tab-separated form (``merchant_products``).

Each product is a ``Product`` (``extractor`` "feed", every field's source "feed"), as a
page's extraction gives one, so the pipelines treat both alike.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree

from garment.scrape import schemaorg
from garment.scrape.extract import Product

#: Google's namespace for Merchant feed fields (g:id, g:price ...).
G_NS = "http://base.google.com/ns/1.0"
#: Shopify's page size for /products.json (its maximum).
SHOPIFY_PAGE = 250
#: Pages of /products.json read at most (250 products each).
SHOPIFY_MAX_PAGES = 200
#: A Shopify storefront's HTML (its CDN, its global object).
SHOPIFY_MARKS = re.compile(r"cdn\.shopify\.com|Shopify\.shop\s*=|shopify-features", re.I)
SHOPIFY_CURRENCY = re.compile(r'Shopify\.currency\s*=\s*\{[^}]*"active"\s*:\s*"([A-Z]{3})"')
CURRENCY = re.compile(r"\b([A-Z]{3})\b")


def _parser() -> etree.XMLParser:
    # No entities, no network, no huge trees: a feed is data from the web.
    return etree.XMLParser(resolve_entities=False, no_network=True, recover=True,
                           remove_comments=True, huge_tree=False)


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def sitemap_images(body: bytes) -> dict[str, list[str]]:
    """Page URL -> its image URLs, from a sitemap with Google's image extension."""
    if b"image" not in body:
        return {}
    root = etree.fromstring(body, parser=_parser())
    out: dict[str, list[str]] = {}
    if root is None:
        return out
    for url in root:
        if _local(url.tag) != "url":
            continue
        loc, images = "", []
        for child in url:
            if _local(child.tag) == "loc":
                loc = (child.text or "").strip()
            elif _local(child.tag) == "image":
                images += [(c.text or "").strip() for c in child if _local(c.tag) == "loc"]
        if loc and (images := [i for i in images if i.startswith(("http://", "https://"))]):
            out[loc] = images
    return out


def is_shopify(html: str, headers: dict[str, str]) -> bool:
    """Whether a page comes from a Shopify storefront (its headers or its markup)."""
    if any(k.lower().startswith("x-shopify") or k.lower() == "x-shopid" for k in headers):
        return True
    return SHOPIFY_MARKS.search(html[:200_000]) is not None


def shopify_currency(html: str) -> str | None:
    """The storefront's active currency as its page declares it."""
    m = SHOPIFY_CURRENCY.search(html)
    return m.group(1) if m else None


def shopify_products(body: bytes, root: str, currency: str | None = None) -> list[Product]:
    """The products of one page of Shopify's ``/products.json`` (empty: the last page)."""
    try:
        data = json.loads(body)
    except ValueError:
        return []
    items = data.get("products") if isinstance(data, dict) else None
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not item.get("handle"):
            continue
        url = urljoin(root, f"/products/{item['handle']}")
        variants = [v for v in item.get("variants") or [] if isinstance(v, dict)]
        shown = next((v for v in variants if v.get("available")), variants[0] if variants
                     else {})
        price, _ = schemaorg.parse_price(shown.get("price"))
        available = any(v.get("available") for v in variants) if variants else None
        images = [str(i["src"]) for i in item.get("images") or []
                  if isinstance(i, dict) and i.get("src")]
        p = _product(url, sku=shown.get("sku") or str(item.get("id") or "") or None,
                     name=item.get("title"), brand=item.get("vendor"), price=price,
                     currency=currency, category=item.get("product_type") or None,
                     availability=None if available is None else
                     "InStock" if available else "OutOfStock",
                     description=_text(item.get("body_html")), images=images)
        out.append(p)
    return out


def merchant_products(body: bytes, base: str = "") -> list[Product]:
    """The products of a Google Merchant feed: XML (RSS 2.0 or Atom, ``g:`` fields) or
    tab-separated values with a header row; one product per distinct link."""
    head = body[:1000].lstrip()
    rows = _merchant_xml(body) if head.startswith(b"<") else _merchant_tsv(body)
    out: list[Product] = []
    seen: set[str] = set()
    for row in rows:
        link = urljoin(base, row.get("link", "")) if row.get("link") else ""
        if not link.startswith(("http://", "https://")) or link in seen:
            continue  # one product per page: a feed lists each size of it
        seen.add(link)
        price_text = row.get("sale_price") or row.get("price") or ""
        price, symbol = schemaorg.parse_price(price_text)
        m = CURRENCY.search(price_text)
        images = [row["image_link"]] if row.get("image_link") else []
        images += [u.strip() for u in re.split(r"[,\s]+", row.get("additional_image_link", ""))
                   if u.strip()]
        out.append(_product(
            link, sku=row.get("mpn") or row.get("id"), name=row.get("title"),
            brand=row.get("brand"), price=price,
            currency=m.group(1) if m else schemaorg.currency_code(symbol),
            category=row.get("product_type") or row.get("google_product_category"),
            availability=schemaorg.availability(row.get("availability")),
            description=row.get("description"),
            images=[urljoin(base, u) for u in images]))
    return out


def _merchant_xml(body: bytes) -> list[dict[str, str]]:
    root = etree.fromstring(body, parser=_parser())
    if root is None:
        return []
    rows = []
    for item in root.iter():
        if _local(item.tag) not in ("item", "entry"):
            continue
        row: dict[str, str] = {}
        for child in item:
            name = _local(child.tag)
            value = (child.text or "").strip() or (child.get("href") or "").strip()
            if name == "additional_image_link" and row.get(name):
                row[name] += " " + value
            elif value and (name not in row or etree.QName(child.tag).namespace == G_NS):
                row[name] = value  # g:title wins over title
        rows.append(row)
    return rows


def _merchant_tsv(body: bytes) -> list[dict[str, str]]:
    text = body.decode("utf-8-sig", "replace")
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    return [{(k or "").strip().lower().removeprefix("g:"): (v or "").strip()
             for k, v in row.items()} for row in reader]


def _text(html: Any) -> str | None:
    if not html or not isinstance(html, str):
        return None
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    return text or None


def _product(url: str, images: list[str], **fields: Any) -> Product:
    p = Product(url=url, canonical_url=url, extractor="feed")
    for name, value in fields.items():
        if value not in (None, "") and hasattr(p, name):
            setattr(p, name, value)
            p.sources[name] = "feed"
    p.image_urls = [u for u in images if urlsplit(u).scheme in ("http", "https")]
    if p.image_urls:
        p.sources["image_urls"] = "feed"
    if hasattr(p, "image_candidates"):
        p.image_candidates = [{"url": u, "source": "feed", "variant": False}
                              for u in p.image_urls]
    return p
