"""Catalogue targets of either backend for the store tests: a folder (SQLite) or a fresh
database on the session's PostgreSQL server with a files folder (``postgresql://...?images=``)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from garment.store import target
from services import needs_postgres

Targets = Callable[[], "str | Path"]

#: Parametrise a fixture over both backends (PostgreSQL skipped with the reason when absent).
BACKENDS = ["sqlite", pytest.param("postgres", marks=needs_postgres)]


def integrity_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a broken constraint raises on either backend."""
    import sqlite3

    errors: list[type[BaseException]] = [sqlite3.IntegrityError]
    try:
        import psycopg

        errors.append(psycopg.IntegrityError)
    except ImportError:
        pass
    return tuple(errors)


@pytest.fixture(params=BACKENDS)
def targets(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Targets]:
    """``targets()`` gives a new, empty catalogue target of the backend under test."""
    counter = itertools.count()
    if request.param == "sqlite":
        yield lambda: tmp_path / f"catalogue{next(counter)}"
        return
    import psycopg

    server = request.getfixturevalue("postgres_server")
    made: list[str] = []

    def new() -> str | Path:
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return target(server.url(name), tmp_path / f"files{next(counter)}")

    yield new
    with psycopg.connect(server.url(), autocommit=True) as admin:
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
