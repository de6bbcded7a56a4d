"""Report: a classified catalogue as one self-contained HTML page and its JSON twin.

``build_report`` turns the catalogue's rows into plain data (summary, image against text
(``report_labels``), the conflicts to review, per-class galleries of the final labels (least
confident first), "other / not sure" with each in-scope score, the score's histogram with the
threshold, lowest confidence, failures, shop category against final label (each cell listing
its products), crawl stats, the model card and its adaptation card); ``write_report`` writes it
as ``report.json`` and renders ``templates/report.html.j2`` with Jinja2 (autoescape on: every
scraped string is escaped) into ``report.html``, thumbnails embedded as small JPEG data URIs.
Galleries are capped ("N more"), so a catalogue of thousands of products stays a file of a few
MB. The page's one inline script (``templates/report.js``: search and class filter) is allowed
by its hash in the page's Content-Security-Policy, so nothing else can run; without it the page
reads the same, the filter bar hidden.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from garment import CLASSES, OTHER, PROJECT_URL, __version__
from garment.errors import GarmentError
from garment.report_labels import (  # noqa: F401  (Agreement: part of this module's API)
    SOURCE_HELP,
    Agreement,
    card_value,
    category_table,
    guess,
    image_text_figures,
    leaf_category,
    score_histogram,
    shop_agreement,
    to_review,
)
from garment.store import Catalogue, describe, files_folder

TEMPLATE = "report.html.j2"
SCRIPT = "report.js"  # beside the template; inlined, allowed by its SHA-256


@dataclass
class ReportConfig:
    """What the report shows and where it goes."""

    catalogue: Path | str = Path("catalogue")  # catalogue folder or postgresql:// URL (`garment scrape`)
    model: str | None = None  # model folder or stored model id; None: the latest classified
    out: Path | None = None  # HTML file; None: CATALOGUE/report.html (JSON twin beside it)
    gallery_size: int = 24  # thumbnails per class before "N more"
    lowest: int = 16  # lowest-confidence items shown
    failures: int = 50  # failure rows listed (all are counted)
    review: int = 60  # products listed where image and text disagree (all are counted)
    cell_list: int = 30  # products listed under each cell of the category table (all are counted)
    histogram_bins: int = 30  # bins of the in-scope score's histogram
    thumb_height: int = 120  # pixels
    thumb_quality: int = 70  # JPEG quality of the embedded thumbnails

    def validate(self) -> None:
        for name in ("gallery_size", "lowest", "failures", "review", "cell_list"):
            if getattr(self, name) < 0:
                raise GarmentError(f"{name} is {getattr(self, name)}: give 0 or more")
        if not 16 <= self.thumb_height <= 512 or not 1 <= self.thumb_quality <= 95:
            raise GarmentError(f"thumb height {self.thumb_height} / quality {self.thumb_quality}: "
                               "allowed 16-512 px and 1-95")
        if not 1 <= self.histogram_bins <= 200:
            raise GarmentError(f"histogram bins {self.histogram_bins}: allowed 1-200")


@dataclass
class Item:
    """One labelled product, as galleries show it (label: the final one)."""

    product_id: int
    name: str
    url: str | None  # the product page, only when it is an http(s) URL
    price: str
    category: str | None  # the shop's own category (last breadcrumb item)
    label: str
    guess: str  # the top class, also when the label is "other"
    confidence: float
    image_path: str  # relative to the catalogue folder; "" without a usable packshot
    label_source: str | None = None  # image, text, agree or human: what decided the label
    score: float | None = None  # the image's in-scope score ("other" below the model's threshold)


@dataclass
class Review(Item):
    """A product whose image and text disagree, with both answers."""

    image_label: str | None = None  # the model's own answer
    image_confidence: float | None = None
    text_label: str | None = None
    text_confidence: float | None = None
    text_evidence: str = ""
    conflict: bool = False  # fusion's flag (None rows: classified without text)


def _safe_url(url: str | None) -> str | None:
    """Only http(s) URLs become links: a scraped 'javascript:' URL must not."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return None


def _item(r: dict[str, Any]) -> Item:
    price = "" if r.get("price") is None else f"{r['price']:.2f} {r.get('currency') or ''}".strip()
    image = r["image_path"] if r.get("image_status") == "ok" and r.get("image_path") else ""
    return Item(r["product_id"], r.get("name") or "(no name)", _safe_url(r.get("product_url")),
                price, leaf_category(r.get("category")), r["label"], guess(r),
                float(r.get("confidence") or 0.0), image, r.get("label_source"), r.get("score"))


def _review(rows: list[dict[str, Any]], cap: int) -> dict[str, Any]:
    todo, count = to_review(rows, cap)
    items = [Review(**asdict(_item(r)), image_label=r["image_label"],
                    image_confidence=r.get("image_confidence"), text_label=r["text_label"],
                    text_confidence=r.get("text_confidence"), text_evidence=r.get("text_evidence") or "",
                    conflict=bool(r.get("conflict"))) for r in todo]
    return {"count": count, "items": items, "more": max(0, count - len(items))}


def _gallery(items: list[Item], cap: int) -> dict[str, Any]:
    """Least confident first: the end of a gallery a reviewer wants to see."""
    ranked = sorted(items, key=lambda it: (it.confidence, it.product_id))
    return {"count": len(items), "items": ranked[:cap], "more": max(0, len(items) - cap)}


def _failures(cat: Catalogue, rows: list[dict[str, Any]], mid: str | None,
              cap: int) -> dict[str, Any]:
    images = [{"name": r.get("name") or "(no name)", "url": _safe_url(r.get("product_url")),
               "status": r.get("image_status") or "no packshot",
               "error": _image_error(cat, r.get("image_id"))}
              for r in rows if r.get("image_status") != "ok"]
    preds = cat.failed_predictions(mid)
    for p in preds:
        p["url"] = _safe_url(p["url"])
    errors = cat.errors()
    return {
        "images": images[:cap], "n_images": len(images),
        "images_by_status": dict(Counter(x["status"] for x in images)),
        "predictions": preds[:cap], "n_predictions": len(preds),
        "crawl": [{k: e[k] for k in ("url", "kind", "reason", "status", "detail")}
                  for e in errors[-cap:]],
        "n_crawl": len(errors),
        "crawl_by_reason": dict(Counter(e["reason"] for e in errors)),
    }


def _image_error(cat: Catalogue, image_id: int | None) -> str:
    if image_id is None:
        return "the product page named no usable image"
    row = cat.image(image_id)
    return (row["error"] if row else "") or ""


def _crawl(cat: Catalogue) -> dict[str, Any]:
    runs = cat.runs()
    last = runs[-1] if runs else None
    stats = json.loads(last["stats"]) if last and last.get("stats") else {}
    config = json.loads(last["config"]) if last and last.get("config") else {}
    return {"runs": len(runs), "last": None if last is None else {
        "id": last["id"], "started": last["started"], "finished": last["finished"],
        "status": last["status"], "start_urls": config.get("start_urls") or [],
        "delay": config.get("delay"), "concurrency": config.get("concurrency"), "stats": stats}}


def _site(crawl: dict[str, Any]) -> str | None:
    urls = crawl["last"]["start_urls"] if crawl["last"] else []
    return urlsplit(urls[0]).netloc if urls else None


def _model(snapshot: dict[str, Any]) -> dict[str, Any]:
    card = snapshot.get("card") or {}
    metrics = card.get("metrics") or {}
    extra = card.get("extra")
    # Written by `garment adapt`; shown key by key, whatever keys it has.
    adaptation = extra.get("adaptation") if isinstance(extra, dict) else None
    return {
        "id": snapshot.get("model_id"), "arch": card.get("arch"),
        "created": card.get("created"), "classified": snapshot.get("classified"),
        "fashion_mnist_accuracy": metrics.get("fashion_mnist_test_accuracy"),
        "real_photo": metrics.get("real_photo"),
        "threshold": snapshot.get("threshold", (card.get("other") or {}).get("threshold")),
        "other_rule": (card.get("other") or {}).get("how"),
        "adaptation": adaptation if isinstance(adaptation, dict) and adaptation else None,
    }


def resolve_model(cat: Catalogue, model: str | None) -> str | None:
    """The model id whose predictions to show: ``model`` as a stored id or a model folder;
    None: the latest classified (None when the catalogue is not classified yet)."""
    from garment.catalogue_classify import model_id

    stored = cat.models()
    if model is None:
        return stored[-1] if stored else None
    if model in stored:
        return model
    mid = model_id(model) if Path(model).is_dir() else model
    if mid not in stored:
        raise GarmentError(f"no predictions by model {model!r} in {cat.name}; run `garment "
                           f"classify --catalogue {cat.name}` first (classified: "
                           f"{', '.join(stored) or 'none yet'})")
    return mid


def build_report(config: ReportConfig) -> dict[str, Any]:
    """The report's data: plain dicts, lists and dataclasses (the JSON twin)."""
    from garment.catalogue_classify import model_snapshot

    config.validate()
    with Catalogue.open(config.catalogue, create=False, readonly=True) as cat:
        mid = resolve_model(cat, config.model)
        rows = cat.products_with_labels(mid)
        scores = cat.scores(mid)
        files = cat.folder
        counts = cat.counts()
        failures = _failures(cat, rows, mid, config.failures)
        crawl = _crawl(cat)
    for r in rows:
        r["score"] = scores.get(r.get("image_id") or -1)
    model = None if mid is None else _model(model_snapshot(files, mid))
    # Every product with a final label, also one labelled from its text alone (no packshot).
    labelled = [r for r in rows if r.get("label") is not None]
    items = [_item(r) for r in labelled]
    per_class = Counter(it.label for it in items)
    agreement, agreement_image = shop_agreement(rows), shop_agreement(rows, image=True)
    galleries = [{"label": c, **_gallery([it for it in items if it.label == c],
                                         config.gallery_size)} for c in CLASSES]
    other = _gallery([it for it in items if it.label == OTHER], config.gallery_size)
    confidences = [it.confidence for it in items]
    # Category cells link to the gallery card of a product the galleries show.
    shown = {it.product_id for g in (*galleries, other) for it in g["items"]}
    categories = category_table(labelled, config.cell_list)
    for row in (categories or {}).get("rows", []):
        for cell in row["products"]:
            for p in cell:
                p["shown"] = p["product_id"] in shown
    return {
        "title": f"garment report: {_site(crawl) or describe(config.catalogue)}",
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "garment": {"version": __version__, "url": PROJECT_URL},
        "catalogue": describe(config.catalogue),
        "summary": {
            "products": counts["products"], "images": counts["images"],
            "classified": len(items), "failed": failures["n_images"] + failures["n_predictions"],
            "per_class": {c: per_class.get(c, 0) for c in (*CLASSES, OTHER)},
            "mean_confidence": sum(confidences) / len(confidences) if confidences else None,
            "agreement": agreement.as_dict() if agreement.n else None,  # final labels
            "agreement_image": agreement_image.as_dict() if agreement_image.n else None,  # image alone
        },
        "model": model,
        "scores": score_histogram(list(scores.values()), model["threshold"] if model else None,
                                  config.histogram_bins),
        "image_text": None if mid is None else image_text_figures(rows),
        "review": _review(rows, config.review),
        "galleries": galleries,
        "other": other,
        "lowest": sorted(items, key=lambda it: (it.confidence, it.product_id))[:config.lowest],
        "failures": failures,
        "categories": categories,
        "crawl": crawl,
    }


def thumbnail(path: Path, height: int = 120, quality: int = 70) -> str:
    """A JPEG data URI of the image at ``path``, ``height`` pixels high ('' if unreadable)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (height * 4, height))  # JPEG: decode at a reduced scale, faster
            rgb = im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return ""  # shown as a missing picture; the failure is the crawler's to report
    width = max(1, round(rgb.width * height / max(rgb.height, 1)))
    rgb = rgb.resize((min(width, 4 * height), height), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Item):
        return asdict(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def render_html(data: dict[str, Any], folder: Path, config: ReportConfig) -> str:
    """The report page; ``folder`` is the catalogue folder image paths are relative to."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("garment", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)

    @cache
    def thumb(image_path: str) -> str:
        return thumbnail(folder / image_path, config.thumb_height, config.thumb_quality)

    env.globals["thumb"] = thumb
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
    env.filters["card_value"] = card_value
    env.globals["source_help"] = SOURCE_HELP
    script = (Path(__file__).parent / "templates" / SCRIPT).read_text(encoding="utf-8")
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return env.get_template(TEMPLATE).render(**data, config=config, script=script, script_hash=script_hash)


@dataclass
class ReportFiles:
    """The files ``write_report`` wrote and the data behind them."""

    html: Path
    json: Path
    data: dict[str, Any] = field(repr=False)


def write_report(config: ReportConfig) -> ReportFiles:
    """Build the report of ``config.catalogue``; write ``report.html`` and ``report.json``."""
    data = build_report(config)
    files = files_folder(config.catalogue)
    html_path = Path(config.out) if config.out else files / "report.html"
    json_path = html_path.with_suffix(".json")
    html = render_html(data, files, config)
    try:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(html, encoding="utf-8")
        json_path.write_text(json.dumps(_jsonable(data), indent=1, ensure_ascii=False,
                                        default=str) + "\n", encoding="utf-8")
    except OSError as exc:  # a read-only catalogue folder, most often
        raise GarmentError(f"cannot write {html_path} ({exc.strerror or exc}); pass --out "
                           "FILE.html in a writable folder") from exc
    return ReportFiles(html_path, json_path, data)
