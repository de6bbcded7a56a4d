"""Shop pages: the demo shop's HTML (Jinja2), robots.txt and sitemap, routed by path."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from jinja2 import DictLoader, Environment
from markupsafe import Markup

from garment.shop.catalogue import (
    BLIND_DEPARTMENTS,
    DEPARTMENTS,
    SHOP_CATEGORIES,
    Product,
    slug,
)

SHOP_NAME = "Fernhill"
#: Paths robots.txt disallows; every page links into them.
DISALLOWED = ("/account/", "/cart/", "/search")
ACCOUNT_PAGES = {
    "/account/login": "Sign in", "/account/register": "Create an account",
    "/account/orders": "Your orders", "/account/wishlist": "Wishlist",
    "/cart/": "Your bag", "/cart/checkout": "Checkout",
}
INFO_PAGES = {
    "/about": ("About us", "Fernhill is a demo shop: a small catalogue of everyday clothing."),
    "/help/delivery": ("Delivery", "Standard delivery in 3-5 working days, free over EUR 50."),
    "/help/returns": ("Returns", "Return any item within 30 days, unworn and with its tags."),
}

_BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} | {{ shop_name }}</title>
{% if description %}<meta name="description" content="{{ description }}">{% endif +%}
{% if canonical %}<link rel="canonical" href="{{ canonical }}">{% endif +%}
{% if prev_url %}<link rel="prev" href="{{ prev_url }}">{% endif +%}
{% if next_url %}<link rel="next" href="{{ next_url }}">{% endif +%}
{% if noindex %}<meta name="robots" content="noindex, nofollow">{% endif +%}
<link rel="icon" type="image/png" href="{{ site }}favicon.png">
<meta property="og:site_name" content="{{ shop_name }}">
{% for key, value in og %}<meta property="{{ key }}" content="{{ value }}">
{% endfor %}{% for block in jsonld %}<script type="application/ld+json">{{ block }}</script>
{% endfor %}<style>
body{font-family:sans-serif;margin:0;color:#222}header,main,footer{padding:0 24px}
header{border-bottom:1px solid #ddd}.top{display:flex;gap:16px;align-items:center}
nav.menu ul{display:flex;gap:20px;list-style:none;padding:0}.grid{display:flex;flex-wrap:wrap;
gap:16px;list-style:none;padding:0}.card{width:150px}.card a{display:block;color:inherit}
.pager a,.pager span{margin:0 4px}.breadcrumb ol{display:flex;gap:8px;list-style:none;padding:0}
footer{border-top:1px solid #ddd;margin-top:40px;font-size:90%}
</style>
</head>
<body>
<header>
<div class="top">
<a class="logo" href="/"><img src="{{ site }}logo.png" alt="{{ shop_name }}" width="180" height="40"></a>
<form action="/search" method="get" role="search"><input name="q" placeholder="Search">
<button><img src="{{ site }}search.png" alt="Search" width="24" height="24"></button></form>
<a href="/account/login"><img src="{{ site }}account.png" alt="" width="24" height="24">Sign in</a>
<a href="/account/wishlist"><img src="{{ site }}heart.png" alt="" width="24" height="24">Wishlist</a>
<a href="/cart/"><img src="{{ site }}bag.png" alt="" width="24" height="24">Bag (0)</a>
</div>
<nav class="menu"><ul>
{% for dept in nav %}<li><a href="{{ dept.path }}">{{ dept.name }}</a><ul>
{% for cat in dept.categories %}<li><a href="{{ cat.path }}">{{ cat.name }}</a></li>
{% endfor %}</ul></li>
{% endfor %}</ul></nav>
</header>
<main>
{% if crumbs %}<nav class="breadcrumb" aria-label="Breadcrumb">
<ol{{ md('itemscope itemtype="https://schema.org/BreadcrumbList"') }}>
{% for name, path in crumbs %}
<li{{ md('itemprop="itemListElement" itemscope itemtype="https://schema.org/ListItem"') }}>
<a href="{{ path }}"{{ md('itemprop="item"') }}><span{{ md('itemprop="name"') }}>{{ name }}</span></a>
{%- if microdata %}<meta itemprop="position" content="{{ loop.index }}">{% endif %}</li>
{% endfor %}
</ol></nav>
{% endif %}
{% block main %}{% endblock %}
</main>
<footer>
<p><a href="/about">About us</a> | <a href="/help/delivery">Delivery</a> |
<a href="/help/returns">Returns</a> | <a href="/account/orders">Your orders</a></p>
<p>We accept <img src="{{ site }}card.png" alt="Card" width="24" height="24"> &middot;
&copy; {{ shop_name }}</p>
</footer>
</body>
</html>
"""

_CARDS = """{% macro cards(products) %}<ul class="grid">
{% for p in products %}
<li class="card"><a href="{{ p.path }}">
<img src="{{ p.thumb_url }}" alt="{{ p.name }}" width="150" height="200" loading="lazy">
<span class="name">{{ p.name }}</span></a><span class="brand">{{ p.brand }}</span>
<span class="price">&euro;{{ p.price }}</span></li>
{% endfor %}
</ul>{% endmacro %}"""

_PRODUCT = """{% extends "base.html" %}{% from "cards.html" import cards %}{% block main %}
<div class="product"{{ md('itemscope itemtype="https://schema.org/Product"') }}>
<div class="gallery"><img class="main" src="{{ p.image_urls[0] }}" alt="{{ p.name }}"
 width="300" height="400"{{ md('itemprop="image"') }}>
<ul class="views">
{% for url in p.image_urls %}
<li><a href="{{ url }}"><img src="{{ url }}" alt="{{ p.name }}, view {{ loop.index }}"
 width="60" height="80" loading="lazy"></a></li>
{% endfor %}
</ul></div>
<h1{{ md('itemprop="name"') }}>{{ p.name }}</h1>
<p class="brand"{{ md('itemprop="brand" itemscope itemtype="https://schema.org/Brand"') }}>
<span{{ md('itemprop="name"') }}>{{ p.brand }}</span></p>
<p class="price"{{ md('itemprop="offers" itemscope itemtype="https://schema.org/Offer"') }}>
{% if microdata %}<meta itemprop="priceCurrency" content="{{ p.currency }}">
<link itemprop="availability" href="https://schema.org/InStock">{% endif %}
&euro;<span{{ md('itemprop="price"') }}>{{ p.price }}</span></p>
{% if p.colour %}<p class="colour">Colour: {{ p.colour }}</p>{% endif +%}
<p class="description"{{ md('itemprop="description"') }}>{{ p.description }}</p>
<p class="sku">Art. no. <span{{ md('itemprop="sku"') }}>{{ p.sku }}</span></p>
<form action="/cart/add" method="post"><input type="hidden" name="sku" value="{{ p.sku }}">
<select name="size">{% for size in ("XS", "S", "M", "L", "XL") %}<option>{{ size }}</option>
{%- endfor %}</select>
<button>Add to bag</button></form>
<p><a href="/account/wishlist?add={{ p.sku }}">Save to wishlist</a></p>
</div>
<h2>You may also like</h2>{{ cards(related) }}{% endblock %}"""

_LISTING = """{% extends "base.html" %}{% from "cards.html" import cards %}{% block main %}
<h1>{{ title }}</h1><p class="count">{{ total }} products</p>
<p class="sort">Sort by: <a href="{{ path }}" rel="nofollow">Newest</a>
<a href="{{ path }}?sort=price_asc" rel="nofollow">Price: low to high</a>
<a href="{{ path }}?sort=price_desc" rel="nofollow">Price: high to low</a></p>
{{ cards(products) }}
<nav class="pager" aria-label="Pages">
{% if prev_url %}<a href="{{ prev_url }}" class="prev">Previous</a>{% endif %}
{% for n in pages %}
{% if n is none %}<span>&hellip;</span>
{% elif n == page %}<span class="current">{{ n }}</span>
{% else %}<a href="{{ page_link(n) }}">{{ n }}</a>
{% endif %}
{% endfor %}
{% if next_url %}<a href="{{ next_url }}" class="next">Next</a>{% endif %}
</nav>{% endblock %}"""

_TEMPLATES = {
    "base.html": _BASE,
    "cards.html": _CARDS,
    "product.html": _PRODUCT,
    "listing.html": _LISTING,
    "home.html": """{% extends "base.html" %}{% from "cards.html" import cards %}{% block main %}
<div class="hero"><img src="{{ site }}banner.jpg" alt="New season" width="960" height="300"></div>
<h1>New season, new favourites</h1>
<ul class="departments">{% for dept in nav %}<li><a href="{{ dept.path }}">{{ dept.name }}</a></li>
{% endfor %}</ul>
<h2>New in</h2>{{ cards(products) }}{% endblock %}""",
    "department.html": """{% extends "base.html" %}{% from "cards.html" import cards %}{% block main %}
<h1>{{ title }}</h1><ul class="categories">{% for cat in dept.categories %}
<li><a href="{{ cat.path }}">{{ cat.name }}</a> ({{ cat.count }})</li>{% endfor %}</ul>
<h2>Popular in {{ title }}</h2>{{ cards(products) }}{% endblock %}""",
    "text.html": """{% extends "base.html" %}{% from "cards.html" import cards %}{% block main %}
<h1>{{ title }}</h1><p>{{ text }}</p>{% if links %}<ul>{% for path, name in links %}
<li><a href="{{ path }}">{{ name }}</a></li>{% endfor %}</ul>{% endif %}
{% if products %}{{ cards(products) }}{% endif %}{% endblock %}""",
}


def jsonld(data: Any) -> Markup:
    """JSON for a <script> block: '<', '>' and '&' as \\u escapes, so no '</script>' can close it."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _page_numbers(page: int, last: int) -> list[int | None]:
    """Pager numbers: all when few, else first, last and two either side (None = gap)."""
    if last <= 9:
        return list(range(1, last + 1))
    keep = sorted({1, last, *range(max(1, page - 2), min(last, page + 2) + 1)})
    out: list[int | None] = []
    for n in keep:
        if out and n - (out[-1] or 0) > 1:
            out.append(None)
        out.append(n)
    return out


class Pages:
    """Renders every HTML page, robots.txt and sitemap.xml of one catalogue.

    ``blind``: products are listed by department only (``/women/``, no category pages or
    menu entries), and breadcrumbs end at the department.
    """

    def __init__(self, products: list[Product], page_base: str, image_base: str, per_page: int,
                 blind: bool = False):
        self.products = products
        self.page_base, self.per_page, self.blind = page_base, per_page, blind
        self.env = Environment(loader=DictLoader(_TEMPLATES), autoescape=True,
                               trim_blocks=True, lstrip_blocks=True)
        self.by_path = {p.path: p for p in products}
        known = BLIND_DEPARTMENTS if blind else DEPARTMENTS
        departments = [d for d in known if any(p.department == d for p in products)]
        departments += sorted({p.department for p in products} - set(departments))
        order = {name: i for i, name in enumerate(SHOP_CATEGORIES)}
        self.nav: list[dict[str, Any]] = []
        # Listing path -> (department, category or None for a department listing, products).
        self.listings: dict[str, tuple[str, str | None, list[Product]]] = {}
        for dept in departments:
            items = [p for p in products if p.department == dept]
            if blind:
                # One listing per department: category pages would group products by class.
                self.listings[f"/{slug(dept)}/"] = (dept, None, items)
                self.nav.append({"name": dept, "path": f"/{slug(dept)}/", "categories": []})
                continue
            cats = sorted({p.category for p in items}, key=lambda c: (order.get(c, 99), c))
            entry: dict[str, Any] = {"name": dept, "path": f"/{slug(dept)}/", "categories": []}
            for cat in cats:
                path = f"/{slug(dept)}/{slug(cat)}/"
                in_cat = [p for p in items if p.category == cat]
                self.listings[path] = (dept, cat, in_cat)
                entry["categories"].append({"name": cat, "path": path, "count": len(in_cat)})
            self.nav.append(entry)
        self.departments = {d["path"]: d for d in self.nav}
        self.site = f"{image_base}img/site/"
        self.common: dict[str, Any] = {"shop_name": SHOP_NAME, "site": self.site, "nav": self.nav,
                       "og": [], "jsonld": [], "crumbs": []}

    def _html(self, template: str, status: int = 200, **context: Any) -> Response:
        microdata = context.get("microdata", False)

        def md(attributes: str) -> Markup | str:
            # Microdata attributes, written only on pages whose markup is microdata.
            return Markup(" " + attributes) if microdata else ""

        body = self.env.get_template(template).render({**self.common, "md": md, **context})
        return Response(status, body.encode("utf-8"))

    def _crumbs(self, crumbs: list[tuple[str, str]]) -> Markup:
        return jsonld({
            "@context": "https://schema.org", "@type": "BreadcrumbList",
            "itemListElement": [{"@type": "ListItem", "position": i, "name": name,
                                 "item": self.page_base + path.lstrip("/")}
                                for i, (name, path) in enumerate(crumbs, 1)],
        })

    def route(self, path: str, query: dict[str, str]) -> Response:
        """The response for a GET of ``path`` (without query string) on the page host."""
        if path == "/":
            return self.home()
        if path == "/robots.txt":
            return self.robots()
        if path == "/sitemap.xml":
            return self.sitemap()
        if path in self.by_path:
            return self.product(self.by_path[path])
        if path in self.listings:
            return self.listing(path, query)
        if path in self.departments:
            return self.department(path)
        if path + "/" in self.listings or path + "/" in self.departments:
            return Response(301, b"", headers=(("Location", path + "/"),))
        if path in ACCOUNT_PAGES:
            return self.account(path)
        if path == "/search":
            return self.search(query.get("q", ""))
        if path in INFO_PAGES:
            title, text = INFO_PAGES[path]
            return self._html("text.html", title=title, text=text,
                              canonical=self.page_base + path.lstrip("/"))
        return self._html("text.html", 404, title="Page not found", noindex=True,
                          text="Sorry, we could not find that page.")

    def home(self) -> Response:
        org = jsonld({"@context": "https://schema.org", "@type": "Organization", "name": SHOP_NAME,
                      "url": self.page_base, "logo": self.site + "logo.png"})
        og = [("og:type", "website"), ("og:title", SHOP_NAME), ("og:url", self.page_base),
              ("og:image", self.site + "logo.png")]
        # A blind shop's home page names no class either, not even in passing.
        title = "New season" if self.blind else "Clothing, shoes and bags"
        return self._html("home.html", title=title, canonical=self.page_base,
                          og=og, jsonld=[org], products=self.products[:8],
                          description=f"Everyday {'fashion' if self.blind else title.lower()}.")

    def department(self, path: str) -> Response:
        dept = self.departments[path]
        items = [p for p in self.products if p.department == dept["name"]][:8]
        crumbs = [("Home", "/"), (dept["name"], path)]
        return self._html("department.html", title=dept["name"], dept=dept, products=items,
                          crumbs=crumbs, jsonld=[self._crumbs(crumbs)],
                          canonical=self.page_base + path.lstrip("/"))

    def listing(self, path: str, query: dict[str, str]) -> Response:
        dept, cat, items = self.listings[path]
        sort = query.get("sort", "")
        if sort in ("price_asc", "price_desc"):
            items = sorted(items, key=lambda p: float(p.price), reverse=sort == "price_desc")
        last = max(1, math.ceil(len(items) / self.per_page))
        page_text = query.get("page", "1")
        page = int(page_text) if page_text.isdigit() else 0
        if not 1 <= page <= last:
            return self._html("text.html", 404, title="Page not found", noindex=True,
                              text=f"{cat or dept} has {last} pages.")

        def page_link(n: int) -> str:
            params = ([f"sort={sort}"] if sort else []) + ([f"page={n}"] if n > 1 else [])
            return path + ("?" + "&".join(params) if params else "")

        absolute = self.page_base.rstrip("/")
        crumbs = [("Home", "/"), (dept, f"/{slug(dept)}/")] + ([(cat, path)] if cat else [])
        return self._html(
            "listing.html", title=f"{cat} - {dept}" if cat else dept, path=path, page=page, total=len(items),
            products=items[(page - 1) * self.per_page: page * self.per_page],
            pages=_page_numbers(page, last), page_link=page_link, crumbs=crumbs,
            jsonld=[self._crumbs(crumbs)],
            canonical=absolute + (f"{path}?page={page}" if page > 1 else path),
            prev_url=absolute + page_link(page - 1) if page > 1 else None,
            next_url=absolute + page_link(page + 1) if page < last else None,
        )

    def product(self, p: Product) -> Response:
        dept_path = f"/{slug(p.department)}/"
        crumbs = [("Home", "/"), (p.department, dept_path)]
        if not self.blind:
            crumbs.append((p.category, f"{dept_path}{slug(p.category)}/"))
        og = [("og:type", "product"), ("og:title", p.name), ("og:url", p.url),
              ("og:image", p.image_urls[0]), ("og:description", p.description),
              ("product:price:amount", p.price), ("product:price:currency", p.currency),
              ("product:brand", p.brand)]
        blocks = []
        if p.markup == "jsonld":
            blocks = [jsonld({
                "@context": "https://schema.org", "@type": "Product", "name": p.name,
                "sku": p.sku, "productID": p.id, "brand": {"@type": "Brand", "name": p.brand},
                "description": p.description, "image": list(p.image_urls), "url": p.url,
                **({"color": p.colour} if p.colour else {}),
                "offers": {"@type": "Offer", "price": p.price, "priceCurrency": p.currency,
                           "availability": "https://schema.org/InStock", "url": p.url},
            }), self._crumbs(crumbs)]
        siblings = self.listings[crumbs[-1][1]][2]
        at = siblings.index(p)
        related = [siblings[(at + k) % len(siblings)] for k in range(1, min(5, len(siblings)))]
        return self._html("product.html", title=p.name, p=p, og=og, jsonld=blocks,
                          crumbs=crumbs, canonical=p.url, related=related,
                          microdata=p.markup == "microdata", description=p.description)

    def account(self, path: str) -> Response:
        links = [(k, v) for k, v in ACCOUNT_PAGES.items() if k != path]
        products = self.products[-4:] if path == "/account/wishlist" else []
        return self._html("text.html", title=ACCOUNT_PAGES[path], noindex=True, links=links,
                          products=products, text="Sign in to see your account and bag.")

    def search(self, q: str) -> Response:
        hits = [p for p in self.products if q and q.lower() in p.name.lower()][: self.per_page]
        return self._html("text.html", title=f"Search: {q}", noindex=True, products=hits,
                          text=f"{len(hits)} results for \u201c{q}\u201d.")

    def robots(self) -> Response:
        lines = ["# Robots rules of the demo shop", "User-agent: *"]
        lines += [f"Disallow: {path}" for path in DISALLOWED]
        lines += ["", f"Sitemap: {self.page_base}sitemap.xml", ""]
        return Response(200, "\n".join(lines).encode(), "text/plain; charset=utf-8")

    def sitemap(self) -> Response:
        urls = "".join(f"<url><loc>{xml_escape(p.url)}</loc></url>\n" for p in self.products)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
                f"{urls}</urlset>\n")
        return Response(200, body.encode(), "application/xml")
