"""Real Redis and PostgreSQL servers for the scale-out tests.

Debian's ``redis-server`` and PostgreSQL (``make services`` installs them when root). Each
server is started once per test session on 127.0.0.1, on a free port, with its data in a
temporary folder, and stopped at the end; each test gets an empty Redis database and a fresh
PostgreSQL database. Without the programs the tests are skipped with the reason.

PostgreSQL refuses to run as root, so as root the server runs as Debian's ``postgres`` user
(its folder is handed to that user).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_TIMEOUT = 30.0  # seconds a server may take to accept connections


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not accept connections on 127.0.0.1:{port} in {STARTUP_TIMEOUT:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


# --- Redis -----------------------------------------------------------------------------------

def redis_missing() -> str | None:
    """Why the Redis tests cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server missing (make services, or apt-get install redis-server)"
    try:
        import redis  # noqa: F401
        import scrapy_redis  # noqa: F401
    except ImportError:
        return "redis / scrapy-redis not installed (pip install 'garment[scale]')"
    return None


needs_redis = pytest.mark.skipif(redis_missing() is not None, reason=str(redis_missing()))


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (no persistence), on 127.0.0.1."""
    reason = redis_missing()
    if reason:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="garment-redis-"))
    port = free_port()
    log = folder / "redis.log"
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
         "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--logfile", str(log),
         "--databases", "16"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, "redis-server", log)
        yield RedisServer(port, proc)
    finally:
        _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """An empty Redis database on the session's server (emptied again after the test)."""
    import redis

    url = redis_server.url(0)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# --- PostgreSQL ------------------------------------------------------------------------------

def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def postgres_missing() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None."""
    if _pg_bin() is None:
        return "PostgreSQL missing (make services, or apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run PostgreSQL as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install 'garment[scale]')"
    return None


needs_postgres = pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))


@dataclass
class PostgresServer:
    port: int
    proc: subprocess.Popen[bytes]
    user: str = "garment"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"


def _as_postgres_user() -> tuple[int | None, int | None]:
    """The user and group ids to run PostgreSQL's programs with (never root), or None."""
    if os.geteuid() != 0:
        return None, None
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, trust authentication on 127.0.0.1 only."""
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    bindir = _pg_bin()
    assert bindir is not None
    folder = Path(tempfile.mkdtemp(prefix="garment-pg-"))
    uid, gid = _as_postgres_user()
    if uid is not None:
        os.chown(folder, uid, gid or -1)
    data = folder / "data"
    log = folder / "postgres.log"

    def as_user() -> None:
        if uid is not None:
            os.setgid(gid or 0)
            os.setuid(uid)

    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "garment", "--auth=trust",
                    "--encoding=UTF8", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   preexec_fn=as_user, cwd=folder)
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
             "-k", str(folder), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdout=out, stderr=subprocess.STDOUT, preexec_fn=as_user, cwd=folder)
    try:
        _wait_port(port, proc, "postgres", log)
        yield PostgresServer(port, proc)
    finally:
        _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's server (dropped after the test)."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:  # the server accepts TCP a moment before it accepts logins
        try:
            admin = psycopg.connect(postgres_server.url(), autocommit=True)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.url(name)
    finally:
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
