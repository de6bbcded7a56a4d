"""Store: the catalogue, one SQLite file (WAL) of products, packshots, crawl runs, errors
and predictions.

``DIR/catalogue.sqlite`` is written by ``garment scrape``, read by ``classify`` (through
``iter_images``/``record_predictions``) and by ``export``/``report`` (through
``products_with_labels``). Products are upserted by canonical URL, then by (site, sku),
so re-runs and resumes never duplicate them. Each product has at most one packshot row;
a failed download is a row too, with its status and error. The schema is built by
numbered migrations recorded in ``schema_migrations``; opening a catalogue applies the
missing ones, so it is safe to open an old file with new code.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from garment.errors import GarmentError

DB_NAME = "catalogue.sqlite"
IMAGES_DIR = "images"

#: Image statuses that a resumed crawl retries; every other status is final.
RETRYABLE_IMAGE_STATUSES = frozenset({"failed"})

PRODUCT_FIELDS = ("url", "canonical_url", "sku", "name", "brand", "price", "currency",
                  "category", "description", "availability")

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "catalogue", """
        CREATE TABLE products (
            id INTEGER PRIMARY KEY,
            canonical_url TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            site TEXT NOT NULL,
            sku TEXT, name TEXT, brand TEXT, price REAL, currency TEXT,
            category TEXT,                       -- breadcrumb path, ' > ' separated
            description TEXT,
            image_urls TEXT NOT NULL DEFAULT '[]',  -- JSON list, packshot first
            extractor TEXT NOT NULL,             -- layer that said "this is a product"
            sources TEXT NOT NULL DEFAULT '{}',  -- JSON: field -> layer that gave it
            first_run INTEGER, last_run INTEGER,
            created TEXT NOT NULL, updated TEXT NOT NULL
        );
        CREATE INDEX products_site_sku ON products(site, sku);
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
            role TEXT NOT NULL DEFAULT 'packshot',
            url TEXT NOT NULL,
            final_url TEXT,
            status TEXT NOT NULL,                -- ok, noai, robots, too_small, ...
            error TEXT,
            path TEXT,                           -- relative to the catalogue folder
            width INTEGER, height INTEGER, format TEXT, sha256 TEXT, bytes INTEGER,
            content_type TEXT,
            run_id INTEGER, fetched TEXT,
            UNIQUE (product_id, role)
        );
        CREATE TABLE crawl_runs (
            id INTEGER PRIMARY KEY,
            started TEXT NOT NULL, finished TEXT,
            status TEXT NOT NULL,                -- running, finished, interrupted
            config TEXT NOT NULL DEFAULT '{}',
            stats TEXT
        );
        CREATE TABLE errors (
            id INTEGER PRIMARY KEY,
            run_id INTEGER,
            url TEXT NOT NULL,
            kind TEXT NOT NULL,                  -- page, image, sitemap
            reason TEXT NOT NULL,
            status INTEGER,
            detail TEXT,
            created TEXT NOT NULL
        );
        CREATE INDEX errors_run ON errors(run_id);
    """),
    (2, "predictions", """
        CREATE TABLE predictions (
            image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            label TEXT, label_index INTEGER, confidence REAL,
            top3 TEXT,                           -- JSON [[label, probability], ...]
            status TEXT NOT NULL DEFAULT 'ok',
            error TEXT,
            created TEXT NOT NULL,
            PRIMARY KEY (image_id, model_id)
        );
    """),
    (3, "text and fused labels", """
        CREATE TABLE text_labels (
            product_id INTEGER PRIMARY KEY REFERENCES products(id) ON DELETE CASCADE,
            label TEXT, label_index INTEGER,     -- a class, 'other' (-1), or NULL: no label
            confidence REAL,
            field TEXT,                          -- category, name, url, description, map
            evidence TEXT,                       -- readable: which field, which words
            labeller TEXT NOT NULL,              -- version of vocabulary + user map
            created TEXT NOT NULL
        );
        CREATE TABLE labels (                    -- the final label: image and text fused
            product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            label TEXT, label_index INTEGER, confidence REAL,
            label_source TEXT NOT NULL,          -- image, text or agree
            conflict INTEGER NOT NULL DEFAULT 0, -- image and text named different labels
            created TEXT NOT NULL,
            PRIMARY KEY (product_id, model_id)
        );
        CREATE TABLE settings (                  -- catalogue-wide choices, e.g. its model
            key TEXT PRIMARY KEY, value TEXT NOT NULL, updated TEXT NOT NULL
        );
        -- What fusion with text needs of an image answer: every class probability and the
        -- in-scope score its "other" threshold applies to.
        ALTER TABLE predictions ADD COLUMN probs TEXT;   -- JSON [p0, ..., p9]
        ALTER TABLE predictions ADD COLUMN score REAL;
    """),
    (4, "human labels", """
        -- A person's corrections, append-only: predictions are never overwritten, and undo
        -- marks events undone instead of deleting them, so the history stays readable.
        CREATE TABLE human_label_events (
            id INTEGER PRIMARY KEY,
            product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
            action TEXT NOT NULL,                -- set (label given) or clear (back to the prediction)
            label TEXT, label_index INTEGER,     -- a class or 'other' (-1); NULL for clear
            batch INTEGER NOT NULL,              -- events written by one call: undone together
            created TEXT NOT NULL,
            undone TEXT                          -- when an undo took it back, else NULL
        );
        CREATE INDEX human_label_events_product ON human_label_events(product_id, id);
        -- The current human label of each product: its latest event still in force, if a set.
        CREATE VIEW human_labels AS
            SELECT e.product_id, e.label, e.label_index, e.created, e.id AS event_id
            FROM human_label_events e
            WHERE e.action = 'set' AND e.id = (
                SELECT MAX(id) FROM human_label_events
                WHERE product_id = e.product_id AND undone IS NULL);
    """),
    (5, "packshot choice", """
        -- Why this picture is the product's packshot (JSON: score, markup evidence, content
        -- score and reasons, the pictures judged).
        ALTER TABLE images ADD COLUMN choice TEXT;
    """),
    (6, "availability", """
        -- schema.org ItemAvailability short name: InStock, OutOfStock, PreOrder, ...
        ALTER TABLE products ADD COLUMN availability TEXT;
    """),
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def site_of(url: str) -> str:
    """The host a URL belongs to, without ``www.`` (the unit of "same shop")."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


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


class Catalogue:
    """A catalogue folder: ``catalogue.sqlite`` plus ``images/``."""

    def __init__(self, folder: Path, conn: sqlite3.Connection):
        self.folder = folder
        self.conn = conn

    # -- opening ----------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path, create: bool = True, readonly: bool = False) -> Catalogue:
        """Open (and migrate) the catalogue in ``folder``; ``create`` makes a new one.

        ``readonly`` opens an existing catalogue for reading only (``export``, ``report``):
        nothing is written, so a catalogue on a read-only disk or folder, or one another
        user owns, can be read. One whose schema is behind this garment is opened for
        writing instead, to migrate it.
        """
        folder = Path(folder)
        db = folder / DB_NAME
        if not db.exists() and (not create or readonly):
            raise GarmentError(f"no catalogue in {folder}: run `garment scrape URL --out "
                               f"{folder}` first, or pass the folder that holds {DB_NAME}")
        if readonly:
            conn = cls._connect_readonly(db)
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            if done >= {version for version, _, _ in MIGRATIONS}:
                return cls(folder, conn)
            conn.close()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(db, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; only a power cut may lose
            # the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as exc:
            raise GarmentError(f"cannot open catalogue {db}: {exc}; check the folder is "
                               "writable and the file is a SQLite database") from exc
        cat = cls(folder, conn)
        cat.migrate()
        return cat

    @staticmethod
    def _connect_readonly(db: Path) -> sqlite3.Connection:
        """A read-only connection to ``db``. SQLite reads a WAL database read-only through
        its shared-memory file, which a read-only folder may not have (it goes with the
        last writer): then, when no write-ahead log holds changes, as an immutable file."""
        uri = db.resolve().as_uri()
        wal = db.with_name(db.name + "-wal")
        for query in ("?mode=ro", "?mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(uri + query, uri=True, timeout=30)
                conn.row_factory = sqlite3.Row
                conn.execute("SELECT version FROM schema_migrations LIMIT 1").fetchall()
                return conn
            except sqlite3.Error as exc:
                error = exc
                if wal.exists() and wal.stat().st_size > 0:
                    break  # its latest changes are in the log: immutable would miss them
        raise GarmentError(f"cannot read catalogue {db} ({error}); check it is a catalogue "
                           "written by `garment scrape`, and that its folder is readable") from error

    def migrate(self) -> list[int]:
        """Apply the migrations this file lacks; returns the versions applied."""
        with self.conn:
            self.conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                              "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                              "applied TEXT NOT NULL)")
        done = {r[0] for r in self.conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            # SQLite DDL is transactional: the tables and the version row commit together.
            try:
                self.conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO "
                                        f"schema_migrations VALUES ({version}, '{name}', "
                                        f"'{_now()}');\nCOMMIT;")
            except sqlite3.OperationalError:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                # Another process opening the same catalogue migrated it meanwhile.
                if self.conn.execute("SELECT 1 FROM schema_migrations WHERE version=?",
                                     (version,)).fetchone() is None:
                    raise
                continue
            applied.append(version)
        return applied

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- crawl runs and errors ---------------------------------------------------------
    def start_run(self, config: dict[str, Any]) -> int:
        """Record a new crawl run; runs left 'running' by a killed crawl become
        'interrupted'."""
        with self.conn:
            self.conn.execute("UPDATE crawl_runs SET status='interrupted' "
                              "WHERE status='running'")
            cur = self.conn.execute(
                "INSERT INTO crawl_runs (started, status, config) VALUES (?, 'running', ?)",
                (_now(), json.dumps(config, default=str)))
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, stats: dict[str, Any], status: str = "finished") -> None:
        with self.conn:
            self.conn.execute("UPDATE crawl_runs SET finished=?, status=?, stats=? WHERE id=?",
                              (_now(), status, json.dumps(stats), run_id))

    def runs(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM crawl_runs ORDER BY id").fetchall()
        return [dict(r) for r in rows]

    def record_error(self, run_id: int | None, url: str, kind: str, reason: str,
                     status: int | None = None, detail: str | None = None) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO errors (run_id, url, kind, reason, status, detail, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, url, kind, reason, status, (detail or "")[:500], _now()))

    def errors(self, run_id: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM errors"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql, args = sql + " WHERE run_id=?", (run_id,)
        return [dict(r) for r in self.conn.execute(sql + " ORDER BY id", args)]

    # -- products and images -----------------------------------------------------------
    def _find_product(self, canonical: str, site: str,
                      sku: str | None) -> tuple[int | None, bool]:
        """(id, found by canonical URL) of the stored product this one is."""
        row = self.conn.execute("SELECT id FROM products WHERE canonical_url=?",
                                (canonical,)).fetchone()
        if row is not None:
            return int(row[0]), True
        if sku:
            row = self.conn.execute("SELECT id FROM products WHERE site=? AND sku=? "
                                    "ORDER BY id LIMIT 1", (site, sku)).fetchone()
        return (None if row is None else int(row[0])), False

    def _sources(self, pid: int) -> dict[str, Any]:
        """Which layer gave each field of stored product ``pid``."""
        row = self.conn.execute("SELECT sources FROM products WHERE id=?", (pid,)).fetchone()
        return dict(json.loads(row[0] or "{}")) if row else {}

    def _upsert_product(self, p: dict[str, Any], run_id: int | None) -> int:
        canonical = p.get("canonical_url") or p["url"]
        site = site_of(canonical)
        values = {k: p.get(k) for k in PRODUCT_FIELDS}
        values["canonical_url"] = canonical
        values.update(site=site, image_urls=json.dumps(list(p.get("image_urls") or [])),
                      extractor=p.get("extractor") or "unknown",
                      sources=json.dumps(p.get("sources") or {}), last_run=run_id,
                      updated=_now())
        pid, by_url = self._find_product(canonical, site, p.get("sku"))
        if pid is not None and not by_url:
            stored = self._sources(pid)
            if (p.get("sources") or {}).get("canonical_url") != "link" or stored.get("canonical_url") == "link":
                # The same sku under another URL: keep the URLs the product was stored under (unless
                # only this page declares its canonical URL, so the crawl's order does not matter).
                for key in ("url", "canonical_url"):
                    values.pop(key)
                sources = {k: v for k, v in (p.get("sources") or {}).items() if k != "canonical_url"}
                if "canonical_url" in stored:
                    sources["canonical_url"] = stored["canonical_url"]
                values["sources"] = json.dumps(sources)
        if pid is None:
            values.update(first_run=run_id, created=values["updated"])
            cols = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            cur = self.conn.execute(f"INSERT INTO products ({cols}) VALUES ({marks})",
                                    tuple(values.values()))
            return int(cur.lastrowid or 0)
        sets = ", ".join(f"{k}=?" for k in values)
        self.conn.execute(f"UPDATE products SET {sets} WHERE id=?", (*values.values(), pid))
        return pid

    def _upsert_image(self, product_id: int, img: dict[str, Any], run_id: int | None) -> int:
        cols = ("url", "final_url", "status", "error", "path", "width", "height", "format",
                "sha256", "bytes", "content_type", "choice")
        values = [img.get(c) for c in cols]
        values[0] = values[0] or ""
        self.conn.execute(
            f"INSERT INTO images (product_id, role, {', '.join(cols)}, run_id, fetched) "
            f"VALUES (?, ?, {', '.join('?' for _ in cols)}, ?, ?) "
            f"ON CONFLICT (product_id, role) DO UPDATE SET "
            + ", ".join(f"{c}=excluded.{c}" for c in (*cols, "run_id", "fetched")),
            (product_id, img.get("role", "packshot"), *values, run_id, _now()))
        row = self.conn.execute("SELECT id FROM images WHERE product_id=? AND role=?",
                                (product_id, img.get("role", "packshot"))).fetchone()
        return int(row[0])

    def save_product(self, product: dict[str, Any], image: dict[str, Any] | None,
                     run_id: int | None = None) -> tuple[int, int | None]:
        """Upsert a product and its packshot row in one transaction.

        ``product`` holds the fields of ``PRODUCT_FIELDS`` plus ``image_urls``,
        ``extractor`` and ``sources``; ``image`` the download's outcome (``status``,
        ``url``, ``path``, ``width``, ...). Returns (product_id, image_id).
        """
        with self.conn:
            pid = self._upsert_product(product, run_id)
            iid = None if image is None else self._upsert_image(pid, image, run_id)
        return pid, iid

    def done_urls(self) -> set[str]:
        """URLs (fetched and canonical) of products a resumed crawl need not fetch again:
        stored with a packshot whose status is final."""
        rows = self.conn.execute(
            "SELECT p.url, p.canonical_url, i.status FROM products p "
            "LEFT JOIN images i ON i.product_id = p.id AND i.role = 'packshot'")
        done: set[str] = set()
        for url, canonical, status in rows:
            if status is not None and status not in RETRYABLE_IMAGE_STATUSES:
                done.update((url, canonical))
        return done

    def products(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM products ORDER BY id").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["image_urls"] = json.loads(d["image_urls"])
            d["sources"] = json.loads(d["sources"])
            out.append(d)
        return out

    def images(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM images ORDER BY id")]

    def iter_images(self, status: str = "ok") -> Iterator[ImageRow]:
        """Stored packshots with ``status`` (default: downloaded and valid), in id order."""
        rows = self.conn.execute(
            "SELECT id, product_id, path, url, sha256, width, height FROM images "
            "WHERE status=? AND role='packshot' ORDER BY id", (status,)).fetchall()
        for r in rows:
            yield ImageRow(r["id"], r["product_id"], self.folder / (r["path"] or ""),
                           r["url"], r["sha256"] or "", r["width"] or 0, r["height"] or 0)

    def counts(self) -> dict[str, Any]:
        """Summary numbers: products, images by status, errors by reason."""
        q = self.conn.execute
        return {
            "products": q("SELECT COUNT(*) FROM products").fetchone()[0],
            "images": dict(q("SELECT status, COUNT(*) FROM images GROUP BY status").fetchall()),
            "errors": dict(q("SELECT reason, COUNT(*) FROM errors GROUP BY reason").fetchall()),
        }

    # -- predictions -------------------------------------------------------------------
    def record_predictions(self, model_id: str, rows: Iterable[Prediction]) -> int:
        """Store (or replace) ``model_id``'s predictions; returns how many were written."""
        now = _now()
        n = 0
        with self.conn:
            for p in rows:
                self.conn.execute(
                    "INSERT OR REPLACE INTO predictions (image_id, model_id, label, "
                    "label_index, confidence, top3, status, error, created, probs, score) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (p.image_id, model_id, p.label, p.label_index, p.confidence,
                     None if p.top3 is None else json.dumps([list(t) for t in p.top3]),
                     p.status, p.error, now,
                     None if p.probs is None else json.dumps([round(float(q), 5) for q in p.probs]),
                     p.score))
                n += 1
        return n

    def models(self) -> list[str]:
        """Model ids with predictions, most recently written last."""
        rows = self.conn.execute("SELECT model_id, MAX(created) AS c, MAX(rowid) AS r "
                                 "FROM predictions GROUP BY model_id ORDER BY c, r")
        return [r[0] for r in rows]

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
        where = "" if product_ids is None else f"WHERE p.id IN ({','.join('?' * len(ids))})"
        rows = self.conn.execute(
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
        known = {r[0] for r in self.conn.execute(
            f"SELECT id FROM products WHERE id IN ({','.join('?' * len(rows))})", [r[0] for r in rows])}
        missing = sorted({r[0] for r in rows} - known)
        if missing:
            raise GarmentError(f"no product with id {missing[0]} in {self.folder}")
        now = _now()
        with self.conn:
            batch = self.conn.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM human_label_events").fetchone()[0]
            self.conn.executemany(
                "INSERT INTO human_label_events (product_id, action, label, label_index, batch, created) "
                "VALUES (?, ?, ?, ?, ?, ?)", [(*r, batch, now) for r in rows])
        return len(rows)

    def undo_human_label(self, product_id: int | None = None) -> list[int]:
        """Take back the latest human-label change still in force (of ``product_id`` when
        given, else of any product: a whole batch, such as an accepted page); returns the
        product ids whose label changed back (empty when there was nothing to undo)."""
        where, args = ("AND product_id = ?", (int(product_id),)) if product_id is not None else ("", ())
        row = self.conn.execute(f"SELECT id, batch FROM human_label_events WHERE undone IS NULL {where} "
                                "ORDER BY id DESC LIMIT 1", args).fetchone()
        if row is None:
            return []
        scope, scope_args = (("id = ?", (row["id"],)) if product_id is not None
                             else ("batch = ?", (row["batch"],)))
        with self.conn:
            pids = [r[0] for r in self.conn.execute(
                f"SELECT DISTINCT product_id FROM human_label_events WHERE undone IS NULL AND {scope}", scope_args)]
            self.conn.execute(f"UPDATE human_label_events SET undone = ? WHERE undone IS NULL AND {scope}",
                              (_now(), *scope_args))
        return sorted(pids)

    def human_labels(self) -> dict[int, dict[str, Any]]:
        """product_id -> its current human label (label, label_index, created)."""
        return {int(r["product_id"]): dict(r) for r in self.conn.execute("SELECT * FROM human_labels")}

    def human_label_history(self, product_id: int | None = None) -> list[dict[str, Any]]:
        """Every human-label event (of ``product_id`` when given), oldest first."""
        where, args = ("WHERE product_id = ?", (int(product_id),)) if product_id is not None else ("", ())
        return [dict(r) for r in self.conn.execute(
            f"SELECT * FROM human_label_events {where} ORDER BY id", args)]

    # -- text labels, fused labels and settings ----------------------------------------
    def record_text_labels(self, labeller: str, rows: Iterable[tuple[int, dict[str, Any]]]) -> int:
        """Store (or replace) each product's text label: (product_id, ``TextLabel.as_dict()``-like
        dict with label, label_index, confidence, field and evidence)."""
        now = _now()
        n = 0
        with self.conn:
            for pid, t in rows:
                self.conn.execute(
                    "INSERT OR REPLACE INTO text_labels (product_id, label, label_index, confidence, "
                    "field, evidence, labeller, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (pid, t.get("label"), t.get("label_index"), t.get("confidence"), t.get("field"),
                     t.get("evidence"), labeller, now))
                n += 1
        return n

    def text_labels(self) -> dict[int, dict[str, Any]]:
        """product_id -> its stored text label row."""
        return {int(r["product_id"]): dict(r) for r in self.conn.execute("SELECT * FROM text_labels")}

    def record_labels(self, model_id: str, rows: Iterable[dict[str, Any]]) -> int:
        """Store (or replace) the final labels of ``model_id``: dicts with product_id, label,
        label_index, confidence, label_source and conflict."""
        now = _now()
        n = 0
        with self.conn:
            for r in rows:
                self.conn.execute(
                    "INSERT OR REPLACE INTO labels (product_id, model_id, label, label_index, confidence, "
                    "label_source, conflict, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (r["product_id"], model_id, r.get("label"), r.get("label_index"), r.get("confidence"),
                     r["label_source"], int(bool(r.get("conflict"))), now))
                n += 1
        return n

    def get_setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str | None) -> None:
        """Set (or with None, clear) a catalogue-wide setting."""
        with self.conn:
            if value is None:
                self.conn.execute("DELETE FROM settings WHERE key=?", (key,))
            else:
                self.conn.execute("INSERT OR REPLACE INTO settings (key, value, updated) VALUES (?, ?, ?)",
                                  (key, value, _now()))

