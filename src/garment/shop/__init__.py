"""Shop: a local demo fashion shop served over HTTP, for crawling, tests and benchmarks.

``catalogue`` makes the products (Fashion-MNIST test items or a photo folder), ``render``
their packshots, ``pages`` the HTML, robots.txt and sitemap, and ``server`` serves them on
127.0.0.1 (two host names, latency and faults)::

    with start_shop(ShopConfig(n_products=200)) as shop:
        print(shop.url, shop.products[0].url)
"""

from garment.shop.server import (
    CLASS_CATEGORIES,
    SCRIPT_NAME,
    SHOP_CATEGORIES,
    Hit,
    Product,
    Shop,
    ShopConfig,
    category_label,
    start_shop,
)

__all__ = ["CLASS_CATEGORIES", "SCRIPT_NAME", "SHOP_CATEGORIES", "Hit", "Product", "Shop",
           "ShopConfig", "category_label", "start_shop"]
