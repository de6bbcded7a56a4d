"""Store: the catalogue of products, packshots, crawl runs, errors, predictions and labels,
in SQLite (a folder: ``catalogue.sqlite``, WAL, + ``images/``) or PostgreSQL
(``postgresql://...``, its files in a shared folder: ``garment.store.postgres``).

``Catalogue.open(target)`` gives the same interface on both. The catalogue is written by
``garment scrape``, read by ``classify`` (through ``claim_images``/``record_predictions``)
and by ``export``/``report`` (through ``products_with_labels``). Products are upserted by
canonical URL, then by (site, sku), so re-runs, resumes and concurrent writers never
duplicate them. Each product has at most one packshot row; a failed download is a row too,
with its status and error. The schema is built by numbered migrations
(``garment.store.schema``) recorded in ``schema_migrations``; opening a catalogue applies
the missing ones, so it is safe to open an old catalogue with new code. ``cat.folder`` is
where the catalogue's files live (``images/``, ``models/``, ``adapted/``): the catalogue
folder, or a PostgreSQL catalogue's files folder (``--images``). Modules: ``schema`` (the
migrations), ``labels`` and ``predictions`` (their halves of the interface, shared by both
backends), ``postgres`` (the second backend).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from garment.errors import GarmentError
from garment.store.labels import LabelStore
from garment.store.predictions import ImageRow, Prediction, PredictionStore
from garment.store.schema import MIGRATIONS, SCHEMA_MIGRATIONS
from garment.store.schema import now as _now

__all__ = ["DB_NAME", "IMAGES_DIR", "MIGRATIONS", "Catalogue", "ImageRow", "Prediction", "describe",
           "files_folder", "is_url", "site_of", "target"]

DB_NAME = "catalogue.sqlite"
IMAGES_DIR = "images"
URL_SCHEMES = ("postgresql://", "postgres://")

#: Image statuses that a resumed crawl retries; every other status is final.
RETRYABLE_IMAGE_STATUSES = frozenset({"failed"})

PRODUCT_FIELDS = ("url", "canonical_url", "sku", "name", "brand", "price", "currency",
                  "category", "description", "availability")

def site_of(url: str) -> str:
    """The host a URL belongs to, without ``www.`` (the unit of "same shop")."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def is_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL catalogue rather than a folder."""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def target(catalogue: str | Path, images: str | Path | None = None) -> str | Path:
    """What ``Catalogue.open`` takes for a command's ``--catalogue``/``--out`` and ``--images``:
    a folder as a Path, a PostgreSQL URL as a string carrying the files folder (``images=``).
    The library functions that take a catalogue pass it on unchanged."""
    if not is_url(str(catalogue)):
        if images is not None:
            raise GarmentError(f"--images {images}: only for a PostgreSQL catalogue (postgresql://...); "
                               f"the catalogue folder {catalogue} keeps its images inside it")
        return Path(catalogue)
    if images is None:
        return str(catalogue)
    from garment.store.postgres import with_images

    return with_images(str(catalogue), Path(images))


def describe(target: str | Path) -> str:
    """How messages and reports name catalogue ``target``: its folder, or its URL without a
    password or the files folder."""
    if is_url(str(target)):
        from garment.store.postgres import redact

        return redact(str(target))
    return str(target)


def files_folder(target: str | Path) -> Path:
    """Where catalogue ``target``'s files live (``images/``, ``models/``, ``adapted/``): the
    folder itself, or a PostgreSQL catalogue's files folder."""
    if not is_url(str(target)):
        return Path(target)
    with Catalogue.open(target, create=False, readonly=True) as cat:
        return cat.folder


class Catalogue(PredictionStore, LabelStore):
    """A catalogue: the interface, and its SQLite backend (``catalogue.sqlite`` plus
    ``images/`` in a folder). ``garment.store.postgres.PostgresCatalogue`` is the other."""

    #: The columns that order models by when their predictions were last written.
    _WRITE_ORDER = "MAX(rowid)"
    #: The claim expiry's clock: this machine's for SQLite (one machine), the server's for PostgreSQL.
    _CLOCK = "?"
    _SKIP_LOCKED = ""

    def __init__(self, folder: Path, conn: Any):
        self.folder = folder
        self.conn = conn
        self.statements = 0  # statements sent (postgres.traced_round_trips counts network round trips)
        self._depth = 0

    @property
    def name(self) -> str:
        """How messages name this catalogue: its folder, or its URL without a password."""
        return str(self.folder)

    # -- opening ----------------------------------------------------------------------
    @classmethod
    def open(cls, target: str | Path, create: bool = True, readonly: bool = False,
             images: str | Path | None = None) -> Catalogue:
        """Open (and migrate) the catalogue ``target``: a folder (SQLite) or a
        ``postgresql://`` URL; ``create`` makes a new one.

        ``readonly`` opens an existing catalogue for reading only (``export``, ``report``):
        nothing is written, so a catalogue on a read-only disk or folder, or one another
        user owns, can be read. One whose schema is behind this garment is opened for
        writing instead, to migrate it. ``images`` is a PostgreSQL catalogue's files folder
        (recorded at creation; given again, it overrides the recorded one).
        """
        if is_url(str(target)):
            from garment.store.postgres import PostgresCatalogue

            return PostgresCatalogue.connect(str(target), create, readonly, images)
        if images is not None:
            raise GarmentError(f"images={images}: only for a PostgreSQL catalogue; the catalogue "
                               f"folder {target} keeps its images inside it")
        if sqlite3.sqlite_version_info < (3, 35, 0):  # INSERT ... RETURNING
            raise GarmentError(f"SQLite {sqlite3.sqlite_version} is older than 3.35, which garment's "
                               "catalogue needs: use a Python built with a newer SQLite")
        folder = Path(target)
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

    @staticmethod
    def watcher(target: str | Path) -> Callable[[], object] | None:
        """A function (safe from any thread) giving a stamp that changes whenever a change to
        catalogue ``target`` is committed, or None when it cannot be watched (e.g. a read-only
        folder without the WAL's files): SQLite's ``PRAGMA data_version``, PostgreSQL's
        snapshot."""
        if is_url(str(target)):
            from garment.store.postgres import PostgresCatalogue

            return PostgresCatalogue.watcher(str(target))
        lock = threading.Lock()
        try:  # used only under the lock, so one connection serves every thread
            conn = sqlite3.connect((Path(target) / DB_NAME).resolve().as_uri() + "?mode=ro", uri=True,
                                   check_same_thread=False)
            conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None

        def stamp() -> object:
            with lock:
                return int(conn.execute("PRAGMA data_version").fetchone()[0])
        return stamp

    def migrate(self) -> list[int]:
        """Apply the migrations this catalogue lacks; returns the versions applied."""
        with self.conn:
            self.conn.execute(SCHEMA_MIGRATIONS)
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

    def migrations(self) -> list[int]:
        """The versions of the migrations applied, in order."""
        return [int(r[0]) for r in self._q("SELECT version FROM schema_migrations ORDER BY version")]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the backend's primitives (PostgresCatalogue overrides them) -------------------
    def _q(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """Run one statement (``?`` placeholders); returns its cursor."""
        self.statements += 1
        return self.conn.execute(sql, args)

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.statements += 1
        self.conn.executemany(sql, rows)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """A transaction; nested ones join the outermost."""
        if self._depth:
            yield
            return
        self._depth += 1
        try:
            with self.conn:
                yield
        finally:
            self._depth -= 1

    def _replace(self, table: str, cols: Sequence[str], keys: Sequence[str]) -> str:
        """An insert that replaces the row with the same ``keys``."""
        return f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

    # -- crawl runs and errors ---------------------------------------------------------
    def start_run(self, config: dict[str, Any], shared: bool = False) -> int:
        """Record a new crawl run; runs left 'running' by a killed crawl become
        'interrupted', unless ``shared``: a worker of a crawl shared by several processes
        leaves the others' runs alone. A catalogue URL in ``config["out"]`` is recorded without
        its password."""
        if is_url(str(config.get("out", ""))):
            config = {**config, "out": describe(str(config["out"]))}
        with self._tx():
            if not shared:
                self._q("UPDATE crawl_runs SET status='interrupted' WHERE status='running'")
            row = self._q("INSERT INTO crawl_runs (started, status, config) VALUES (?, 'running', ?) "
                          "RETURNING id", (_now(), json.dumps(config, default=str))).fetchone()
        return int(row[0])

    def finish_run(self, run_id: int, stats: dict[str, Any], status: str = "finished") -> None:
        with self._tx():
            self._q("UPDATE crawl_runs SET finished=?, status=?, stats=? WHERE id=?",
                    (_now(), status, json.dumps(stats), run_id))

    def runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._q("SELECT * FROM crawl_runs ORDER BY id").fetchall()]

    def record_error(self, run_id: int | None, url: str, kind: str, reason: str,
                     status: int | None = None, detail: str | None = None) -> None:
        with self._tx():
            self._q("INSERT INTO errors (run_id, url, kind, reason, status, detail, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, url, kind, reason, status, (detail or "")[:500], _now()))

    def errors(self, run_id: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM errors"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql, args = sql + " WHERE run_id=?", (run_id,)
        return [dict(r) for r in self._q(sql + " ORDER BY id", args)]

    # -- products and images -----------------------------------------------------------
    def _find_product(self, canonical: str, site: str,
                      sku: str | None) -> tuple[int | None, bool, dict[str, Any]]:
        """(id, found by canonical URL, its sources) of the stored product this one is: the
        one with this canonical URL, else the first with this (site, sku)."""
        row = self._q("SELECT id, canonical_url, sources FROM products WHERE canonical_url=? "
                      "OR (site=? AND sku=?) ORDER BY canonical_url=? DESC, id LIMIT 1",
                      (canonical, site, sku or None, canonical)).fetchone()
        if row is None:
            return None, False, {}
        return int(row[0]), row[1] == canonical, dict(json.loads(row[2] or "{}"))

    def _upsert_product(self, p: dict[str, Any], run_id: int | None) -> int:
        canonical = p.get("canonical_url") or p["url"]
        site = site_of(canonical)
        values = {k: p.get(k) for k in PRODUCT_FIELDS}
        values["canonical_url"] = canonical
        values.update(site=site, image_urls=json.dumps(list(p.get("image_urls") or [])),
                      extractor=p.get("extractor") or "unknown",
                      sources=json.dumps(p.get("sources") or {}), last_run=run_id,
                      updated=_now())
        pid, by_url, stored = self._find_product(canonical, site, p.get("sku"))
        if pid is not None and not by_url:
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
            row = self._q(f"INSERT INTO products ({cols}) VALUES ({marks}) RETURNING id",
                          tuple(values.values())).fetchone()
            return int(row[0])
        sets = ", ".join(f"{k}=?" for k in values)
        self._q(f"UPDATE products SET {sets} WHERE id=?", (*values.values(), pid))
        return pid

    def _upsert_image(self, product_id: int, img: dict[str, Any], run_id: int | None) -> Any:
        """Insert or update a product's image row; the cursor whose one row is its id."""
        cols = ("url", "final_url", "status", "error", "path", "width", "height", "format",
                "sha256", "bytes", "content_type", "choice")
        values = [img.get(c) for c in cols]
        values[0] = values[0] or ""
        return self._q(
            f"INSERT INTO images (product_id, role, {', '.join(cols)}, run_id, fetched) "
            f"VALUES (?, ?, {', '.join('?' for _ in cols)}, ?, ?) "
            f"ON CONFLICT (product_id, role) DO UPDATE SET "
            + ", ".join(f"{c}=excluded.{c}" for c in (*cols, "run_id", "fetched")) + " RETURNING id",
            (product_id, img.get("role", "packshot"), *values, run_id, _now()))

    def save_product(self, product: dict[str, Any], image: dict[str, Any] | None,
                     run_id: int | None = None) -> tuple[int, int | None]:
        """Upsert a product and its packshot row in one transaction.

        ``product`` holds the fields of ``PRODUCT_FIELDS`` plus ``image_urls``,
        ``extractor`` and ``sources``; ``image`` the download's outcome (``status``,
        ``url``, ``path``, ``width``, ...). Returns (product_id, image_id).
        """
        with self._tx():
            self._lock_product(product)
            pid = self._upsert_product(product, run_id)
            iid = None if image is None else int(self._upsert_image(pid, image, run_id).fetchone()[0])
        return pid, iid

    def _lock_product(self, product: dict[str, Any]) -> None:
        """Make concurrent writers of one product wait for each other. SQLite has one writer
        at a time already: its write lock is taken here, before the look-up."""
        self._q("UPDATE products SET id = id WHERE 0")

    def done_urls(self) -> set[str]:
        """URLs (fetched and canonical) of products a resumed crawl need not fetch again:
        stored with a packshot whose status is final."""
        rows = self._q(
            "SELECT p.url, p.canonical_url, i.status FROM products p "
            "LEFT JOIN images i ON i.product_id = p.id AND i.role = 'packshot'")
        done: set[str] = set()
        for url, canonical, status in rows:
            if status is not None and status not in RETRYABLE_IMAGE_STATUSES:
                done.update((url, canonical))
        return done

    def products(self) -> list[dict[str, Any]]:
        out = []
        for r in self._q("SELECT * FROM products ORDER BY id").fetchall():
            d = dict(r)
            d["image_urls"] = json.loads(d["image_urls"])
            d["sources"] = json.loads(d["sources"])
            out.append(d)
        return out

    def images(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._q("SELECT * FROM images ORDER BY id")]

    def image(self, image_id: int | None = None, product_id: int | None = None) -> dict[str, Any] | None:
        """One image row: by its id, or a product's packshot; None when there is none."""
        if image_id is not None:
            row = self._q("SELECT * FROM images WHERE id=?", (image_id,)).fetchone()
        else:
            row = self._q("SELECT * FROM images WHERE product_id=? AND role='packshot'", (product_id,)).fetchone()
        return None if row is None else dict(row)

    def _image_row(self, r: Any) -> ImageRow:
        return ImageRow(r["id"], r["product_id"], self.folder / (r["path"] or ""),
                        r["url"], r["sha256"] or "", r["width"] or 0, r["height"] or 0)

    def iter_images(self, status: str = "ok") -> Iterator[ImageRow]:
        """Stored packshots with ``status`` (default: downloaded and valid), in id order."""
        rows = self._q(
            "SELECT id, product_id, path, url, sha256, width, height FROM images "
            "WHERE status=? AND role='packshot' ORDER BY id", (status,)).fetchall()
        for r in rows:
            yield self._image_row(r)

    def counts(self) -> dict[str, Any]:
        """Summary numbers: products, images by status, errors by reason."""
        q = self._q
        return {
            "products": q("SELECT COUNT(*) FROM products").fetchone()[0],
            "images": {r[0]: r[1] for r in q("SELECT status, COUNT(*) FROM images GROUP BY status")},
            "errors": {r[0]: r[1] for r in q("SELECT reason, COUNT(*) FROM errors GROUP BY reason")},
        }
