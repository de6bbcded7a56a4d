"""The catalogue's predictions, on either backend: one model's answers per image, what
fusion and the report read of them, and the claims by which several classify processes
split a catalogue's images."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garment.store.backend import BackendOps
from garment.store.schema import now as _now

CLAIM_TTL_S = 600.0  # a classify process's claim on images lasts this long


@dataclass(frozen=True)
class ImageRow:
    """A stored packshot, as classification reads it."""

    image_id: int
    product_id: int
    path: Path
    url: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Prediction:
    """One model's answer for one image."""

    image_id: int
    label: str | None
    label_index: int | None
    confidence: float | None
    top3: list[tuple[str, float]] | None = None
    status: str = "ok"
    error: str | None = None
    probs: list[float] | None = None  # every class probability, for fusion with text
    score: float | None = None  # the in-scope score


class PredictionStore(BackendOps):
    """The prediction half of ``Catalogue`` (a mixin: the backend gives ``_q``, ``_many``,
    ``_tx``, ``_replace`` and its dialect's ``_WRITE_ORDER``, ``_CLOCK``, ``_SKIP_LOCKED``)."""

    _WRITE_ORDER: str
    _CLOCK: str
    _SKIP_LOCKED: str

    def _image_row(self, r: Any) -> ImageRow:
        raise NotImplementedError

    # -- predictions -------------------------------------------------------------------
    def record_predictions(self, model_id: str, rows: Iterable[Prediction]) -> int:
        """Store (or replace) ``model_id``'s predictions; returns how many were written."""
        now = _now()
        values = [(p.image_id, model_id, p.label, p.label_index, p.confidence,
                   None if p.top3 is None else json.dumps([list(t) for t in p.top3]),
                   p.status, p.error, now,
                   None if p.probs is None else json.dumps([round(float(q), 5) for q in p.probs]),
                   p.score) for p in rows]
        if values:
            with self._tx():
                self._many(self._replace("predictions", (
                    "image_id", "model_id", "label", "label_index", "confidence", "top3", "status",
                    "error", "created", "probs", "score"), ("image_id", "model_id")), values)
        return len(values)

    def models(self) -> list[str]:
        """Model ids with predictions, most recently written last."""
        rows = self._q(f"SELECT model_id, MAX(created) AS c, {self._WRITE_ORDER} AS r "
                       "FROM predictions GROUP BY model_id ORDER BY c, r")
        return [r[0] for r in rows]

    def predicted(self, model_id: str) -> set[int]:
        """Ids of the images ``model_id`` answered (status ok)."""
        rows = self._q("SELECT image_id FROM predictions WHERE model_id=? AND status='ok'", (model_id,))
        return {int(r[0]) for r in rows}

    def image_answers(self, model_id: str) -> dict[int, tuple[list[float], float]]:
        """product_id -> (every class probability, in-scope score) of ``model_id``'s usable
        answer for its packshot (status ok, probabilities and score present)."""
        rows = self._q(
            "SELECT i.product_id, pr.probs, pr.score FROM images i "
            "JOIN predictions pr ON pr.image_id = i.id AND pr.model_id = ? WHERE i.role = 'packshot' "
            "AND pr.status = 'ok' AND pr.probs IS NOT NULL AND pr.score IS NOT NULL", (model_id,))
        return {int(r[0]): (json.loads(r[1]), float(r[2])) for r in rows}

    def scores(self, model_id: str | None) -> dict[int, float]:
        """image_id -> ``model_id``'s in-scope score (images it classified)."""
        rows = self._q("SELECT image_id, score FROM predictions WHERE model_id = ? AND status = 'ok' "
                       "AND score IS NOT NULL", (model_id,))
        return {int(r[0]): float(r[1]) for r in rows}

    def failed_predictions(self, model_id: str | None) -> list[dict[str, Any]]:
        """``model_id``'s failed answers: the product's name and URL, and the error."""
        return [dict(x) for x in self._q(
            "SELECT p.name, p.canonical_url AS url, pr.error FROM predictions pr "
            "JOIN images i ON i.id = pr.image_id JOIN products p ON p.id = i.product_id "
            "WHERE pr.model_id = ? AND pr.status != 'ok' ORDER BY p.id", (model_id,))]

    # -- claims: several classify processes share the work -----------------------------
    def claim_images(self, model_id: str, owner: str, limit: int = 256,
                     ttl_s: float = CLAIM_TTL_S) -> list[ImageRow]:
        """Claim up to ``limit`` stored packshots that ``model_id`` has not answered (status
        ok) and that no other process holds, for ``ttl_s`` seconds, for ``owner`` (a token
        unique to the claiming process); in id order. An image is never handed to two
        owners while its claim lasts, nor twice to one owner (one it failed on stays
        claimed until ``release_claims``); a claim past its expiry is taken over."""
        clock = self._CLOCK
        args: list[Any] = [model_id, model_id, owner]
        args = [*([time.time()] if clock == "?" else []), *args]
        sql = (f"WITH now AS (SELECT {clock} AS t), todo AS ("
               "SELECT i.id FROM images i WHERE i.status = 'ok' AND i.role = 'packshot' "
               "AND NOT EXISTS (SELECT 1 FROM predictions pr WHERE pr.image_id = i.id "
               "AND pr.model_id = ? AND pr.status = 'ok') "
               "AND NOT EXISTS (SELECT 1 FROM claims c, now WHERE c.image_id = i.id AND c.model_id = ? "
               "AND (c.expires > now.t OR c.owner = ?)) "
               f"ORDER BY i.id LIMIT ? {self._SKIP_LOCKED}) "
               "INSERT INTO claims (image_id, model_id, owner, expires) "
               "SELECT todo.id, ?, ?, now.t + ? FROM todo, now WHERE true "
               "ON CONFLICT (image_id, model_id) DO UPDATE SET owner = excluded.owner, "
               "expires = excluded.expires WHERE claims.expires <= excluded.expires - ? "
               "AND claims.owner <> excluded.owner RETURNING image_id")
        args += [limit, model_id, owner, ttl_s, ttl_s]
        with self._tx():
            ids = [int(r[0]) for r in self._q(sql, args).fetchall()]
        if not ids:
            return []
        rows = self._q("SELECT id, product_id, path, url, sha256, width, height FROM images "
                       f"WHERE id IN ({','.join('?' * len(ids))}) ORDER BY id", ids).fetchall()
        return [self._image_row(r) for r in rows]

    def release_claims(self, model_id: str, owner: str) -> None:
        """Drop ``owner``'s claims (its images answered or given up: others may try them)."""
        with self._tx():
            self._q("DELETE FROM claims WHERE model_id = ? AND owner = ?", (model_id, owner))
