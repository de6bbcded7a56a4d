"""Text labels (garment.labels.text): a product's words -> class, "other" or no label, with evidence."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from garment import CLASSES, OTHER, OTHER_INDEX
from garment.errors import GarmentError
from garment.labels.text import TextLabel, TextLabeller

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEV = SHARED / "realphotos-dev" / "labels.csv"


@pytest.fixture(scope="module")
def tl() -> TextLabeller:
    return TextLabeller()


@pytest.mark.parametrize(("name", "expected"), [
    # English, German, French, Spanish, Italian, Dutch, Portuguese
    ("Nike Men Grey Jacket", "Coat"), ("Curtis MidCut Sneaker", "Sneaker"), ("Twister dress", "Dress"),
    ("Kleid", "Dress"), ("Hose", "Trouser"), ("Turnschuhe", "Sneaker"), ("robe", "Dress"),
    ("pantalon", "Trouser"), ("vestido", "Dress"), ("zapatillas", "Sneaker"), ("gonna", OTHER),
    ("jurk", "Dress"), ("Pantalón", "Trouser"), ("Chaussettes", OTHER), ("borsa", "Bag"),
    ("camisa", "Shirt"), ("Stiefeletten", "Ankle boot"), ("Sandalias", "Sandal"), ("Rugzak", "Bag"),
    # compounds, by their head
    ("Sommerkleid", "Dress"), ("Winterjacke", "Coat"), ("Laufschuhe", "Sneaker"), ("zomerjurk", "Dress"),
    ("Strickjacke", "Pullover"), ("Strumpfhose", OTHER), ("Handschuhe", OTHER), ("Brieftasche", OTHER),
    ("Umstandskleid in Wickeloptik", "Dress"), ("spijkerbroek", "Trouser"),
    # plurals
    ("Dresses", "Dress"), ("Kleider", "Dress"), ("Jacken", "Coat"), ("pantalones", "Trouser"),
    ("borse", "Bag"), ("jurken", "Dress"), ("camisetas", "T-shirt/top"), ("Manteaux", "Coat"),
    ("Hoodies", "Pullover"), ("Watches", OTHER),
    # phrases beat words, head nouns beat modifiers
    ("shirt dress", "Dress"), ("Boot-cut jeans", "Trouser"), ("Sneaker socks", OTHER),
    ("T-shirt dress", "Dress"), ("Dress shirt", "Shirt"), ("Bag charm", OTHER), ("Shoe bag", "Bag"),
    ("Robe chemise", "Dress"), ("Vestido camisero", "Dress"), ("Dress with belt", "Dress"),
    ("MAMA Robe avec ceinture à nouer", "Dress"), ("Short en jean", "Trouser"), ("Laptop bag", "Bag"),
    ("Petticoat", OTHER), ("Baggy jeans", "Trouser"), ("Chelsea boots", "Ankle boot"),
    ("Tie-dye T-shirt", "T-shirt/top"), ("Football boots", "Sneaker"), ("Calvin Klein Jeans belt", OTHER),
    ("Flip-flops", "Sandal"), ("Tank top", "T-shirt/top"), ("Swim shorts", OTHER), ("Heeled sandals", "Sandal"),
])
def test_names(tl: TextLabeller, name: str, expected: str) -> None:
    got = tl.label(name=name)
    assert got.label == expected, got.evidence()
    assert got.field == "name"
    assert got.label_index == (OTHER_INDEX if expected == OTHER else CLASSES.index(expected))
    assert 0 < got.confidence <= 1


@pytest.mark.parametrize("name", ["Jacket potato", "Address book", "Classic", "Shoes & Bags", "Top and shorts",
                                  "Calvin Klein Jeans classic", ""])
def test_no_label(tl: TextLabeller, name: str) -> None:
    got = tl.label(name=name)
    assert got.label is None and got.label_index is None and got.confidence == 0 and got.field is None
    assert got.evidence().startswith("no label: ")


def test_word_boundaries(tl: TextLabeller) -> None:
    assert tl.label(name="Baggy fit").label is None          # no "bag" in "baggy"
    assert tl.label(name="Addressed").label is None          # no "dress" in "address"
    assert tl.label(name="Topshop").label is None            # a shop, not a top


def test_sources_in_order_of_trust(tl: TextLabeller) -> None:
    got = tl.label(category="Women > Shoes > Ankle boots", name="Sneaker boot", url="https://s.example/p/1")
    assert (got.label, got.field, got.words) == ("Ankle boot", "category", ("Ankle boots",))
    # the last crumb that names a class decides, a generic one is passed over
    assert tl.label(category="Women > Dresses > Sale").label == "Dress"
    # agreement raises the confidence, disagreement lowers it
    alone = tl.label(name="Summer dress").confidence
    assert tl.label(name="Summer dress", description="Short dress in cotton.").confidence > alone
    assert tl.label(name="Summer dress", description="Short skirt in cotton.").confidence < alone


def test_description_is_trusted_least(tl: TextLabeller) -> None:
    got = tl.label(description="Ankle boots with pointed toes. Wear them with a dress and a bag.")
    assert (got.label, got.field) == ("Ankle boot", "description")
    assert got.confidence <= 0.6
    # only its head counts: "wear it with sneakers" is not what the product is
    assert tl.label(name="Dress", description="Wear it with sneakers.").label == "Dress"
    assert tl.label(description="Wear it with sneakers.").label is None


def test_url_path_not_host(tl: TextLabeller) -> None:
    assert tl.label(url="https://www.dress-shop.example/p/1234").label is None
    got = tl.label(url="https://shop.example/women/cardigans/zipped-through-cardigan-12185160.html?cgid=dress")
    assert (got.label, got.field) == ("Pullover", "url")


def test_language_decides_a_word_with_two_readings(tl: TextLabeller) -> None:
    assert tl.label(name="Shirt").label == "Shirt"
    german = tl.label(name="Shirt", description="Shirt mit Rundhals-Ausschnitt und langen Ärmeln für die Freizeit.")
    assert german.label == "T-shirt/top"


def test_contradiction_gives_no_label(tl: TextLabeller) -> None:
    got = tl.label(name="Leather boots", url="https://s.example/sneakers/x", description="Canvas sneakers.")
    assert got.label == "Ankle boot" and got.disagree
    got = tl.label(category="Bags", name="Wallet", url="https://s.example/wallets/x", description="A wallet.")
    assert got.label is None and got.note.startswith("contradictory: category 'Bags' -> Bag; name 'Wallet'")


def test_evidence_and_dict(tl: TextLabeller) -> None:
    got = tl.label(name="Sommerkleid")
    assert got.evidence() == "name: 'Sommerkleid' -> Dress"
    got = tl.label(name="Sommerkleid", url="https://s.example/damen/kleider/sommerkleid-1",
                   description="Sneakers sold separately.")
    assert got.evidence() == ("name: 'Sommerkleid' -> Dress; url agrees; "
                              "description ('Sneakers' -> Sneaker) disagrees")
    d = got.as_dict()
    assert d["label"] == "Dress" and d["label_index"] == 3 and d["words"] == ["Sommerkleid"]
    assert d["evidence"] == got.evidence() and d["field"] == "name"
    assert isinstance(got, TextLabel)


def test_label_product(tl: TextLabeller) -> None:
    row = {"name": "Zip hoodie", "category": None, "brand": "X", "description": "Hoodie in sweatshirt fabric."}
    got = tl.label_product(row)
    assert got.label == "Pullover" and "description" in got.agree
    assert tl.label_product({}).evidence() == "no label: no text"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "labels.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_labels_map(tmp_path: Path, tl: TextLabeller) -> None:
    path = _write(tmp_path, '[categories]\n"Outerwear" = "Coat"\n"Shoes > Other" = "ankle_boot"\n'
                            '[keywords]\n"gilet" = "coat"\n"kimono" = "other"\n"top" = "none"\n')
    mapped = TextLabeller(path)
    assert mapped.version != tl.version and len(mapped.version) == 10
    got = mapped.label(category="Men > OUTERWEAR", name="Kimono")
    assert (got.label, got.field, got.source) == ("Coat", "map", "category")
    assert got.evidence().startswith("map (category): 'OUTERWEAR' -> Coat")
    assert mapped.label(name="Quilted gilets").label == "Coat"
    assert mapped.label(name="Silk kimono").label == OTHER
    assert mapped.label(name="Tank top").label == "T-shirt/top"   # the built-in phrase still matches
    assert mapped.label(name="Cropped top").label is None            # the user's "none": no evidence
    assert mapped.label(name="Sommerkleid").label == "Dress"         # the rest of the vocabulary stays
    assert tl.label(name="Gilet").label is None                      # the built-in leaves gilets alone


@pytest.mark.parametrize(("text", "message"), [
    ("[keywords]\n\"kimono\" = \"Kimono\"\n", "[keywords] 'kimono' = 'Kimono' is not a class; allowed: T-shirt/top"),
    ("[keywords]\n\"kimono\" = 3\n", "'kimono' = 3 is not a class"),
    ("[colours]\n\"red\" = \"Dress\"\n", "unknown entry 'colours'; allowed: the tables [categories]"),
    ("[keywords\n", "not valid TOML"),
    ("[keywords]\n\"--\" = \"Dress\"\n", "key '--' has no letters or digits"),
])
def test_bad_labels_map(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(GarmentError) as e:
        TextLabeller(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_labels_map(tmp_path: Path) -> None:
    with pytest.raises(GarmentError, match="no such file"):
        TextLabeller(tmp_path / "nope.toml")


@pytest.mark.skipif(not DEV.is_file(), reason=f"{DEV} not present (the real-photo development set lives "
                    "outside the repository)")
def test_dev_texts_floors(tl: TextLabeller) -> None:
    """Coverage and precision on the dev photos' own texts (the blind shop shows name + description)."""
    with DEV.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    snake = {"tshirt_top": "T-shirt/top", "ankle_boot": "Ankle boot", "other": OTHER}
    for use_description, min_coverage in ((False, 0.75), (True, 0.90)):
        labelled = right = 0
        for r in rows:
            truth = snake.get(r["label"], r["label"].capitalize())
            name, _, desc = r["product_text"].partition(" | ")
            got = tl.label(name=name, description=desc if use_description else None)
            labelled += got.label is not None
            right += got.label == truth
        assert labelled / len(rows) >= min_coverage, (use_description, labelled)
        assert right / labelled >= 0.97, (use_description, right, labelled)
