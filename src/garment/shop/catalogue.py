"""Shop catalogue: the demo shop's products, from Fashion-MNIST's test set or a folder of photos."""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

#: Shop category name -> Fashion-MNIST label index; -1 for categories outside the ten classes.
SHOP_CATEGORIES: dict[str, int] = {
    "T-shirts & tops": 0,
    "Trousers": 1,
    "Pullovers": 2,
    "Dresses": 3,
    "Coats": 4,
    "Sandals": 5,
    "Shirts": 6,
    "Sneakers": 7,
    "Bags": 8,
    "Ankle boots": 9,
    "Accessories": -1,
    "Jewellery": -1,
    "Watches": -1,
    "Hats & caps": -1,
    "Belts": -1,
    "Scarves": -1,
    "Socks": -1,
    "Sunglasses": -1,
    "Ties": -1,
    "Wallets": -1,
    "Heels": -1,
}
#: The shop name of each Fashion-MNIST class, in label-index order.
CLASS_CATEGORIES: tuple[str, ...] = tuple(n for n, i in SHOP_CATEGORIES.items() if i >= 0)

DEPARTMENTS = ("Women", "Men", "Shoes", "Bags & accessories")
#: The only departments of a blind shop: as coarse as a shop's top menu, never a class.
BLIND_DEPARTMENTS = ("Women", "Men", "Footwear", "Accessories")
#: Price range (EUR) of every product of a blind shop: drawn per class, prices would tell it.
BLIND_PRICES = (9, 149)
#: Name of the one built-in product whose name is markup, for HTML-escaping tests.
SCRIPT_NAME = "<script>alert(1)</script> Tee"

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}

# Folder and label spellings -> shop category; keys are lower-case letters, singular.
_ALIASES: dict[str, str] = {
    "tshirt": "T-shirts & tops", "tshirttop": "T-shirts & tops", "tshirtstops": "T-shirts & tops",
    "tee": "T-shirts & tops", "top": "T-shirts & tops", "tshirtandtop": "T-shirts & tops",
    "tshirtstop": "T-shirts & tops",
    "trouser": "Trousers", "pant": "Trousers", "jean": "Trousers", "chino": "Trousers",
    "pullover": "Pullovers", "jumper": "Pullovers", "sweater": "Pullovers",
    "sweatshirt": "Pullovers", "hoodie": "Pullovers", "knitwear": "Pullovers",
    "dress": "Dresses", "coat": "Coats", "jacket": "Coats", "outerwear": "Coats",
    "sandal": "Sandals", "shirt": "Shirts", "blouse": "Shirts",
    "sneaker": "Sneakers", "trainer": "Sneakers",
    "bag": "Bags", "handbag": "Bags", "backpack": "Bags",
    "ankleboot": "Ankle boots", "boot": "Ankle boots",
    "other": "Accessories", "accessory": "Accessories", "accessorie": "Accessories",
    "hat": "Hats & caps", "cap": "Hats & caps", "sunglass": "Sunglasses", "scarve": "Scarves",
    "scarf": "Scarves", "heel": "Heels", "watch": "Watches", "jewelry": "Jewellery",
    "belt": "Belts", "sock": "Socks", "tie": "Ties", "wallet": "Wallets",
}


def _letters(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower().replace("&", "and"))


_ALIASES.update({_letters(name): name for name in SHOP_CATEGORIES})


def category_label(name: str) -> int | None:
    """Fashion-MNIST label index of a shop category (-1 outside the ten classes), None if unknown.

    Tolerant of spelling: "Ankle boots", "ankle_boot" and "ANKLE-BOOTS" all give 9.
    """
    category = canonical_category(name)
    return SHOP_CATEGORIES[category] if category else None


def canonical_category(name: str) -> str | None:
    """The shop category a folder or label name stands for ('ankle_boot' -> 'Ankle boots')."""
    key = _letters(name)
    # Singular and plural spellings: 'boots' -> 'boot', 'dresses' -> 'dress'.
    for candidate in (key, key[:-1] if key.endswith("s") else "", key[:-2] if key.endswith("es") else ""):
        if candidate in _ALIASES:
            return _ALIASES[candidate]
    return None


def slug(text: str) -> str:
    """URL-safe lower-case words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


def department_of(label: int | None, rnd: random.Random | None = None) -> str:
    """The department a category sits in; clothing goes to Women or Men when ``rnd`` is given."""
    if label in (5, 7, 9):
        return "Shoes"
    if label is None:
        return "More"
    if label in (8, -1):
        return "Bags & accessories"
    if rnd is None:
        return "Clothing"
    return "Women" if label == 3 or rnd.random() < 0.55 else "Men"


@dataclass(frozen=True)
class Product:
    """One product of the demo shop: what a crawler should find on its page (ground truth)."""

    id: str
    sku: str
    name: str
    brand: str
    description: str
    price: str  # decimal string, e.g. "29.95"
    currency: str
    colour: str
    category: str  # shop category name, the last breadcrumb item (a blind shop: the department)
    department: str
    label_index: int | None  # Fashion-MNIST class, -1 outside the ten, None if unknown
    url: str  # absolute page URL
    image_urls: tuple[str, ...]  # packshot first
    thumb_url: str
    markup: str  # structured data on its page: jsonld, microdata or opengraph
    fmnist_index: int | None = None  # index into the Fashion-MNIST test split
    image_path: Path | None = None  # original photo, in --images mode
    rgb: tuple[int, int, int] = (0, 0, 0)  # colour the Fashion-MNIST image is rendered in

    @property
    def path(self) -> str:
        """The page path, e.g. '/products/relaxed-linen-shirt-p00042.html'."""
        return "/" + self.url.split("/", 3)[3]


# (adjectives, materials, nouns, description sentence, price range in EUR) per class.
_WORDS: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str, tuple[int, int]], ...] = (
    (("Relaxed", "Slim-fit", "Oversized", "Boxy", "Ribbed", "Essential"),
     ("cotton", "jersey", "organic cotton", "linen-blend", "slub"),
     ("T-shirt", "tee", "top", "vest top", "crop top"), "A wardrobe staple with a round neckline.",
     (9, 39)),
    (("Tapered", "Straight-leg", "Wide-leg", "Pleated", "Slim", "High-waisted"),
     ("twill", "denim", "wool-blend", "linen", "cotton"),
     ("trousers", "chinos", "jeans", "joggers", "cargo trousers"), "Zip fly and side pockets.",
     (29, 89)),
    (("Chunky", "Fine-knit", "Cable-knit", "Relaxed", "Oversized", "Crew-neck"),
     ("merino", "wool-blend", "cashmere-blend", "cotton", "lambswool"),
     ("jumper", "sweater", "sweatshirt", "roll-neck jumper"), "Long sleeves and ribbed trims.",
     (29, 99)),
    (("Flowing", "Fitted", "Tiered", "Pleated", "Belted", "Sleeveless"),
     ("satin", "crepe", "viscose", "linen", "jersey"),
     ("dress", "midi dress", "maxi dress", "shirt dress", "wrap dress"), "A flattering, easy fit.",
     (29, 129)),
    (("Double-breasted", "Hooded", "Padded", "Tailored", "Longline", "Water-repellent"),
     ("wool-blend", "twill", "quilted", "cotton-canvas"),
     ("coat", "parka", "trench coat", "jacket", "puffer jacket"), "Fully lined, with deep pockets.",
     (79, 249)),
    (("Flat", "Strappy", "Platform", "Woven", "Buckled"),
     ("leather", "suede", "rubber", "raffia"),
     ("sandals", "slides", "strappy sandals", "flip-flops"), "Cushioned footbed for all-day wear.",
     (19, 79)),
    (("Relaxed", "Slim-fit", "Button-down", "Short-sleeved", "Striped", "Cuban-collar"),
     ("linen", "poplin", "cotton", "flannel", "chambray"),
     ("shirt", "Oxford shirt", "blouse", "overshirt"), "Button front and a classic collar.",
     (24, 79)),
    (("Retro", "Chunky", "Minimal", "Lightweight", "Court"),
     ("leather", "canvas", "suede", "mesh", "knit"),
     ("sneakers", "trainers", "running shoes", "low-tops"), "Lace-up front and a padded collar.",
     (39, 149)),
    (("Structured", "Slouchy", "Mini", "Large", "Quilted"),
     ("leather", "canvas", "nylon", "suede", "faux-leather"),
     ("tote bag", "shoulder bag", "backpack", "crossbody bag", "handbag"),
     "Zip closure and an inner pocket.", (24, 199)),
    (("Chunky", "Pointed", "Block-heel", "Lug-sole", "Classic"),
     ("leather", "suede", "nubuck"),
     ("ankle boots", "Chelsea boots", "lace-up boots", "heeled boots"),
     "Pull-on loop at the back and a grippy sole.", (59, 189)),
)
_BRANDS = ("Northvale", "Maison Lore", "Kestrel & Co", "Atelier Nord", "Fjell", "Oak & Ash",
           "Lumen Studio", "Marlow", "Solenne", "Hartwell")
#: Plausible garment colours: name -> RGB, from near-black to pale.
COLOURS: dict[str, tuple[int, int, int]] = {
    "Black": (28, 28, 30), "Navy": (34, 44, 78), "Grey": (130, 130, 134),
    "Beige": (206, 186, 156), "Camel": (184, 134, 84), "Olive": (96, 100, 58),
    "Burgundy": (112, 32, 44), "Red": (184, 36, 40), "Denim blue": (72, 98, 136),
    "Light pink": (228, 168, 178), "Forest green": (38, 82, 56), "Brown": (104, 68, 42),
    "Mustard": (204, 160, 44), "Cream": (238, 230, 212), "Khaki": (150, 140, 100),
    "Sky blue": (124, 170, 214),
}
_CARE = ("Machine wash at 30°C.", "Made from responsibly sourced materials.",
         "Regular fit.", "The model is 185 cm tall and wears size M.", "Imported.")


def _price(rnd: random.Random, low: int, high: int) -> str:
    return f"{rnd.randint(low, high)}.{rnd.choice(('95', '99', '00'))}"


def _markup(rnd: random.Random, markup: str) -> str:
    if markup != "mixed":
        return markup
    roll = rnd.random()
    return "jsonld" if roll < 0.7 else "microdata" if roll < 0.9 else "opengraph"


def _urls(page: str, image: str, name: str, pid: str, sku: str, suffix: str, n_images: int):
    url = f"{page}products/{slug(name)}-{pid}.html"
    images = tuple(f"{image}img/p/{sku}-{k}{suffix if k == 1 else '.jpg'}"
                   for k in range(1, n_images + 1))
    return url, images, f"{image}img/p/{sku}-1-small.jpg"


def fmnist_products(labels, n: int, seed: int, page: str, image: str, markup: str) -> list[Product]:
    """``n`` products drawn from Fashion-MNIST test labels, classes taken in turn so each
    category gets about n/10; everything follows from ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order = rng.permutation(10)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in range(10)]
    rnd = random.Random(f"garment-shop:{seed}")
    skus = rnd.sample(range(1_000_000, 9_999_999), n)
    named_script = False
    products = []
    for i in range(n):
        label = int(order[i % 10])
        adjectives, materials, nouns, sentence, (low, high) = _WORDS[label]
        words = [rnd.choice(adjectives)] if rnd.random() < 0.8 else []
        name = " ".join(words + [rnd.choice(materials), rnd.choice(nouns)])
        name = name[0].upper() + name[1:]
        if label == 0 and not named_script:
            name, named_script = SCRIPT_NAME, True
        colour = rnd.choice(list(COLOURS))
        pid, sku = f"p{i:05d}", f"FH{skus[i]}"
        url, images, thumb = _urls(page, image, name, pid, sku, ".jpg", 3)
        description = " ".join([f"{name} in {colour.lower()}.", sentence, *rnd.sample(_CARE, 2)])
        products.append(Product(
            id=pid, sku=sku, name=name, brand=rnd.choice(_BRANDS), description=description,
            price=_price(rnd, low, high), currency="EUR", colour=colour,
            category=CLASS_CATEGORIES[label], department=department_of(label, rnd),
            label_index=label, url=url, image_urls=images, thumb_url=thumb,
            markup="jsonld" if name == SCRIPT_NAME else _markup(rnd, markup),
            fmnist_index=int(pools[label][i // 10]), rgb=COLOURS[colour],
        ))
    return products


# (photo, category, department or None, product text) of one photo in --images mode.
_Entry = tuple[Path, str, str | None, str]


def _folder_entries(root: Path) -> list[_Entry]:
    """An entry for every photo under ``root``."""
    entries: list[_Entry] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        parts = path.relative_to(root).parts[:-1]
        folder = parts[-1] if parts else "New in"  # no folder, no category to trust
        category = canonical_category(folder) or folder.replace("_", " ").strip().capitalize()
        department = parts[0].replace("_", " ").strip().capitalize() if len(parts) > 1 else None
        entries.append((path, category, department, path.stem.replace("_", " ")))
    return entries


def _csv_entries(root: Path, table: Path) -> list[_Entry]:
    """Entries from a labels.csv (file, label, product_text, ... columns)."""
    entries: list[_Entry] = []
    with table.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = root / row["file"]
            if not path.is_file():
                continue
            label = row.get("label") or "other"
            category = canonical_category(label) or label.replace("_", " ").capitalize()
            text = row.get("product_text") or path.stem
            entries.append((path, category, None, text))
    return entries


def folder_products(root: Path, seed: int, page: str, image: str, markup: str) -> list[Product]:
    """Every photo under ``root`` as a product: subfolders give the category (and, two levels
    deep, the department); a labels.csv in the realphotos format gives labels and names."""
    table = root / "labels.csv"
    entries = _csv_entries(root, table) if table.is_file() else _folder_entries(root)
    rnd = random.Random(f"garment-shop:{seed}")
    skus = rnd.sample(range(1_000_000, 9_999_999), len(entries))
    products = []
    for i, (path, category, department, text) in enumerate(entries):
        name, _, rest = text.partition(" | ")
        name = name.strip() or path.stem
        label = SHOP_CATEGORIES.get(category)
        low, high = _WORDS[label][4] if label is not None and label >= 0 else (9, 59)
        pid, sku = f"p{i:05d}", f"FH{skus[i]}"
        url, images, thumb = _urls(page, image, name, pid, sku, path.suffix.lower(), 2)
        products.append(Product(
            id=pid, sku=sku, name=name, brand=rnd.choice(_BRANDS),
            description=rest.strip() or f"{name}.", price=_price(rnd, low, high),
            currency="EUR", colour="", category=category,
            department=department or department_of(label), label_index=label, url=url,
            image_urls=images, thumb_url=thumb, markup=_markup(rnd, markup), image_path=path,
        ))
    return products


# Words by which a product's own name says who it is for ("Nike Men Grey Jacket", "Women's
# Parka"); \b keeps "men" from matching inside "women" or "Menswear".
_FOR_WOMEN = re.compile(r"\b(women|woman|womens|ladies|lady)\b", re.IGNORECASE)
_FOR_MEN = re.compile(r"\b(men|man|mens)\b", re.IGNORECASE)


def blind_department(label: int | None, name: str, rnd: random.Random) -> str:
    """The department of a product in a blind shop, one of ``BLIND_DEPARTMENTS``.

    The only thing taken from the true class is this coarse split: Footwear for sandals,
    sneakers and ankle boots; Accessories for bags and everything outside the ten classes
    ("other"); clothing (and products of an unknown category) go to Women or Men as the name's
    own words say ("Men", "Women", "Ladies"), else by a seeded coin toss that does not depend
    on the class (so no class, not even dresses, leans to one side).
    """
    if label in (5, 7, 9):
        return "Footwear"
    if label in (8, -1):
        return "Accessories"
    women, men = bool(_FOR_WOMEN.search(name)), bool(_FOR_MEN.search(name))
    if women != men:
        return "Women" if women else "Men"
    return "Women" if rnd.random() < 0.5 else "Men"


def blind_products(products: list[Product], seed: int, page: str, image: str) -> list[Product]:
    """``products`` as a blind shop sells them: nothing on their pages names their class.

    The order is shuffled and ids are given anew (the catalogue is built class by class, and
    consecutive ids would group a class); the category (the last breadcrumb item) is the
    coarse department of ``blind_department``; prices come from one range for all classes.
    Names, descriptions, SKUs and image URLs (made from the SKU) are kept, and so is
    ``label_index``: the shop knows the truth, its pages never show it.
    """
    rnd = random.Random(f"garment-shop-blind:{seed}")
    order = list(products)
    rnd.shuffle(order)
    blind = []
    for i, p in enumerate(order):
        department = blind_department(p.label_index, p.name, rnd)
        pid = f"p{i:05d}"
        suffix = Path(p.image_urls[0]).suffix
        url, images, thumb = _urls(page, image, p.name, pid, p.sku, suffix, len(p.image_urls))
        blind.append(replace(p, id=pid, url=url, image_urls=images, thumb_url=thumb,
                             category=department, department=department,
                             price=_price(rnd, *BLIND_PRICES)))
    return blind
