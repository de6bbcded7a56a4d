"""Scrape, site profiles: a TOML file of start URLs, selectors, pagination and CDN rewrites
for a shop whose markup the generic layers do not cover.

Example (every key optional)::

    name = "example-shop"
    start_urls = ["https://shop.example/women/"]
    pagination = "[?&]page=\\\\d+"            # regex: links matching it are listing pages
    deny = ["/gift-cards/"]                   # regexes: links never followed

    [selectors]                               # CSS, or XPath when starting with / or xpath:
    product = "div.product-detail"            # present only on product pages
    name = "h1.product-title"
    price = ".price .amount::text"
    currency = "meta[itemprop=priceCurrency]::attr(content)"
    sku = "[data-sku]::attr(data-sku)"
    brand = ".brand"
    category = "nav.breadcrumb a"             # every match, joined with ' > '
    description = ".description"
    image = "img.main-image::attr(src)"

    [[image_rewrite]]                         # CDN size parameters -> the large original
    pattern = "/w_\\\\d+/"
    replace = "/w_1200/"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from garment.errors import GarmentError

SELECTOR_KEYS = ("product", "name", "sku", "brand", "price", "currency", "category",
                 "description", "image")
TOP_KEYS = ("name", "start_urls", "pagination", "deny", "selectors", "image_rewrite")


@dataclass
class SiteProfile:
    """A shop's own extraction rules, used after the generic layers."""

    name: str = "profile"
    start_urls: list[str] = field(default_factory=list)
    selectors: dict[str, str] = field(default_factory=dict)
    pagination: str | None = None                # regex for listing-page links
    deny: list[str] = field(default_factory=list)  # regexes for links never followed
    image_rewrite: list[tuple[str, str]] = field(default_factory=list)

    def rewrite_image(self, url: str) -> str:
        for pattern, replace in self.image_rewrite:
            url = re.sub(pattern, replace, url)
        return url


def load_profile(path: str | Path) -> SiteProfile:
    """Read and validate a site profile; errors name the file, the key and the fix."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GarmentError(f"site profile {path} not found: pass an existing .toml file "
                           "to --site") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GarmentError(f"site profile {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise GarmentError(f"site profile {path}: unknown key(s) {', '.join(unknown)}; "
                           f"allowed: {', '.join(TOP_KEYS)}")
    selectors = raw.get("selectors", {})
    bad = sorted(set(selectors) - set(SELECTOR_KEYS))
    if bad:
        raise GarmentError(f"site profile {path}: unknown selector(s) {', '.join(bad)}; "
                           f"allowed: {', '.join(SELECTOR_KEYS)}")
    rewrites = []
    for i, rule in enumerate(raw.get("image_rewrite", [])):
        if not isinstance(rule, dict) or set(rule) != {"pattern", "replace"}:
            raise GarmentError(f"site profile {path}: image_rewrite #{i + 1} needs exactly "
                               "the keys pattern and replace")
        rewrites.append((str(rule["pattern"]), str(rule["replace"])))
    profile = SiteProfile(name=str(raw.get("name", path.stem)),
                          start_urls=[str(u) for u in raw.get("start_urls", [])],
                          selectors={k: str(v) for k, v in selectors.items()},
                          pagination=raw.get("pagination"),
                          deny=[str(d) for d in raw.get("deny", [])],
                          image_rewrite=rewrites)
    for what, rx in ([("pagination", profile.pagination)] if profile.pagination else []) + \
            [("deny", d) for d in profile.deny] + [("image_rewrite", p) for p, _ in rewrites]:
        try:
            re.compile(rx)
        except re.error as exc:
            raise GarmentError(f"site profile {path}: {what} {rx!r} is not a valid regular "
                               f"expression: {exc}") from None
    return profile
