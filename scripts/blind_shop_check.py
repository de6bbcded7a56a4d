"""Blind demo shop check: does any page name a product's class outside the retailer's own text?

Serves a folder of photos (with its labels.csv) as a blind shop, fetches the home page,
robots.txt, the sitemap, every page of every department listing and every product page, and
counts the shop's category and class-folder words in them: all of them, and those left once
every product's name and description (what the retailer wrote, which may well name the class)
and the product URLs (made from the name) are taken out. The second count must be 0.

    python scripts/blind_shop_check.py ../shared/realphotos-dev [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import html
import re
import urllib.error
import urllib.request
from pathlib import Path

from garment.shop import SHOP_CATEGORIES, ShopConfig, start_shop
from garment.shop.catalogue import BLIND_DEPARTMENTS, slug


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read().decode("utf-8")
    except urllib.error.HTTPError:
        return None  # past a department listing's last page


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", type=Path, help="photo folder with a labels.csv")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    # "Accessories" is a blind department: the one category word a blind shop may show.
    words = {"ankle_boot", "tshirt_top", "product_type_name"}
    words |= {c.lower() for c in SHOP_CATEGORIES if c not in BLIND_DEPARTMENTS}
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)),
                         re.IGNORECASE)
    with start_shop(ShopConfig(images=args.images, blind=True, seed=args.seed)) as shop:
        own = sorted({t for p in shop.products for t in (p.name, p.description)},
                     key=len, reverse=True)
        per_page = shop.config.per_page
        last = -(-len(shop.products) // per_page)
        urls = [shop.url, shop.url + "robots.txt", shop.url + "sitemap.xml"]
        urls += [f"{shop.url}{slug(d)}/?page={n}" for d in BLIND_DEPARTMENTS
                 for n in range(1, last + 1)]
        urls += [p.url for p in shop.products]
        everywhere: collections.Counter[str] = collections.Counter()
        outside: collections.Counter[str] = collections.Counter()
        pages = 0
        for url in urls:
            text = _get(url)
            if text is None:
                continue
            pages += 1
            # JSON-LD escapes '&' as \u0026; unescaped, names match the retailer's text.
            text = html.unescape(text).replace("\\u0026", "&")
            everywhere.update(m.lower() for m in pattern.findall(text))
            text = re.sub(r"/products/[^\"<]+", "", text)
            for retailer_text in own:
                text = text.replace(retailer_text, "")
            outside.update(m.lower() for m in pattern.findall(text))
        departments = collections.Counter(p.department for p in shop.products)
    print(f"{len(shop.products)} products, {pages} pages fetched")
    print(f"departments: {dict(departments.most_common())}")
    print(f"class words anywhere: {sum(everywhere.values())}; outside the retailers' names "
          f"and descriptions: {sum(outside.values())} {dict(outside)}")


if __name__ == "__main__":
    main()
