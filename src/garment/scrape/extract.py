"""Scrape, extraction: HTML + URL -> product, pure functions testable on saved pages.

Layers, in order: JSON-LD, microdata, RDFa (schema.org Product), OpenGraph
(og:type product), then a site profile's selectors. A page is a product page when any
layer says so; each field comes from the first layer that has it and ``sources`` records
which. Image candidates keep the layers' order (the main packshot first) and exclude
logos, icons, placeholders and tracking pixels by URL and by markup context; of several
renditions of one image (srcset entries, URLs differing in a width parameter) the
largest within ``MAX_RENDITION_PX`` comes first.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import lxml.html
from lxml import etree

from garment.errors import GarmentError
from garment.scrape import fallback, opengraph, pagewords, schemaorg
from garment.scrape.images import MAX_RENDITION_PX, largest_first
from garment.scrape.profile import SiteProfile, load_profile
from garment.scrape.variants import pick_product

LAYERS = ("jsonld", "microdata", "rdfa", "opengraph", "profile")
FIELDS = ("sku", "name", "brand", "price", "currency", "availability", "category",
          "description")

#: URL words that mark an image as page furniture, never a packshot.
JUNK_IMAGE = re.compile(
    r"(logo|icon|favicon|sprite|placeholder|spacer|blank\.|pixel|tracking|beacon|badge|"
    r"spinner|loader|/flags?/|payment|1x1|\.svg(\?|$))", re.I)
NOAI = re.compile(r"\bno(image)?ai\b", re.I)
PAGER = re.compile(r"pag(er|ination|ing)", re.I)
PAGE_PARAMS = frozenset({"page", "p", "pg", "pagenumber", "paged", "pageindex"})


@dataclass
class Product:
    """What a product page says about its product."""

    url: str
    canonical_url: str
    extractor: str                              # first layer that said "product"
    sku: str | None = None
    name: str | None = None
    brand: str | None = None
    price: float | None = None
    currency: str | None = None
    availability: str | None = None             # schema.org short name: InStock, ...
    category: str | None = None                 # breadcrumb path, ' > ' separated
    description: str | None = None
    image_urls: list[str] = field(default_factory=list)  # main packshot first
    #: every candidate image with its evidence: {"url", "source" (the layer, "og" or
    #: "gallery"), "variant" (from the node of the variant the page shows)}
    image_candidates: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # field -> layer
    noai: bool = False                          # meta robots says noai / noimageai

    def as_dict(self) -> dict[str, Any]:
        # Field by field, one level deep (dataclasses.asdict copies recursively, a
        # noticeable part of a crawl's time for what is a flat record).
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["image_urls"] = list(self.image_urls)
        out["image_candidates"] = [dict(c) for c in self.image_candidates]
        out["sources"] = dict(self.sources)
        return out


def parse_html(html: str | bytes) -> Any:
    """An lxml tree for ``html``, tolerant of anything a shop serves."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    if not html.strip():
        html = "<html></html>"
    try:
        return lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        # An XML declaration with an encoding is refused on str input.
        return lxml.html.fromstring(re.sub(r"^\s*<\?xml[^>]*>", "", html) or "<html/>")


def _jsonld_nodes(tree: Any) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    for script in tree.xpath("//script[translate(@type, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', "
                             "'abcdefghijklmnopqrstuvwxyz')='application/ld+json']"):
        for value in schemaorg.loads_tolerant(script.text or ""):
            nodes.extend(schemaorg.iter_nodes(value))
    return nodes


def _extruct(html: Any, url: str, syntax: str) -> list[Any]:
    import extruct

    try:
        return extruct.extract(html, base_url=url, syntaxes=[syntax], uniform=True,
                               errors="ignore").get(syntax, [])
    except Exception:  # extruct/pyRdfa raise anything on odd markup; one optional layer
        return []


def _microdata_nodes(html: str, tree: Any, url: str) -> list[dict[str, Any]]:
    if "itemscope" not in html.lower():
        return []
    nodes: list[dict[str, Any]] = []
    # Values are read from the page as a buyer sees it (hidden helper text dropped).
    for value in _extruct(fallback.visible_copy(tree), url, "microdata"):
        nodes.extend(schemaorg.iter_nodes(value))
    return nodes


def _rdfa_nodes(html: str, url: str) -> list[dict[str, Any]]:
    low = html.lower()
    if "typeof=" not in low and "vocab=" not in low:
        return []
    return schemaorg.compact_rdfa(_extruct(html, url, "rdfa"))


def _select(tree: Any, expr: str, is_image: bool = False) -> list[str]:
    from parsel import Selector

    sel = Selector(root=tree)
    if expr.startswith("xpath:"):
        result = sel.xpath(expr[6:])
    elif expr.startswith(("/", "(")):
        result = sel.xpath(expr)
    else:
        result = sel.css(expr)
    out = []
    for s in result:
        if isinstance(s.root, str):
            value = s.root
        elif is_image:
            value = s.root.get("src") or s.root.get("data-src") or s.root.get("href") or ""
        else:
            value = s.xpath("normalize-space(string())").get() or ""
        if value.strip():
            out.append(" ".join(value.split()))
    return out


def _profile(tree: Any, url: str, profile: SiteProfile) -> tuple[bool, dict[str, Any]]:
    s = profile.selectors
    out: dict[str, Any] = {}
    for fld in ("sku", "name", "brand", "currency", "description"):
        if fld in s and (values := _select(tree, s[fld])):
            out[fld] = values[0]
    if "price" in s and (values := _select(tree, s["price"])):
        price, symbol = schemaorg.parse_price(values[0])
        if price is not None:
            out["price"] = price
        if symbol and "currency" not in out:
            out["currency"] = symbol
    if "category" in s and (values := _select(tree, s["category"])):
        out["category"] = " > ".join(values)
    if "image" in s and (values := _select(tree, s["image"], is_image=True)):
        out["image_urls"] = [urljoin(url, v) for v in values]
    marker = s.get("product")
    is_product = bool(_select(tree, marker)) if marker else bool(out.get("name") and
                                                                  out.get("image_urls"))
    return is_product, out


def clean_images(urls: list[str], profile: SiteProfile | None = None,
                 max_px: int = MAX_RENDITION_PX) -> list[str]:
    """Drop furniture and duplicates, apply the profile's CDN size rewrites, and put the
    largest rendition of each image first."""
    out: list[str] = []
    for u in urls:
        if urlsplit(u).scheme not in ("http", "https") or JUNK_IMAGE.search(u):
            continue
        if profile is not None:
            u = profile.rewrite_image(u)
        if u not in out:
            out.append(u)
    return largest_first(out, max_px)


def declared_canonical(tree: Any, url: str) -> str | None:
    """The page's rel=canonical when it declares one on its own host (no fragment), else None."""
    for href in tree.xpath("//link[translate(@rel, 'CANONICAL', 'canonical')='canonical']"
                           "/@href"):
        cand = urljoin(url, href.strip())
        if urlsplit(cand).hostname == urlsplit(url).hostname:
            return cand.split("#")[0]
    return None


def page_noai(tree: Any) -> bool:
    """Whether meta robots forbids AI use of the page's images."""
    return any(NOAI.search(v) for v in opengraph.meta(opengraph.metas(tree), "robots", "googlebot"))


def _layers(text: str, tree: Any, url: str, urls: set[str], profile: SiteProfile | None
            ) -> tuple[list[tuple[str, bool, dict[str, Any]]], list[str]]:
    """Each markup layer's (name, says product, fields) in order, and the breadcrumb."""
    layers: list[tuple[str, bool, dict[str, Any]]] = []
    crumbs: list[str] = []
    for name, nodes in (("jsonld", _jsonld_nodes(tree)),
                        ("microdata", _microdata_nodes(text, tree, url)),
                        ("rdfa", _rdfa_nodes(text, url))):
        node = pick_product(nodes, urls)
        fields = schemaorg.product_fields(node, url) if node else {}
        if node and node.get(schemaorg.SHOWN_VARIANT):
            fields["variant"] = True
        layers.append((name, node is not None, fields))
        crumbs = crumbs or schemaorg.breadcrumb(nodes)
    layers.append(("opengraph", *opengraph.read(tree, url)))
    if profile is not None:
        layers.append(("profile", *_profile(tree, url, profile)))
    return layers, crumbs


#: Where each layer's images come from, as ``image_candidates`` names it.
IMAGE_SOURCE = {"opengraph": "og", "fallback": "gallery"}


def extract_product(html: str | bytes, url: str, profile: SiteProfile | None = None,
                    tree: Any = None) -> Product | None:
    """The product a page describes, or None when it is no product page.

    Markup layers first; the generic fallback decides only where no layer says "product"
    and fills only the fields no layer gave.
    """
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    tree = parse_html(text) if tree is None else tree
    declared = declared_canonical(tree, url)
    canonical = declared or url.split("#")[0]
    urls = {url.split("#")[0], canonical}
    layers, crumbs = _layers(text, tree, url, urls, profile)
    if not any(is_prod for _, is_prod, _ in layers) and tree.find(".//h1") is None:
        return None  # the generic reader needs a title: a listing or page without one is no product
    markup: dict[str, Any] = {}
    for *_, fields in layers:
        for key, value in fields.items():
            if value not in (None, "", []):
                markup.setdefault(key, value)
    if any(is_prod for _, is_prod, _ in layers) and not fallback.may_correct(text, url, markup, tree):
        # Full markup the page cannot correct: only the gallery's pictures (packshot candidates).
        layers.append(("fallback", False, {"image_urls": fallback.dom_images(tree, url)}))
    else:
        decide = not any(is_prod for _, is_prod, _ in layers)
        layers.append(("fallback", *fallback.extract(tree, url, decide)))
    extractor = next((name for name, is_prod, _ in layers if is_prod), None)
    if extractor is None:
        return None

    product = Product(url=url, canonical_url=canonical, extractor=extractor,
                      noai=page_noai(tree))
    if declared:  # the page names its canonical URL: it wins over pages of the same sku that do not
        product.sources["canonical_url"] = "link"
    images: list[str] = []
    for name, _, fields in layers:
        for fld in FIELDS:
            if getattr(product, fld) is None and fields.get(fld) not in (None, ""):
                setattr(product, fld, fields[fld])
                product.sources[fld] = name
        source = IMAGE_SOURCE.get(name, name)
        product.image_candidates += [{"url": u, "source": source,
                                      "variant": bool(fields.get("variant"))}
                                     for u in fields.get("image_urls", [])]
        if fields.get("image_urls") and name != "fallback":
            product.sources.setdefault("image_urls", name)
            images.extend(fields["image_urls"])
    shown = layers[-1][2].get("sku")
    if shown and product.sources.get("sku") != "fallback" and product.sku != shown:
        # The reference the page shows under a label ("Product code - 123") is the
        # product's; markup often carries a variant's or an internal id.
        product.sku, product.sources["sku"] = shown, "fallback"
    generic = layers[-1][2]
    if (product.price in generic.get("was_prices", ()) and generic.get("price") and
            product.sources.get("price") != "fallback" and generic["price"] != product.price):
        # Markup's price is shown struck through or as the old price: the sale price the
        # page shows is what the buyer pays.
        product.price, product.sources["price"] = generic["price"], "fallback"
    if product.sku is None and (plain := layers[-1][2].get("url_sku") or pagewords.image_id(
            url, images or layers[-1][2].get("image_urls", []))):
        # No reference in markup or under a label: the page's URL names the product
        # by an id the page also shows, or files its pictures under.
        product.sku, product.sources["sku"] = plain, "url"
    if (product.sources.get("price") == "fallback" and product.availability == "OutOfStock"
            and product.extractor == "fallback"):
        # A sold-out page without markup shows other products' prices, not its own.
        product.price = None
        product.sources.pop("price")
    if (product.availability == "OutOfStock" and product.sources.get("availability") !=
            "fallback" and fallback.sells_now(tree)):
        # Markup says sold out, the product's box shows a buy button the buyer can press
        # and no notice: the page sells it (markup is often a cached or first size's stock).
        product.availability, product.sources["availability"] = "InStock", "fallback"
    if product.availability is None and product.price is not None:
        # A price on show and no sold-out notice: the shop sells it now.
        product.availability, product.sources["availability"] = "InStock", "fallback"
    if product.brand is None and (brand := fallback.labelled_brand(tree)):
        product.brand, product.sources["brand"] = brand, "fallback"
    if crumbs and product.category is None:
        path = [c for c in crumbs if c != product.name and c.lower() != "home"]
        if path:
            product.category = " > ".join(path)
            product.sources["category"] = "breadcrumb"
    if not clean_images(images, profile):
        images = layers[-1][2].get("image_urls", [])
        if images:
            product.sources["image_urls"] = "dom"
    product.image_urls = clean_images(images, profile)
    keep = set(clean_images([c["url"] for c in product.image_candidates], profile))
    product.image_candidates = [c for c in product.image_candidates if c["url"] in keep]
    if product.currency:
        product.currency = schemaorg.currency_code(product.currency) or product.currency.upper()
        if product.sources.get("currency") not in MARKUP_CURRENCY:
            product.currency = local_currency(product.currency, canonical)
    return product


#: Layers whose currency is an ISO code the page states, never a symbol read from text.
MARKUP_CURRENCY = frozenset({"jsonld", "microdata", "rdfa", "opengraph"})
#: Countries (by the shop's top-level domain) whose "$" or "¥" is their own currency.
DOLLAR_TLDS = {"ar": "ARS", "cl": "CLP", "mx": "MXN", "co": "COP", "uy": "UYU", "au": "AUD",
               "ca": "CAD", "nz": "NZD", "sg": "SGD", "hk": "HKD", "tw": "TWD"}
YEN_TLDS = {"cn": "CNY"}


def local_currency(code: str, url: str) -> str:
    """``code`` read from a "$" or "¥" sign, made the shop's own currency where its domain
    names a country that writes its currency so (a "$" in Argentina is a peso)."""
    tld = (urlsplit(url).hostname or "").rsplit(".", 1)[-1].lower()
    table = DOLLAR_TLDS if code == "USD" else YEN_TLDS if code == "JPY" else {}
    return table.get(tld, code)


def read_page(path: str | Path) -> str:
    """A saved page's text, decoded by its BOM, HTTP-equiv or meta charset (else UTF-8)."""
    from w3lib.encoding import html_to_unicode

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise GarmentError(f"cannot read page {path}: {exc.strerror or exc}; pass a saved "
                           "HTML file") from None
    return html_to_unicode(None, data)[1]


#: The keys of ``extract_pages``' answers, in order.
PAGE_KEYS = ("url", "name", "sku", "brand", "price", "currency", "availability", "category",
             "image_url", "image_urls", "sources")


def extract_pages(paths: list[str | Path], url: str | None = None,
                  site: str | Path | None = None) -> list[dict[str, Any]]:
    """Extract saved pages offline: one dict per page with ``PAGE_KEYS`` plus ``file``,
    ``product`` (whether it is a product page), ``extractor`` and ``image_candidates``.

    ``url`` is the address the pages were saved from (links and images resolve against
    it); without it, a page's own canonical link or og:url, else its file URI.
    ``site`` is a site profile (TOML) applied after the markup layers.
    """
    profile = load_profile(site) if site else None
    out = []
    for path in paths:
        text = read_page(path)
        tree = parse_html(text)
        page_url = url or _own_url(tree) or Path(path).resolve().as_uri()
        product = extract_product(text, page_url, profile, tree=tree)
        row: dict[str, Any] = {"file": str(path), **dict.fromkeys(PAGE_KEYS),
                               "url": page_url, "product": product is not None}
        if product is not None:
            d = product.as_dict()
            row.update({k: d.get(k) for k in PAGE_KEYS if k in d})
            row.update(url=product.canonical_url, extractor=product.extractor,
                       image_url=product.image_urls[0] if product.image_urls else None,
                       image_candidates=product.image_candidates)
        else:
            row.update(image_urls=[], sources={})
        out.append(row)
    return out


def _own_url(tree: Any) -> str | None:
    for href in tree.xpath("//link[translate(@rel, 'CANONICAL', 'canonical')='canonical']"
                           "/@href") + opengraph.meta(opengraph.metas(tree), "og:url"):
        if href.strip().startswith(("http://", "https://")):
            return str(href.strip())
    return None


def page_links(tree: Any, url: str, deny: list[re.Pattern[str]] | None = None) -> list[str]:
    """Absolute http(s) links of <a>/<area> elements, without fragments, duplicates,
    file downloads (images, documents, media) or ``deny`` matches, in page order."""
    out: dict[str, None] = {}
    base = (tree.xpath("//base/@href") or [url])[0]
    parts = urlsplit(base)
    origin = f"{parts.scheme}://{parts.netloc}/"
    for href in tree.xpath("//a/@href|//area/@href"):
        href = href.strip()
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
            continue
        # A root-relative link resolves the same on every page of the site: cache by origin.
        rooted = href.startswith("/") and not href.startswith("//")
        link = _resolve(origin if rooted else base, href)
        if link is None or (deny and any(rx.search(link) for rx in deny)):
            continue
        out[link] = None
    return list(out)


@functools.lru_cache(maxsize=1 << 16)
def _resolve(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base`` without its fragment; None for a file download
    or a non-http(s) link. Cached: a shop repeats its navigation on every page."""
    link = urljoin(base, href).split("#")[0]
    path = urlsplit(link).path.lower()
    ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    if ext in _ignored_extensions() or not link.startswith(("http://", "https://")):
        return None
    return link


@functools.cache
def _ignored_extensions() -> frozenset[str]:
    from scrapy.linkextractors import IGNORED_EXTENSIONS

    return frozenset(IGNORED_EXTENSIONS)


def pagination_urls(tree: Any, url: str, pattern: str | None = None) -> list[str]:
    """Links to a listing's other pages: rel=next, ?page=N / ?p=N, numbered pager links,
    or the profile's ``pattern``."""
    out: list[str] = []
    rx = re.compile(pattern) if pattern else None
    for el in tree.xpath("//link[@href]|//a[@href]"):
        href = urljoin(url, el.get("href").strip()).split("#")[0]
        rel = (el.get("rel") or "").lower().split()
        query = {k.lower() for k, v in parse_qsl(urlsplit(href).query) if v.isdigit()}
        is_page = "next" in rel or "prev" in rel or bool(query & PAGE_PARAMS) or (
            rx is not None and rx.search(href) is not None)
        if not is_page and el.tag == "a":
            label = (el.text or "").strip().lower()
            if label.isdigit() or label in {"next", "›", "»"}:
                is_page = any(PAGER.search(a.get("class") or "")
                              for a in el.iterancestors() if isinstance(a.tag, str))
        if is_page and href not in out and href != url:
            out.append(href)
    return out
