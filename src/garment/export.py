"""Export: a catalogue as one table, one row per product (.csv, .jsonl or .parquet).

Every column is described in ``docs/export-columns.md`` (a test keeps the two in step).
Label columns come from one model (the one whose predictions were written last, or the one
named), whose id each row carries in ``model_id``; they are empty until the catalogue is
classified. ``label``, ``label_index`` and ``confidence`` are the final label (a person's,
else image and text fused, see ``garment.labels.fuse``) and ``label_source`` what decided it;
``image_*``, ``score``, ``top_label`` and ``top3`` are the model's own answer, without text;
``text_label`` and ``text_evidence`` what the product's words said.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from garment.errors import GarmentError
from garment.store import Catalogue

COLUMNS = ("product_url", "sku", "name", "brand", "price", "currency", "availability", "category",
           "crawled_at", "image_url", "image_path", "width", "height", "sha256", "status", "model_id",
           "label", "label_index", "confidence", "label_source", "score", "top_label", "top3",
           "image_label", "image_label_index", "image_confidence", "text_label", "text_evidence")
#: Numeric columns (typed in Parquet; never neutralised in CSV).
FLOAT_COLUMNS = ("price", "confidence", "score", "image_confidence")
INT_COLUMNS = ("width", "height", "label_index", "image_label_index")
FORMATS = (".csv", ".jsonl", ".parquet")
#: Formats that can go to standard output (``--out -``): text, not Parquet's binary.
STREAM_FORMATS = ("csv", "jsonl")
#: Text a spreadsheet runs as a formula when a cell starts with it (OWASP's CSV injection
#: list, plus the full-width forms some locales accept).
FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


@dataclass
class Exported:
    """What ``write_export`` wrote: the JSON summary of ``garment export --json``."""

    catalogue: str  # the folder ``image_path`` is relative to
    out: str  # the file, or "-" for a stream
    format: str  # csv, jsonl or parquet
    rows: int
    model_id: str | None  # whose labels; None before the catalogue is classified


def _status(r: dict[str, Any]) -> str:
    """One word per product: the packshot download's status (ok, noai, robots, too_small,
    ...), "no_image" without a packshot, "error" when a downloaded one could not be classified."""
    if r.get("image_status") is None:
        return "no_image"
    if r["image_status"] == "ok" and r.get("prediction_status") not in (None, "ok"):
        return str(r["prediction_status"])
    return str(r["image_status"])


def export_rows(catalogue: Catalogue, model_id: str | None = None) -> list[dict[str, Any]]:
    """The export table as dicts with exactly ``COLUMNS``; missing values are None.
    ``top3`` is a list of ``{"label", "probability"}``, best first."""
    rows = []
    for r in catalogue.products_with_labels(model_id):
        row = {c: r.get(c) for c in COLUMNS}
        ok = r.get("image_status") == "ok" and r.get("image_path")
        # Relative to the catalogue folder (``Exported.catalogue``), so a moved folder still reads.
        row["image_path"] = r["image_path"] if ok else None
        if not ok:  # a failed download has no file, size or hash worth exporting
            row.update(width=None, height=None, sha256=None)
        row["status"] = _status(r)
        top3 = r.get("top3") or []
        row["top3"] = [{"label": str(c), "probability": float(p)} for c, p in top3] or None
        row["top_label"] = str(top3[0][0]) if top3 else None
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


def _csv_row(r: dict[str, Any]) -> dict[str, Any]:
    # A list in a CSV cell is JSON text (then neutralised like any other text).
    top3 = None if r["top3"] is None else json.dumps(r["top3"], ensure_ascii=False)
    return {k: csv_cell(top3 if k == "top3" else v) for k, v in r.items()}


def _write_text(rows: list[dict[str, Any]], fmt: str, f: TextIO) -> None:
    if fmt == "csv":
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        # Only here: JSONL and Parquet keep the raw text, read by programs not sheets.
        writer.writerows(_csv_row(r) for r in rows)
    else:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _write_parquet(rows: list[dict[str, Any]], out: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise GarmentError(f"writing {out} needs pyarrow: pip install 'garment[parquet]', "
                           "or export to .csv or .jsonl") from None
    top3 = pa.list_(pa.struct([("label", pa.string()), ("probability", pa.float64())]))
    schema = pa.schema([(c, pa.float64() if c in FLOAT_COLUMNS else
                         pa.int64() if c in INT_COLUMNS else
                         top3 if c == "top3" else
                         pa.string()) for c in COLUMNS])
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, out)


def _format(out: str | Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in (*STREAM_FORMATS, "parquet") or (str(out) == "-" and fmt not in STREAM_FORMATS):
            allowed = STREAM_FORMATS if str(out) == "-" else (*STREAM_FORMATS, "parquet")
            raise GarmentError(f"cannot export {fmt!r} to {out}: use one of {', '.join(allowed)}")
        return fmt
    if str(out) == "-":
        return "csv"
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise GarmentError(f"cannot export to {out}: the file name must end in {', '.join(FORMATS)} "
                           "(or pass --out - for standard output)")
    return suffix[1:]


def write_export(catalogue_dir: str | Path, out: str | Path, model: str | None = None,
                 fmt: str | None = None, stream: TextIO | None = None) -> Exported:
    """Write the catalogue in ``catalogue_dir`` to ``out``: a file (format from ``fmt``, else
    its extension) or, for ``out == "-"``, ``stream`` (csv or jsonl).
    ``model`` is a stored model id or a model folder (default: the latest classified)."""
    from garment.report import resolve_model

    fmt = _format(out, fmt)
    with Catalogue.open(catalogue_dir, create=False, readonly=True) as cat:
        mid = resolve_model(cat, model)
        rows = export_rows(cat, mid)
    summary = Exported(str(catalogue_dir), str(out), fmt, len(rows), mid)
    if str(out) == "-":
        if stream is None:
            raise ValueError("out '-' needs the stream to write to")
        _write_text(rows, fmt, stream)
        return summary
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        _write_parquet(rows, out)
    else:
        with open(out, "w", newline="", encoding="utf-8") as f:
            _write_text(rows, fmt, f)
    return summary


def export(catalogue_dir: str | Path, out: str | Path, model_id: str | None = None) -> int:
    """Write the catalogue in ``catalogue_dir`` to ``out`` (format from its extension);
    returns the number of rows."""
    return write_export(catalogue_dir, out, model_id).rows
