"""Report and catalogue classification on small catalogues built in the test (no crawl)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from garment import CLASSES, OTHER
from garment.catalogue_classify import classify_catalogue, model_id, model_snapshot
from garment.errors import GarmentError
from garment.export import export_rows
from garment.report import (
    ReportConfig,
    build_report,
    leaf_category,
    shop_agreement,
    thumbnail,
    write_report,
)
from garment.store import Catalogue, Prediction

EVIL = "<script>alert(1)</script> Tee"


def _product(n: int, name: str, category: str | None, url: str | None = None) -> dict:
    url = url or f"http://shop.test/p/{n}"
    return {"url": url, "canonical_url": url, "sku": f"S{n}", "name": name, "price": 10.0 + n,
            "currency": "EUR", "category": category, "image_urls": [], "extractor": "jsonld"}


@pytest.fixture
def catalogue(tmp_path: Path, make_photo: Callable[..., Path]) -> Path:
    """Eight products: six with packshots, one failed download, one without an image; a
    predictions set from model "m1" written by hand."""
    folder = tmp_path / "cat"
    specs = [  # name, breadcrumb, label, confidence
        (EVIL, "Men > T-shirts & tops", "T-shirt/top", 0.9),
        ("Wool coat", "Women > Coats", "Coat", 0.8),
        ("Linen coat", "Women > Coats", "Coat", 0.6),
        ("Denim jeans", "Men > Trousers", OTHER, 0.3),  # "other" on a garment: disagrees
        ("Silver ring", "Bags & accessories > Jewellery", OTHER, 0.2),  # agrees
        ("Mystery", None, "Bag", 0.5),  # no category: not counted
    ]
    with Catalogue.open(folder) as cat:
        run = cat.start_run({"start_urls": ["http://shop.test/"], "delay": 0.05})
        preds = []
        for n, (name, crumb, label, conf) in enumerate(specs):
            make_photo(folder / "images" / f"{n}.jpg", n, size=(300, 400))
            url = "javascript:alert(2)" if n == 1 else None
            _, iid = cat.save_product(_product(n, name, crumb, url),
                                      {"url": f"http://cdn.test/{n}.jpg", "status": "ok",
                                       "path": f"images/{n}.jpg", "width": 300, "height": 400},
                                      run)
            guess = CLASSES[3] if label == OTHER else label  # top class under "other": Dress
            preds.append(Prediction(iid or 0, label, -1 if label == OTHER else CLASSES.index(label),
                                    conf, [(guess, conf), ("Shirt", 0.05), ("Bag", 0.01)]))
        cat.save_product(_product(6, "Broken <b>bag</b>", "Bags"),
                         {"url": "http://cdn.test/6.jpg", "status": "too_small",
                          "error": "60x80 < 100 px"}, run)
        cat.save_product(_product(7, "No picture", "Bags"), None, run)
        cat.record_error(run, "http://shop.test/p/9", "page", "http_error", 500, "<i>boom</i>")
        cat.finish_run(run, {"pages": 9, "products": 8, "images": {"ok": 6, "too_small": 1},
                             "errors": {"http_error": 1}, "elapsed_s": 1.5,
                             "finish_reason": "finished"})
        cat.record_predictions("m1", preds)
    return folder


def test_agreement_counts_other_and_unmapped_categories_as_documented() -> None:
    def row(crumb: str | None, label: str | None, top: str | None = None) -> dict:
        return {"category": crumb, "label": label, "top3": [[top or label, 0.5]] if label else None}

    rows = [row("Women > Dresses", "Dress"), row("Men > Shirts", OTHER, "Shirt"),
            row("Accessories", OTHER, "Bag"), row("Watches", "Bag"), row("Gadgets", "Bag"),
            row(None, "Coat"), row("Coats", None)]
    a = shop_agreement(rows)
    # Counted: the dress, the shirt, accessories, watches; not the unmapped, uncategorised
    # or unclassified rows. Agree: the dress and the accessory labelled other.
    assert (a.n, a.agree, a.rate) == (4, 2, 0.5)
    # In scope (ten-class categories, top class): the dress and the shirt both agree.
    assert (a.n_in_scope, a.agree_in_scope, a.in_scope) == (2, 2, 1.0)
    assert leaf_category("Women > Coats") == "Coats" and leaf_category(None) is None


def test_report_sections_escaping_and_json_twin(catalogue: Path) -> None:
    files = write_report(ReportConfig(catalogue=catalogue, gallery_size=1))
    html = files.html.read_text(encoding="utf-8")
    data = json.loads(files.json.read_text(encoding="utf-8"))
    assert files.html == catalogue / "report.html" and files.json == catalogue / "report.json"
    s = data["summary"]
    assert (s["products"], s["classified"], s["failed"]) == (8, 6, 2)
    assert s["per_class"]["Coat"] == 2 and s["per_class"][OTHER] == 2
    assert s["agreement"]["n"] == 5 and s["agreement"]["agree"] == 4  # jeans labelled other: no
    # Escaped scraped strings; no raw markup from the shop anywhere.
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; Tee" in html
    assert "<b>bag</b>" not in html and "Broken &lt;b&gt;bag&lt;/b&gt;" in html
    assert "<i>boom</i>" not in html and "&lt;i&gt;boom&lt;/i&gt;" in html
    assert "javascript:" not in html  # an unsafe product URL is shown as text, not a link
    # Coat gallery capped at one (the least confident: the end to review) with a note.
    coat = next(g for g in data["galleries"] if g["label"] == "Coat")
    assert [it["name"] for it in coat["items"]] == ["Linen coat"] and coat["more"] == 1
    assert "1 more not shown" in html
    assert data["lowest"][0]["name"] == "Silver ring"
    assert data["other"]["count"] == 2 and data["other"]["items"][0]["guess"] == "Dress"
    # Failures with reasons; the crawl's stats; the category table.
    f = data["failures"]
    assert f["images_by_status"] == {"too_small": 1, "no packshot": 1}
    assert "60x80 &lt; 100 px" in html and f["crawl_by_reason"] == {"http_error": 1}
    assert data["crawl"]["last"]["stats"]["pages"] == 9
    rows = {r["category"]: r for r in data["categories"]["rows"]}
    assert rows["Coats"]["expected"] == "Coat" and rows["Coats"]["agree"] == 1.0
    assert rows["Jewellery"]["expected"] == OTHER
    # Self-contained: thumbnails are data URIs, nothing is fetched.
    assert html.count('src="data:image/jpeg;base64,') >= 6
    assert 'src="http' not in html and "<link" not in html


def test_report_before_classification_and_unknown_model(catalogue: Path, tmp_path: Path) -> None:
    with Catalogue.open(catalogue) as cat:
        cat.conn.execute("DELETE FROM predictions")
        cat.conn.commit()
    data = build_report(ReportConfig(catalogue=catalogue))
    assert data["model"] is None and data["summary"]["classified"] == 0
    assert data["summary"]["agreement"] is None
    write_report(ReportConfig(catalogue=catalogue, out=tmp_path / "r" / "x.html"))
    assert "garment classify --catalogue" in (tmp_path / "r" / "x.html").read_text()
    with pytest.raises(GarmentError, match="no predictions by model 'nope'"):
        build_report(ReportConfig(catalogue=catalogue, model="nope"))
    with pytest.raises(GarmentError, match="no catalogue"):
        build_report(ReportConfig(catalogue=tmp_path / "missing"))


def test_thumbnail_is_small_and_bad_files_are_blank(tmp_path: Path, make_photo) -> None:  # type: ignore[no-untyped-def]
    uri = thumbnail(make_photo(tmp_path / "a.jpg", 0, size=(600, 800)), height=120)
    assert uri.startswith("data:image/jpeg;base64,") and len(uri) < 12_000
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    assert thumbnail(tmp_path / "bad.jpg") == ""


def test_classify_catalogue_reuses_answers_and_records_failures(
        catalogue: Path, tiny_model: Path, onnx_cache: Path) -> None:
    (catalogue / "images" / "5.jpg").write_bytes(b"\xff\xd8 truncated")  # stored, undecodable
    first = classify_catalogue(catalogue, tiny_model)
    mid = model_id(tiny_model)
    assert first.model_id == mid and mid.startswith(f"{tiny_model.name}-")
    assert (first.images, first.classified, first.reused, first.failed) == (6, 6, 0, 1)
    again = classify_catalogue(catalogue, tiny_model)
    assert (again.classified, again.reused) == (1, 5)  # only the failed one is retried
    with Catalogue.open(catalogue) as cat:
        assert cat.models()[-1] == mid and "m1" in cat.models()
        rows = {r["name"]: r for r in cat.products_with_labels(mid)}
    assert rows["Wool coat"]["label"] in (*CLASSES, OTHER)
    assert len(rows["Wool coat"]["top3"]) == 3
    snap = model_snapshot(catalogue, mid)
    assert snap["card"]["arch"] == "default" and snap["threshold"] == 0.5
    data = build_report(ReportConfig(catalogue=catalogue, model=str(tiny_model)))
    assert data["model"]["id"] == mid and data["failures"]["n_predictions"] == 1
    assert data["model"]["real_photo"] is None
    # `garment export` carries the labels of the model written last.
    with Catalogue.open(catalogue) as cat:
        rows = {r["name"]: r for r in export_rows(cat, None)}
    assert rows["Wool coat"]["label"] in (*CLASSES, OTHER) and rows["Wool coat"]["image_label"] is not None
    # No packshot, but its shop category says what it is: labelled from the text alone.
    assert rows["No picture"]["image_label"] is None
    assert (rows["No picture"]["label"], rows["No picture"]["label_source"]) == ("Bag", "text")
    assert "Bag" in rows["No picture"]["text_evidence"]


def test_model_card_shows_real_photo_metrics_when_present(catalogue: Path) -> None:
    card = {"arch": "default", "created": "2026-01-02T03:04:05+00:00",
            "other": {"threshold": 0.4, "how": "5% quantile"},
            "metrics": {"fashion_mnist_test_accuracy": 0.9123,
                        "real_photo": {"in_scope_accuracy": 0.6822, "other_auroc": 0.7147,
                                       "overall_accuracy": 0.5975, "dataset": "realphotos-dev"}}}
    (catalogue / "models").mkdir()
    (catalogue / "models" / "m1.json").write_text(json.dumps({"model_id": "m1", "card": card,
                                                              "threshold": 0.4}))
    html = write_report(ReportConfig(catalogue=catalogue)).html.read_text(encoding="utf-8")
    for text in ("91.2%", "68.2%", "59.8%", "0.715", "realphotos-dev", "2026-01-02T03:04:05"):
        assert text in html, text


def test_cli_classify_catalogue_and_report(catalogue: Path, tiny_model: Path, onnx_cache: Path,
                                           cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("classify").exit_code == 2  # neither PATHS nor --catalogue
    assert cli("classify", "--catalogue", str(catalogue), str(catalogue)).exit_code == 2
    result = cli("classify", "--catalogue", str(catalogue), "--model", str(tiny_model), "-q")
    assert result.exit_code == 0, result.output
    result = cli("report", "--catalogue", str(catalogue), "--model", "m1")
    assert result.exit_code == 0 and "agreement with the shop's categories: 80.0% (4 of 5)" in result.output
    assert (catalogue / "report.html").is_file()
    # --json: one object on stdout, for scripts
    result = cli("classify", "--catalogue", str(catalogue), "--model", str(tiny_model), "--json")
    summary = json.loads(result.stdout)
    assert result.exit_code == 0 and summary["classified"] == 0 and summary["reused"] == summary["images"] > 0
    assert summary["catalogue"] == str(catalogue) and summary["model_id"].startswith(tiny_model.name)
    result = cli("report", "--catalogue", str(catalogue), "--model", "m1", "--json")
    summary = json.loads(result.stdout)
    assert summary["model_id"] == "m1" and summary["agreement"]["rate"] == 0.8
    assert summary["html"] == str(catalogue / "report.html")


# --- image and text: figures, the review list, the adaptation card -------------------------

# product index -> (text label, confidence, evidence) and the final (label, confidence, source,
# conflict) for model "m1"; see the ``catalogue`` fixture for the image answers.
TEXT = {0: ("T-shirt/top", 0.9, "name: 'Tee' -> T-shirt/top"),
        1: ("Coat", 0.9, "category: 'Coats' -> Coat"),
        2: ("Shirt", 0.85, "name: '<b>linen</b>' -> Shirt"),
        3: ("Trouser", 0.95, "name: 'jeans' -> Trouser"),
        4: (OTHER, 0.9, "category: 'Jewellery' -> other"),
        5: ("Sandal", 0.4, "description: 'sandal' -> Sandal"),
        6: ("Bag", 0.8, "category: 'Bags' -> Bag"),
        7: (None, 0.0, "no label: no class word")}
FINAL = {0: ("T-shirt/top", 0.95, "agree", False), 1: ("Coat", 0.93, "agree", False),
         2: ("Shirt", 0.7, "text", True), 3: ("Trouser", 0.9, "text", True),
         4: (OTHER, 0.95, "agree", False), 5: ("Bag", 0.55, "image", True),
         6: ("Bag", 0.8, "text", False)}


def _index_of(label: str | None) -> int | None:
    return None if label is None else -1 if label == OTHER else CLASSES.index(label)


@pytest.fixture
def fused(catalogue: Path) -> Path:
    """The ``catalogue`` fixture with text labels and final labels for "m1" written by hand."""
    with Catalogue.open(catalogue) as cat:
        ids = [int(r["id"]) for r in cat.products()]
        cat.record_text_labels("test", ((ids[n], {"label": t, "label_index": _index_of(t), "confidence": c,
                                                  "field": "name", "evidence": ev})
                                        for n, (t, c, ev) in TEXT.items()))
        cat.record_labels("m1", ({"product_id": ids[n], "label": lab, "label_index": _index_of(lab),
                                  "confidence": c, "label_source": src, "conflict": conflict}
                                 for n, (lab, c, src, conflict) in FINAL.items()))
    return catalogue


def test_image_text_figures_review_list_and_badges(fused: Path) -> None:
    files = write_report(ReportConfig(catalogue=fused, review=2))
    data = json.loads(files.json.read_text(encoding="utf-8"))
    html = files.html.read_text(encoding="utf-8")
    it = data["image_text"]
    assert it["fused"] and (it["products"], it["labelled"]) == (8, 7)
    assert it["by_source"] == {"image": 1, "text": 3, "agree": 3, "human": 0}
    assert (it["conflicts"], it["disagree"]) == (3, 3)
    assert (it["text_labelled"], it["text_other"], it["text_only"]) == (7, 1, 1)
    assert (it["both"], it["agree"], it["agreement_rate"]) == (6, 3, 0.5)
    assert it["changed_by_text"] == 2 and it["changed"] == {"Coat -> Shirt": 1, f"{OTHER} -> Trouser": 1}
    cm = it["confusion"]
    assert cm["labels"] == ["T-shirt/top", "Trouser", "Coat", "Sandal", "Shirt", "Bag", OTHER]
    cell = {(i, t): cm["counts"][a][b] for a, i in enumerate(cm["labels"]) for b, t in enumerate(cm["labels"])}
    assert cell[("Coat", "Shirt")] == 1 and cell[(OTHER, "Trouser")] == 1 and cell[("Bag", "Sandal")] == 1
    assert cell[("Coat", "Coat")] == 1 and cell[(OTHER, OTHER)] == 1 and sum(cell.values()) == 6
    # Review: the three disagreements, least confident final label first, capped at two.
    review = data["review"]
    assert (review["count"], review["more"]) == (3, 1)
    assert [r["name"] for r in review["items"]] == ["Mystery", "Linen coat"]
    first = review["items"][0]
    assert (first["image_label"], first["text_label"], first["label"], first["label_source"]) == \
        ("Bag", "Sandal", "Bag", "image")
    # The review list in the page, its evidence escaped.
    section = html[html.index('id="review"'):html.index('id="categories"')]
    assert section.count('class="item review"') == 2 and "1 more not shown" in section
    assert "name: &#39;&lt;b&gt;linen&lt;/b&gt;&#39; -&gt; Shirt" in section and "<b>linen</b>" not in html
    # Galleries and tables use the final label; cards carry its source.
    s = data["summary"]
    assert s["classified"] == 7 and s["per_class"]["Bag"] == 2 and s["per_class"]["Shirt"] == 1
    bag = next(g for g in data["galleries"] if g["label"] == "Bag")
    assert {(x["name"], x["label_source"]) for x in bag["items"]} == {("Mystery", "image"),
                                                                      ("Broken <b>bag</b>", "text")}
    assert next(x for x in bag["items"] if x["label_source"] == "text")["image_path"] == ""
    assert 'class="src src-text"' in html and 'class="src src-agree"' in html
    assert s["agreement"]["n"] == 6 and s["agreement"]["agree"] == 5  # jeans now Trouser, bag from text
    assert (s["agreement"]["n_in_scope"], s["agreement"]["agree_in_scope"]) == (5, 4)  # linen coat: Shirt
    # The image alone (evaluate's figures): jeans "other" disagrees, the bag has no image answer.
    img = s["agreement_image"]
    assert (img["n"], img["agree"], img["n_in_scope"], img["agree_in_scope"]) == (5, 4, 4, 3)
    assert "the image alone: 80.0%" in html


def test_image_text_before_fusion_says_no_text_evidence(catalogue: Path) -> None:
    files = write_report(ReportConfig(catalogue=catalogue))
    data = json.loads(files.json.read_text(encoding="utf-8"))
    it = data["image_text"]
    assert not it["fused"] and it["text_labelled"] == 0 and it["agreement_rate"] is None
    assert it["by_source"] == {"image": 6, "text": 0, "agree": 0, "human": 0} and it["confusion"] is None
    assert data["review"]["count"] == 0
    html = files.html.read_text(encoding="utf-8")
    assert "No text evidence" in html and 'id="review"' not in html


def test_model_shows_the_adaptation_card_escaped(catalogue: Path) -> None:
    adaptation = {"base_model": "default-0123456789", "products_per_class": {"Coat": 40, "Dress": 31},
                  "holdout": {"n": 60, "accuracy": 0.85}, "fashion_mnist_accuracy": 0.9234,
                  "seconds": 71.25, "note": "<img src=x onerror=alert(3)>",
                  "config": {f"k{i}": i for i in range(20)}}
    (catalogue / "models").mkdir()
    (catalogue / "models" / "m1.json").write_text(json.dumps(
        {"model_id": "m1", "threshold": 0.4, "card": {"arch": "default", "extra": {"adaptation": adaptation}}}))
    files = write_report(ReportConfig(catalogue=catalogue))
    assert json.loads(files.json.read_text())["model"]["adaptation"] == adaptation
    html = files.html.read_text(encoding="utf-8")
    for text in ("Adapted to this shop", "default-0123456789", "Coat 40, Dress 31", "n 60, accuracy 85.0%",
                 "92.3%", "71.25", "&lt;img src=x onerror=alert(3)&gt;",
                 "<summary>20 entries</summary>k0 0, k1 1"):  # a long dict folds away
        assert text in html, text
    assert "<img src=x" not in html
    # A card without the adaptation (or with something else there) shows none.
    (catalogue / "models" / "m1.json").write_text(json.dumps(
        {"model_id": "m1", "card": {"arch": "default", "extra": {"adaptation": "yes"}}}))
    data = build_report(ReportConfig(catalogue=catalogue))
    assert data["model"]["adaptation"] is None


def test_report_of_a_catalogue_classified_with_text(catalogue: Path, tiny_model: Path,
                                                    onnx_cache: Path) -> None:
    """classify --catalogue (image + text), then the report's figures match the tables."""
    result = classify_catalogue(catalogue, tiny_model)
    mid = result.model_id
    files = write_report(ReportConfig(catalogue=catalogue))
    data = json.loads(files.json.read_text(encoding="utf-8"))
    html = files.html.read_text(encoding="utf-8")
    it = data["image_text"]
    with Catalogue.open(catalogue) as cat:
        q = cat.conn.execute
        sources = dict(q("SELECT label_source, COUNT(*) FROM labels WHERE model_id=? GROUP BY 1", (mid,)).fetchall())
        conflicts = q("SELECT SUM(conflict) FROM labels WHERE model_id=?", (mid,)).fetchone()[0]
        pairs = q("SELECT i.product_id, pr.label, t.label, l.conflict FROM images i "
                  "JOIN predictions pr ON pr.image_id = i.id AND pr.model_id = ? AND pr.status = 'ok' "
                  "JOIN text_labels t ON t.product_id = i.product_id AND t.label IS NOT NULL "
                  "JOIN labels l ON l.product_id = i.product_id AND l.model_id = ?", (mid, mid)).fetchall()
        names = dict(q("SELECT id, name FROM products").fetchall())
    assert it["fused"] and data["model"]["id"] == mid
    assert it["by_source"] == {s: sources.get(s, 0) for s in ("image", "text", "agree", "human")}
    assert sum(it["by_source"].values()) == sum(result.sources.values()) == it["labelled"]
    assert it["conflicts"] == conflicts == result.conflicts
    assert it["text_labelled"] == result.text_labelled == 7  # every product but "Mystery"
    assert it["both"] == len(pairs) and it["agree"] == sum(img == txt for _, img, txt, _ in pairs)
    disagree = {pid for pid, img, txt, c in pairs if img != txt or c}
    assert data["review"]["count"] == len(disagree) > 0
    assert {r["product_id"] for r in data["review"]["items"]} == disagree
    confs = [r["confidence"] for r in data["review"]["items"]]
    assert confs == sorted(confs)
    # The page lists each of them, names escaped.
    section = html[html.index('id="review"'):html.index('id="categories"')]
    assert section.count('class="item review"') == len(disagree)
    for pid in disagree:
        assert names[pid].replace("<", "&lt;").replace(">", "&gt;") in section
    assert html.count("<script") == 1 and "<script>alert" not in html  # the page's own filter only


def test_cli_report_prints_image_text_agreement(fused: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("report", "--catalogue", str(fused))
    assert result.exit_code == 0, result.output
    assert "image and text agree: 50.0% (3 of 6); 3 to review" in result.output


# --- review aids: score histogram, "other" scores, category cells, search and filter, human labels ---


def test_score_histogram_threshold_and_other_cards_show_their_score(catalogue: Path) -> None:
    with Catalogue.open(catalogue) as cat:
        ids = [r[0] for r in cat.conn.execute("SELECT id FROM images WHERE status='ok' ORDER BY id")]
        for iid, score in zip(ids, [2.5, 3.1, 2.2, 0.7, 0.4, 1.9], strict=True):
            cat.conn.execute("UPDATE predictions SET score=? WHERE image_id=?", (score, iid))
        cat.conn.commit()
    (catalogue / "models").mkdir()
    (catalogue / "models" / "m1.json").write_text(json.dumps({"model_id": "m1", "threshold": 1.0, "card": {}}))
    files = write_report(ReportConfig(catalogue=catalogue, histogram_bins=5))
    data = json.loads(files.json.read_text(encoding="utf-8"))
    html = files.html.read_text(encoding="utf-8")
    h = data["scores"]
    assert (h["n"], h["below"], h["threshold"], h["lo"], h["hi"]) == (6, 2, 1.0, 0.4, 3.1)
    assert [b["n"] for b in h["bins"]] == [2, 0, 1, 2, 1] and [b["other"] for b in h["bins"]] == [
        True, False, False, False, False]  # a bin is "other" when its middle is below the threshold
    section = html[html.index('id="other"'):html.index('id="lowest"')]
    assert section.count('<rect class="out"') == 1 and section.count('<rect class="in"') == 3
    assert 'class="thr"' in section and "threshold 1" in section
    # The two "other" cards: their in-scope score against the threshold, not only a probability.
    assert "in-scope score 0.7 &lt; 1" in section and "in-scope score 0.4 &lt; 1" in section
    other = {it["name"]: it["score"] for it in data["other"]["items"]}
    assert other == {"Denim jeans": 0.7, "Silver ring": 0.4}
    # Without scores (an older catalogue) there is no histogram, and no error.
    with Catalogue.open(catalogue) as cat:
        cat.conn.execute("UPDATE predictions SET score=NULL")
        cat.conn.commit()
    assert build_report(ReportConfig(catalogue=catalogue))["scores"] is None


def test_category_cells_link_to_their_products_and_galleries_are_least_confident_first(catalogue: Path) -> None:
    files = write_report(ReportConfig(catalogue=catalogue, gallery_size=1))
    data = json.loads(files.json.read_text(encoding="utf-8"))
    html = files.html.read_text(encoding="utf-8")
    rows = {r["category"]: (i, r) for i, r in enumerate(data["categories"]["rows"])}
    i, coats = rows["Coats"]
    j = data["categories"]["columns"].index("Coat")
    assert [p["name"] for p in coats["products"][j]] == ["Linen coat", "Wool coat"]  # least confident first
    assert f'<a href="#cell-{i}-{j}"' in html
    cell = html[html.index(f'id="cell-{i}-{j}"'):]
    cell = cell[:cell.index("</div>")]
    # The gallery shows the linen coat (capped at one, least confident): its name links to its card.
    linen = next(p for p in coats["products"][j] if p["name"] == "Linen coat")
    assert linen["shown"] and f'<a href="#p{linen["product_id"]}">Linen coat</a>' in cell
    assert f'id="p{linen["product_id"]}"' in html and "Wool coat</a>" not in cell and "Wool coat" in cell
    i, tees = rows["T-shirts & tops"]
    assert "T-shirts &amp; tops, labelled T-shirt/top" in html  # escaped like every shop string


def test_search_and_filter_script_is_the_only_one_and_its_hash_is_allowed(catalogue: Path) -> None:
    import base64
    import hashlib
    import re

    html = write_report(ReportConfig(catalogue=catalogue)).html.read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    assert len(scripts) == 1 and html.count("<script") == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    directives = dict(d.strip().split(" ", 1) for d in csp.group(1).split(";")) if csp else {}
    assert directives["script-src"] == f"'sha256-{digest}'"  # no 'unsafe-inline' for scripts
    # Without the script the filter bar is hidden; every card carries what it filters on, escaped.
    assert '<div id="filters" class="filters" hidden>' in html
    assert 'data-name="&lt;script&gt;alert(1)&lt;/script&gt; tee" data-label="T-shirt/top"' in html
    assert '<option value="other">other</option>' in html


def test_human_labels_count_as_their_own_source(fused: Path) -> None:
    with Catalogue.open(fused) as cat:
        ids = {r["name"]: int(r["id"]) for r in cat.products()}
        cat.set_human_labels({ids["Mystery"]: "Sandal", ids["Wool coat"]: "Coat"})
    data = build_report(ReportConfig(catalogue=fused))
    it = data["image_text"]
    assert it["by_source"]["human"] == 2 and (it["human"], it["corrected"]) == (2, 1)  # the coat was right
    assert it["changed_by_text"] == 2  # a person's label is not the text's doing
    html = write_report(ReportConfig(catalogue=fused)).html.read_text(encoding="utf-8")
    assert "<b>1</b><span>of the 2 labels a person gave differ from the machine's</span>" in html
    mystery = next(x for g in data["galleries"] for x in g["items"] if x.name == "Mystery")
    assert (mystery.label, mystery.label_source, mystery.confidence) == ("Sandal", "human", 1.0)
