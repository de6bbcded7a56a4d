"""Store on PostgreSQL: the catalogue's interface (``garment.store.Catalogue``) on a server
shared by many processes and machines, through psycopg 3.

The schema and its numbered migrations are SQLite's (``garment.store.schema``, types
translated); each migration runs in one transaction under an advisory lock, so processes
opening a new catalogue at once apply it once. Writers of one product serialise on
advisory locks keyed by its canonical URL and its (site, sku) before looking it up, so
concurrent crawlers store each product once. Classify processes split the images with
``claim_images`` (``FOR UPDATE SKIP LOCKED``, and claim rows that expire). The files
(``images/``, ``models/``, ``adapted/``) live in a folder every process can reach, given
by ``images=`` (``--images``) and recorded in the ``settings`` table at creation.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from garment.errors import GarmentError
from garment.store import Catalogue, site_of
from garment.store.schema import MIGRATIONS, SCHEMA_MIGRATIONS, postgres_sql
from garment.store.schema import now as _now

IMAGES_SETTING = "images_dir"  # settings key: the files folder, recorded at creation
#: Advisory-lock keys (the two-integer key space; product locks use the one-bigint space).
MIGRATION_LOCK = (0x67726D74, 1)
CONNECT_TIMEOUT_S = 10


def redact(url: str) -> str:
    """``url`` without its password and without the ``images=`` parameter."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(":" + parts.password + "@", ":***@", 1)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "images"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def with_images(url: str, images: Path) -> str:
    """``url`` carrying the files folder ``images`` (absolute) as its ``images=`` parameter."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "images"]
    query.append(("images", str(images.expanduser().resolve())))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def split_images(url: str) -> tuple[str, Path | None]:
    """(the connection URL, the files folder its ``images=`` parameter names, or None)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query)
    images = [v for k, v in pairs if k == "images"]
    query = urlencode([(k, v) for k, v in pairs if k != "images"])
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return dsn, (Path(images[-1]) if images else None)


class Row(tuple):  # type: ignore[type-arg]
    """A result row read as SQLite's ``sqlite3.Row`` is: by position, by column name, and
    ``dict(row)``; so both backends share the code that reads rows."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Any]:
    desc = cursor.description
    if desc is None:
        return tuple
    cls = type("Row", (Row,), {"_index": {c.name: i for i, c in enumerate(desc)}})
    return cls


@lru_cache(maxsize=512)
def _dialect(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _lock_key(text: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``text``."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def traced_round_trips(cat: Catalogue) -> Iterator[list[int]]:
    """Count the network round trips PostgreSQL catalogue ``cat`` makes in the block, from
    libpq's own trace of what it sends: each Sync (extended protocol) or simple Query waits
    for the server once. Yields a one-item list, filled when the block ends."""
    count = [0]
    with tempfile.TemporaryFile() as trace:
        cat.conn.pgconn.trace(trace.fileno())
        try:
            yield count
        finally:
            cat.conn.pgconn.untrace()
            trace.seek(0)
            count[0] = sum(1 for line in trace if line.split(b"\t")[1:4:2] in ([b"F", b"Sync\n"], [b"F", b"Query"]))


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise GarmentError("a PostgreSQL catalogue needs psycopg: pip install 'garment[scale]'") from None
    return psycopg


class PostgresCatalogue(Catalogue):
    """A catalogue in a PostgreSQL database; its files in a shared folder (``folder``)."""

    _WRITE_ORDER = "MAX(xmin::text::bigint)"  # the writing transaction: later ones have larger ids
    _CLOCK = "EXTRACT(EPOCH FROM clock_timestamp())::float8"  # the server's clock: one for every machine
    _SKIP_LOCKED = "FOR UPDATE OF i SKIP LOCKED"

    def __init__(self, folder: Path, conn: Any, url: str = ""):
        super().__init__(folder, conn)
        self.url = url

    @property
    def name(self) -> str:
        return redact(self.url)

    @classmethod
    def connect(cls, url: str, create: bool = True, readonly: bool = False,
                images: str | Path | None = None) -> PostgresCatalogue:
        """Open (and migrate) the catalogue in the database ``url``; see ``Catalogue.open``."""
        psycopg = _psycopg()
        dsn, named = split_images(url)
        files = Path(images) if images is not None else named
        try:
            conn = psycopg.connect(dsn, autocommit=True, row_factory=_row_factory,
                                   connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or "no reason given"
            raise GarmentError(f"cannot connect to the catalogue {redact(dsn)}: {reason}; check the server "
                               "runs and accepts this host, user and database (postgresql://USER@HOST:PORT/DB)"
                               ) from None
        cat = cls(Path(), conn, dsn)
        try:
            cat._open(create, readonly, files)
        except BaseException:
            conn.close()
            raise
        return cat

    def _open(self, create: bool, readonly: bool, files: Path | None) -> None:
        exists = self._q("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
        if not exists and (not create or readonly):
            raise GarmentError(f"no catalogue in {self.name}: run `garment scrape URL --out {self.name} "
                               "--images DIR` first, or check the database name")
        if not exists and files is None:
            raise GarmentError(f"a new catalogue in {self.name} needs a folder for its images: pass --images "
                               "DIR (a folder every process using the catalogue can reach)")
        if not exists or not readonly or set(self.migrations()) < {v for v, _, _ in MIGRATIONS}:
            self.migrate()
        recorded = self.get_setting(IMAGES_SETTING)
        if recorded is None and files is not None and not readonly:
            self.set_setting(IMAGES_SETTING, str(files.expanduser().resolve()))
        root = files if files is not None else (Path(recorded) if recorded else None)
        if root is None:
            raise GarmentError(f"the catalogue {self.name} records no images folder: pass --images DIR "
                               "(the folder its crawl stored images in)")
        if not readonly:
            root.mkdir(parents=True, exist_ok=True)
        self.folder = root
        if readonly:
            self._q("SET default_transaction_read_only = on")

    @staticmethod
    def watcher(target: str | Path) -> Callable[[], object] | None:
        """See ``Catalogue.watcher``: the server's snapshot (its next transaction id and those
        in progress) changes whenever a writing transaction starts or ends."""
        psycopg = _psycopg()
        dsn, _ = split_images(str(target))
        try:
            conn = psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error:
            return None
        lock = threading.Lock()

        def stamp() -> object:
            with lock:
                return conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0]
        return stamp

    def migrate(self) -> list[int]:
        """Apply the migrations this catalogue lacks, each in one transaction under an
        advisory lock (another process may be migrating the same catalogue)."""
        applied = []
        with self._tx():
            self._q("SELECT pg_advisory_xact_lock(?, ?)", MIGRATION_LOCK)
            self._q(SCHEMA_MIGRATIONS)
        for version, name, sql in MIGRATIONS:
            with self._tx():
                self._q("SELECT pg_advisory_xact_lock(?, ?)", MIGRATION_LOCK)
                if self._q("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    continue
                self.statements += 1
                self.conn.execute(postgres_sql(sql))
                self._q("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, _now()))
            applied.append(version)
        return applied

    # -- the backend's primitives ------------------------------------------------------
    def _q(self, sql: str, args: Sequence[Any] = ()) -> Any:
        self.statements += 1
        if not args:
            return self.conn.execute(sql)
        return self.conn.execute(_dialect(sql), tuple(args))

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        # psycopg sends the rows in one pipeline: one round trip, not one per row.
        self.statements += 1
        with self.conn.cursor() as cur:
            cur.executemany(_dialect(sql), [tuple(r) for r in rows])

    @contextmanager
    def _tx(self) -> Iterator[None]:
        if self._depth:
            yield
            return
        self._depth += 1
        self.statements += 2  # BEGIN and COMMIT
        try:
            with self.conn.transaction():
                yield
        finally:
            self._depth -= 1

    def _replace(self, table: str, cols: Sequence[str], keys: Sequence[str]) -> str:
        update = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in keys)
        return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {update}")

    def _lock_product(self, product: dict[str, Any]) -> None:
        """Serialise the writers of one product: locks on its canonical URL and its (site,
        sku), taken in key order (no deadlock), held to the end of the transaction. The
        look-up that follows then sees what an earlier writer committed."""
        canonical = product.get("canonical_url") or product["url"]
        keys = {_lock_key("url\x1f" + canonical)}
        if product.get("sku"):
            keys.add(_lock_key(f"sku\x1f{site_of(canonical)}\x1f{product['sku']}"))
        ordered = sorted(keys)
        self._q("SELECT " + ", ".join("pg_advisory_xact_lock(?)" for _ in ordered), ordered)
