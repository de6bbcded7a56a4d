"""The catalogue's labels, on either backend: every product with its final label, a person's
labels (append-only events, undo), text labels, fused labels and catalogue-wide settings."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from garment.errors import GarmentError
from garment.store.backend import BackendOps
from garment.store.schema import now as _now


class LabelStore(BackendOps):
    """The label half of ``Catalogue`` (a mixin: the backend gives ``_q``, ``_many``, ``_tx``
    and ``_replace``)."""

    folder: Path

    def models(self) -> list[str]:
        raise NotImplementedError

    def products_with_labels(self, model_id: str | None = None,
                             product_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """One row per product (of ``product_ids`` when given): its fields, its packshot and
        ``model_id``'s label (default: the model whose predictions were written last; empty if none).

        A human label wins: ``label``/``label_index`` are the person's, ``label_source`` is
        "human" and ``confidence`` 1.0; ``predicted_*`` keep what the machine said, and
        ``image_*``/``text_*`` stay as they are."""
        if model_id is None:
            models = self.models()
            model_id = models[-1] if models else None
        ids = [] if product_ids is None else [int(i) for i in product_ids]
        if product_ids is not None and not ids:
            return []
        where = "" if product_ids is None else f"WHERE p.id IN ({','.join('?' * len(ids))})"
        rows = self._q(
            "SELECT p.id AS product_id, p.canonical_url AS product_url, p.url, p.sku, "
            "p.name, p.brand, p.price, p.currency, p.availability, p.category, p.description, "
            "p.extractor, p.updated AS crawled_at, "
            "i.id AS image_id, i.url AS image_url, i.status AS image_status, "
            "i.path AS image_path, i.width, i.height, i.sha256, "
            "pr.label AS image_label, pr.label_index AS image_label_index, "
            "pr.confidence AS image_confidence, pr.top3, pr.score, pr.status AS prediction_status, "
            "t.label AS text_label, t.label_index AS text_label_index, "
            "t.confidence AS text_confidence, t.evidence AS text_evidence, "
            "l.label AS fused_label, l.label_index AS fused_label_index, "
            "l.confidence AS fused_confidence, l.label_source, l.conflict, "
            "h.label AS human_label, h.label_index AS human_label_index, h.created AS human_created "
            "FROM products p "
            "LEFT JOIN images i ON i.product_id = p.id AND i.role = 'packshot' "
            "LEFT JOIN predictions pr ON pr.image_id = i.id AND pr.model_id = ? "
            "LEFT JOIN text_labels t ON t.product_id = p.id "
            "LEFT JOIN labels l ON l.product_id = p.id AND l.model_id = ? "
            "LEFT JOIN human_labels h ON h.product_id = p.id "
            f"{where} ORDER BY p.id", (model_id, model_id, *ids)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["top3"] = json.loads(d["top3"]) if d["top3"] else None
            # The final label: the fused one where classify fused image and text, else the image's.
            if d["label_source"] is not None:
                d["label"], d["label_index"] = d.pop("fused_label"), d.pop("fused_label_index")
                d["confidence"] = d.pop("fused_confidence")
            else:
                for key in ("fused_label", "fused_label_index", "fused_confidence"):
                    d.pop(key)
                d["label"], d["label_index"] = d["image_label"], d["image_label_index"]
                d["confidence"] = d["image_confidence"]
                d["label_source"] = "image" if d["image_label"] is not None else None
            d["conflict"] = bool(d["conflict"]) if d["conflict"] is not None else None
            d["model_id"] = model_id if d["label"] is not None else None
            for key in ("label", "label_index", "confidence", "label_source"):
                d["predicted_" + key] = d[key]
            if d["human_label"] is not None:
                d["label"], d["label_index"] = d["human_label"], d["human_label_index"]
                d["confidence"], d["label_source"] = 1.0, "human"
            out.append(d)
        return out

    # -- human labels --------------------------------------------------------------------
    def set_human_labels(self, labels: dict[int, str]) -> int:
        """Record a person's labels, product_id -> a class name or "other", as one batch
        (one undo takes it all back); returns how many were written. The predictions stay."""
        from garment import CLASSES, OTHER, label_index

        rows: list[tuple[int, str, str | None, int | None]] = []
        for pid, label in labels.items():
            index = label_index(label)
            if index is None:
                raise GarmentError(f"unknown label {label!r}: use one of {', '.join(CLASSES)} or {OTHER!r}")
            rows.append((int(pid), "set", label, index))
        return self._human_events(rows)

    def set_human_label(self, product_id: int, label: str) -> None:
        """Record a person's label for one product (a class name or "other")."""
        self.set_human_labels({product_id: label})

    def clear_human_label(self, product_id: int) -> None:
        """Take a product back to its prediction (recorded as an event, so undo restores
        the human label)."""
        self._human_events([(int(product_id), "clear", None, None)])

    def _human_events(self, rows: list[tuple[int, str, str | None, int | None]]) -> int:
        if not rows:
            return 0
        known = {r[0] for r in self._q(
            f"SELECT id FROM products WHERE id IN ({','.join('?' * len(rows))})", [r[0] for r in rows])}
        missing = sorted({r[0] for r in rows} - known)
        if missing:
            raise GarmentError(f"no product with id {missing[0]} in {self.folder}")
        now = _now()
        with self._tx():
            batch = self._q("SELECT COALESCE(MAX(batch), 0) + 1 FROM human_label_events").fetchone()[0]
            self._many(
                "INSERT INTO human_label_events (product_id, action, label, label_index, batch, created) "
                "VALUES (?, ?, ?, ?, ?, ?)", [(*r, batch, now) for r in rows])
        return len(rows)

    def undo_human_label(self, product_id: int | None = None) -> list[int]:
        """Take back the latest human-label change still in force (of ``product_id`` when
        given, else of any product: a whole batch, such as an accepted page); returns the
        product ids whose label changed back (empty when there was nothing to undo)."""
        where, args = ("AND product_id = ?", (int(product_id),)) if product_id is not None else ("", ())
        row = self._q(f"SELECT id, batch FROM human_label_events WHERE undone IS NULL {where} "
                                "ORDER BY id DESC LIMIT 1", args).fetchone()
        if row is None:
            return []
        scope, scope_args = (("id = ?", (row["id"],)) if product_id is not None
                             else ("batch = ?", (row["batch"],)))
        with self._tx():
            pids = [r[0] for r in self._q(
                f"SELECT DISTINCT product_id FROM human_label_events WHERE undone IS NULL AND {scope}", scope_args)]
            self._q(f"UPDATE human_label_events SET undone = ? WHERE undone IS NULL AND {scope}",
                              (_now(), *scope_args))
        return sorted(pids)

    def human_labels(self) -> dict[int, dict[str, Any]]:
        """product_id -> its current human label (label, label_index, created)."""
        return {int(r["product_id"]): dict(r) for r in self._q("SELECT * FROM human_labels")}

    def human_label_history(self, product_id: int | None = None) -> list[dict[str, Any]]:
        """Every human-label event (of ``product_id`` when given), oldest first."""
        where, args = ("WHERE product_id = ?", (int(product_id),)) if product_id is not None else ("", ())
        return [dict(r) for r in self._q(
            f"SELECT * FROM human_label_events {where} ORDER BY id", args)]

    # -- text labels, fused labels and settings ----------------------------------------
    def record_text_labels(self, labeller: str, rows: Iterable[tuple[int, dict[str, Any]]]) -> int:
        """Store (or replace) each product's text label: (product_id, ``TextLabel.as_dict()``-like
        dict with label, label_index, confidence, field and evidence)."""
        now = _now()
        values = [(pid, t.get("label"), t.get("label_index"), t.get("confidence"), t.get("field"),
                   t.get("evidence"), labeller, now) for pid, t in rows]
        with self._tx():
            self._many(self._replace("text_labels", ("product_id", "label", "label_index", "confidence",
                                                     "field", "evidence", "labeller", "created"),
                                     ("product_id",)), values)
        return len(values)

    def text_labels(self) -> dict[int, dict[str, Any]]:
        """product_id -> its stored text label row."""
        return {int(r["product_id"]): dict(r) for r in self._q("SELECT * FROM text_labels")}

    def record_labels(self, model_id: str, rows: Iterable[dict[str, Any]]) -> int:
        """Store (or replace) the final labels of ``model_id``: dicts with product_id, label,
        label_index, confidence, label_source and conflict."""
        now = _now()
        values = [(r["product_id"], model_id, r.get("label"), r.get("label_index"), r.get("confidence"),
                   r["label_source"], int(bool(r.get("conflict"))), now) for r in rows]
        with self._tx():
            self._many(self._replace("labels", ("product_id", "model_id", "label", "label_index", "confidence",
                                                "label_source", "conflict", "created"),
                                     ("product_id", "model_id")), values)
        return len(values)

    def replace_labels(self, model_id: str, rows: Iterable[dict[str, Any]]) -> int:
        """Make ``rows`` the only final labels of ``model_id`` (those of products no longer
        labelled go), in one transaction."""
        rows = list(rows)
        with self._tx():
            self._q("DELETE FROM labels WHERE model_id = ?", (model_id,))
            return self.record_labels(model_id, rows)

    def get_setting(self, key: str) -> str | None:
        row = self._q("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str | None) -> None:
        """Set (or with None, clear) a catalogue-wide setting."""
        with self._tx():
            if value is None:
                self._q("DELETE FROM settings WHERE key=?", (key,))
            else:
                self._q(self._replace("settings", ("key", "value", "updated"), ("key",)),
                        (key, value, _now()))

