"""Dataset: the card (``README.md``) of a dataset ``garment dataset`` wrote, and the facts in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from garment import CLASSES, PROJECT_URL
from garment.store import Catalogue, site_of

#: How each label source reads in the card.
SOURCE_NAMES = {"human": "labelled by a person (garment review)",
                "agree": "the packshot (image model) and the product's text named the same class",
                "text": "the product's text decided (it outweighed the packshot, or there was no image answer)",
                "image": "the packshot alone decided (the image model)"}


def card_facts(cat: Catalogue, rows: list[dict[str, Any]], mid: str | None,
               product_ids: set[int] | None = None) -> dict[str, Any]:
    """The shop, the crawl, the model and its measured accuracy, and how the dataset's labels
    (``product_ids``; None: every labelled row) agree with the shop's own categories."""
    from garment.catalogue_classify import model_snapshot
    from garment.report import shop_agreement

    runs = cat.runs()
    config = _json(runs[-1].get("config")) if runs else {}
    start_urls = list(config.get("start_urls") or [])
    sites = sorted({site_of(r["product_url"]) for r in rows if r.get("product_url")})
    card = (model_snapshot(cat.folder, mid).get("card") or {}) if mid else {}
    metrics = card.get("metrics") or {}
    extra = card.get("extra") if isinstance(card.get("extra"), dict) else {}
    adaptation = (extra or {}).get("adaptation")
    real = metrics.get("real_photo") if isinstance(metrics.get("real_photo"), dict) else None
    chosen = [r for r in rows if product_ids is None or r["product_id"] in product_ids]
    agreement = shop_agreement(chosen)
    return {
        "shop": {"sites": sites, "start_urls": start_urls,
                 "crawled": [runs[0]["started"], runs[-1].get("finished") or runs[-1]["started"]] if runs else None,
                 "catalogue": cat.name},
        "model": None if mid is None else {
            "id": mid, "arch": card.get("arch"),
            "fashion_mnist_test_accuracy": metrics.get("fashion_mnist_test_accuracy"),
            "real_photo_in_scope_accuracy": real.get("in_scope_accuracy") if real else None,
            "real_photo_dataset": real.get("dataset") if real else None,
            "threshold": (card.get("other") or {}).get("threshold"),
            "adapted": isinstance(adaptation, dict) and bool(adaptation)},
        "shop_category_agreement": agreement.as_dict() if agreement.n else None,
    }


def _json(text: str | None) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _pct(value: float | None) -> str:
    return "not measured" if value is None else f"{100 * value:.1f}%"


def _md(text: Any) -> str:
    """A value as Markdown text: a shop's URL or name must not become markup."""
    return str(text).replace("\\", "\\\\").replace("`", "\\`").replace("<", "&lt;").replace("|", "\\|")


def card_text(m: dict[str, Any]) -> str:
    """The dataset card: Markdown from the ``dataset.json`` manifest ``m``."""
    counts = m["counts"]
    splits = list(counts)
    total = {s: sum(counts[s].values()) for s in splits}
    lines = [f"# Labelled fashion images from {_md(', '.join(m['shop']['sites']) or 'a shop')}", "",
             f"{sum(total.values())} product packshots labelled with the ten Fashion-MNIST classes "
             f"({', '.join(f'{s} {n}' for s, n in total.items())}), written by garment {m['garment']} "
             f"({PROJECT_URL}) on {m['created']} as `{m['dataset_format']}`.", "",
             "## Rights", "",
             "The images belong to the shop they were taken from, and to their photographers. This dataset "
             "records where each came from (`sources.csv`: the product page and the image URL of every image); "
             "it grants no right to use or share them. Check the shop's terms before you use them beyond "
             "your own research, and do not redistribute them without permission.", "",
             "## Classes", "", "| label | class | " + " | ".join(splits) + " |",
             "|---:|---|" + "---:|" * len(splits)]
    lines += [f"| {i} | {c} | " + " | ".join(str(counts[s][c]) for s in splits) + " |" for i, c in enumerate(CLASSES)]
    lines += ["", "## Where the labels came from", ""]
    lines += [f"- {n}: {SOURCE_NAMES.get(s, s)}" for s, n in sorted(m["label_sources"].items(), key=lambda t: -t[1])]
    f = m["filters"]
    lines += ["", "Left out (products): " + (", ".join(f"{k} {n}" for k, n in m["excluded"].items() if n) or "none")
              + ". Products that share a packshot (same SHA-256) are one image; copies with different labels "
              "are left out, so no photo is in both splits.",
              f"Filters: minimum confidence {f['min_confidence'] if f['min_confidence'] is not None else 'none'} "
              f"(a person's labels always pass), only {f['only'] or 'every source'}; stratified split, "
              f"test fraction {f['test_fraction']:.4g} of each class, seed {f['seed']}.", ""]
    model = m.get("model")
    lines += ["## The model", ""]
    if model:
        lines += [f"- model `{_md(model['id'])}` ({_md(model.get('arch') or 'unknown')} architecture"
                  f"{', adapted to this shop' if model.get('adapted') else ''})",
                  f"- Fashion-MNIST test accuracy: {_pct(model.get('fashion_mnist_test_accuracy'))}",
                  f"- real-photo accuracy, in scope: {_pct(model.get('real_photo_in_scope_accuracy'))}"
                  + (f" on {_md(model['real_photo_dataset'])}" if model.get("real_photo_dataset") else ""),
                  "- \"other\" threshold on the in-scope score: "
                  + ("none" if model.get("threshold") is None else f"{model['threshold']:.4g}")]
    else:
        lines += ["- none: every label is a person's or the product's text"]
    agreement = m.get("shop_category_agreement")
    if agreement:
        lines += [f"- these labels agree with the shop's own categories on {_pct(agreement['rate'])} of the "
                  f"{agreement['n']} images whose category names a class"]
    shop = m["shop"]
    crawled = shop.get("crawled")
    lines += ["", "## The shop", "",
              f"- sites: {_md(', '.join(shop['sites']) or 'unknown')}",
              f"- crawl started at: {_md(', '.join(shop['start_urls']) or 'unknown')}",
              f"- crawled: {f'{crawled[0]} to {crawled[1]}' if crawled else 'unknown'}", "",
              "## Files", ""]
    if m["dataset_format"] == "fmnist":
        lines += ["`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, "
                  "`t10k-labels-idx1-ubyte.gz`: Fashion-MNIST's IDX format (28x28 uint8, white garment on black, "
                  "labels 0-9). `dataset.json` holds their MD5s: `garment train --data-dir .` reads them."]
    elif m["dataset_format"] == "imagefolder":
        lines += ["`<split>/<label>_<class>/<sha256>.<ext>`: the original packshots, in folders `0_T-shirt_top` "
                  "... `9_Ankle_boot`, which sort in label order (image-folder loaders number them 0-9)."]
    else:
        lines += ["`train.parquet`, `test.parquet`: the original image (`{bytes, path}`), `label` (0-9, names in "
                  "the schema), `label_name` and provenance; `load_dataset(\"parquet\", data_files=...)` reads them."]
    lines += ["`sources.csv`: one row per image (split, position, sha256, label, source, product and image URLs). "
              "`dataset.json`: the same facts for programs.", ""]
    return "\n".join(lines)


def write_card(path: Path, manifest: dict[str, Any]) -> Path:
    path.write_text(card_text(manifest), encoding="utf-8")
    return path
