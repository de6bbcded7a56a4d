"""Export: a catalogue as one table, one row per product (.csv, .jsonl or .parquet).

Label columns come from the model whose predictions were written last (or the one
named), and are empty until the catalogue is classified. ``label``, ``label_index`` and
``confidence`` are the final label (image and text fused, see ``garment.labels.fuse``) and
``label_source`` what decided it (image, text or agree); ``image_*`` are the model's own
answer, without text; ``text_label`` and ``text_evidence`` what the product's words said.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from garment.errors import GarmentError
from garment.store import Catalogue

COLUMNS = ("product_url", "sku", "name", "brand", "price", "currency", "availability", "category",
           "image_url", "image_path", "width", "height", "sha256", "label", "label_index",
           "confidence", "label_source", "image_label", "image_label_index", "image_confidence",
           "text_label", "text_evidence")
#: Numeric columns (typed in Parquet; never neutralised in CSV).
FLOAT_COLUMNS = ("price", "confidence", "image_confidence")
INT_COLUMNS = ("width", "height", "label_index", "image_label_index")
FORMATS = (".csv", ".jsonl", ".parquet")
#: Text a spreadsheet runs as a formula when a cell starts with it (OWASP's CSV injection
#: list, plus the full-width forms some locales accept).
FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


def export_rows(catalogue: Catalogue, model_id: str | None = None) -> list[dict[str, Any]]:
    """The export table as dicts with exactly ``COLUMNS``; missing values are None."""
    rows = []
    for r in catalogue.products_with_labels(model_id):
        row = {c: r.get(c) for c in COLUMNS}
        ok = r.get("image_status") == "ok" and r.get("image_path")
        row["image_path"] = str(catalogue.folder / r["image_path"]) if ok else None
        if not ok:  # a failed download has no file, size or hash worth exporting
            row.update(width=None, height=None, sha256=None)
        rows.append(row)
    return rows


def csv_cell(value: Any) -> Any:
    """A value as a safe CSV cell: None -> "", text a spreadsheet would run as a formula
    (``=HYPERLINK(...)``, ``+1``, ``-2+3``, ``@SUM``, or one behind leading blanks) gets
    OWASP's ``'`` prefix. Numbers stay numbers (a negative price is not a formula)."""
    if value is None:
        return ""
    if isinstance(value, str) and value and (value[0] in FORMULA_START or
                                             value.lstrip(" \n")[:1] in FORMULA_START):
        return "'" + value
    return value


def _write_parquet(rows: list[dict[str, Any]], out: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise GarmentError(f"writing {out} needs pyarrow: pip install 'garment[parquet]', "
                           "or export to .csv or .jsonl") from None
    schema = pa.schema([(c, pa.float64() if c in FLOAT_COLUMNS else
                         pa.int64() if c in INT_COLUMNS else
                         pa.string()) for c in COLUMNS])
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, out)


def export(catalogue_dir: str | Path, out: str | Path, model_id: str | None = None) -> int:
    """Write the catalogue in ``catalogue_dir`` to ``out`` (format from its extension);
    returns the number of rows."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise GarmentError(f"cannot export to {out}: the file name must end in "
                           f"{', '.join(FORMATS)}")
    with Catalogue.open(catalogue_dir, create=False, readonly=True) as cat:
        if model_id is not None and model_id not in cat.models():
            known = ", ".join(cat.models()) or "none yet"
            raise GarmentError(f"no predictions by model {model_id!r} in {catalogue_dir}; "
                               f"models with predictions: {known}")
        rows = export_rows(cat, model_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            # Only here: JSONL and Parquet keep the raw text, read by programs not sheets.
            writer.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
    elif suffix == ".jsonl":
        with open(out, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        _write_parquet(rows, out)
    return len(rows)
