"""The catalogue's schema: numbered migrations, written once in SQLite's dialect and
translated for PostgreSQL where the types differ.

Each migration is recorded in ``schema_migrations`` when applied, on either backend, so a
catalogue opened by newer code gains only what it lacks. The SQL is portable but for column
types: SQLite's ``INTEGER PRIMARY KEY`` row ids become PostgreSQL identity columns, every
``INTEGER`` a ``BIGINT`` (row ids past 2**31) and ``REAL`` a ``DOUBLE PRECISION`` (SQLite's
REAL is 8 bytes; PostgreSQL's is 4 and would round prices).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

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
    (7, "classify claims", """
        -- Images a classify process is working on, so that several processes split a
        -- catalogue's images without overlap; a claim past its expiry (a killed process's)
        -- may be taken by another. Kept until the claiming process ends, so an image it
        -- failed on is not taken again by the same run.
        CREATE TABLE claims (
            image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            owner TEXT NOT NULL,                 -- the claiming process's random token
            expires REAL NOT NULL,               -- seconds since the epoch
            PRIMARY KEY (image_id, model_id)
        );
        CREATE INDEX claims_owner ON claims(owner);
    """),
)


SCHEMA_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)")

_PG_TYPES = ((re.compile(r"\bid INTEGER PRIMARY KEY\b"), "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
             (re.compile(r"\bINTEGER\b"), "BIGINT"),
             (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))


def postgres_sql(sql: str) -> str:
    """A migration's SQL in PostgreSQL's types (see the module docstring)."""
    for pattern, replacement in _PG_TYPES:
        sql = pattern.sub(replacement, sql)
    return sql


def now() -> str:
    """The time stamp every table stores: UTC, ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
