"""Review: the local web app (FastAPI, served by uvicorn) and its JSON API.

Every product with its packshot, the 28x28 image the network saw, its final label and where
it came from; a person's corrections are stored as human labels (``Catalogue.set_human_label``)
and win everywhere the catalogue is read. Safe on a shared machine: bound to 127.0.0.1 by
default, any Host header but a loopback one is refused (DNS rebinding), state-changing
requests need the per-session token in ``X-Garment-Token``, and the page builds its DOM with
``textContent`` under a Content-Security-Policy that allows no inline script.
"""

from __future__ import annotations

import functools
import io
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.middleware.trustedhost import TrustedHostMiddleware

from garment.errors import GarmentError
from garment.review.query import LABELS, MAX_LIMIT, SORTS, SOURCES, ProductQuery, facets, item
from garment.store import IMAGES_DIR, Catalogue

TOKEN_HEADER = "X-Garment-Token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Keys that set a label on the page, in class order, then "other".
KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "o")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class ReviewConfig:
    """How ``garment review`` serves a catalogue."""

    catalogue: Path | str = Path("catalogue")  # a catalogue folder or a postgresql:// URL
    host: str = "127.0.0.1"  # another address exposes the catalogue: loopback unless you mean it
    port: int = 8642  # 0: any free port
    model: str | None = None  # a model folder or a model id stored in the catalogue; None: the latest classified
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))  # for state-changing requests
    page_size: int = 48  # products a page shows


def _model_recipe(folder: Path, model_id: str | None) -> Any:
    """The conversion recipe of the model whose labels are shown (the default recipe when
    the catalogue is not classified yet)."""
    from garment.catalogue_classify import model_snapshot
    from garment.convert import get_recipe

    card = model_snapshot(folder, model_id).get("card", {}) if model_id else {}
    return get_recipe(card.get("recipe") or None)


def create_app(config: ReviewConfig) -> FastAPI:
    """The review app for ``config.catalogue`` (checked now: a missing catalogue or unknown
    model is a GarmentError before anything is served)."""
    target = config.catalogue
    from garment.report import resolve_model

    with Catalogue.open(target, create=False) as cat:  # migrates an older catalogue once
        model_id = resolve_model(cat, config.model)
        folder, name = cat.folder, cat.name  # where its files are; what to call it
    recipe = _model_recipe(folder, model_id)
    images = (folder / IMAGES_DIR).resolve()
    env = Environment(loader=PackageLoader("garment.review", "templates"), autoescape=select_autoescape())

    app = FastAPI(title="garment review", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    allowed = sorted({*LOOPBACK_HOSTS, config.host})
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if request.method not in SAFE_METHODS and not secrets.compare_digest(
                request.headers.get(TOKEN_HEADER, "").encode(), config.token.encode()):
            response: Response = JSONResponse({"detail": f"missing or wrong {TOKEN_HEADER}: the token is "
                                                         "printed by `garment review` and served to its page"},
                                              status_code=403)
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(GarmentError)
    async def bad_input(request: Request, exc: GarmentError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status", 400))

    @contextmanager
    def opened(write: bool = False) -> Iterator[Catalogue]:
        # One connection per request: handlers run in a thread pool, and SQLite connections
        # stay in the thread that made them. Reads never write (no migration, no lock).
        with Catalogue.open(target, create=False, readonly=not write) as cat:
            yield cat

    cache = _RowCache(target, model_id)
    rows = cache.rows
    # One change at a time: each writes, then rereads the rows it changed into the cache.
    write_lock = threading.Lock()

    def one(cat: Catalogue, pid: int) -> dict[str, Any]:
        row = cache.get(cat, pid)
        if row is None:
            raise _NotFound(f"no product with id {pid} in {name}")
        return item(row)

    @functools.lru_cache(maxsize=4096)
    def view_png(path: str, sha256: str) -> bytes:  # sha256 in the key: a new packshot, a new view
        from PIL import Image

        from garment.convert import convert_views

        buf = io.BytesIO()
        Image.fromarray(convert_views(path, recipe)[0], "L").save(buf, "PNG")
        return buf.getvalue()

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        html = env.get_template("index.html").render(
            catalogue=folder.resolve().name if isinstance(target, Path) else name,
            token=config.token, model_id=model_id or "",
            classes=list(zip(KEYS, LABELS, strict=True)), sources=SOURCES, sorts=SORTS,
            page_size=config.page_size)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/api/products")
    def list_products(label: str | None = None, source: str | None = None, category: str | None = None,
                      q: str | None = None, min_conf: str | None = None, max_conf: str | None = None,
                      conflict: str | None = None, sort: str = "confidence", limit: int = config.page_size,
                      offset: int = 0) -> dict[str, Any]:
        """Products that pass the filters (an empty parameter is no filter), least confident
        first by default: {"total", "offset", "limit", "items": [...]}."""
        query = ProductQuery(label=label or None, source=source or None, category=category or None,
                             q=q or None, min_conf=_number("min_conf", min_conf),
                             max_conf=_number("max_conf", max_conf), conflict=_flag("conflict", conflict),
                             sort=sort or "confidence", limit=limit, offset=offset)
        with opened() as cat:
            total, page = query.run(rows(cat))
        return {"total": total, "offset": offset, "limit": limit, "items": [item(r) for r in page]}

    @app.get("/api/facets")
    def list_facets() -> dict[str, Any]:
        """What the filters can choose from, with counts, and the model shown."""
        with opened() as cat:
            return {**facets(rows(cat)), "model_id": model_id, "classes": list(LABELS)}

    @app.get("/api/products/{pid}")
    def get_product(pid: int) -> dict[str, Any]:
        with opened() as cat:
            return one(cat, pid)

    @app.put("/api/products/{pid}/label")
    def put_label(pid: int, label: str = Body(..., embed=True)) -> dict[str, Any]:
        """A person's label for one product (a class name or "other"): the updated item."""
        with write_lock, opened(write=True) as cat:
            one(cat, pid)
            cat.set_human_label(pid, label)
            cache.refresh(cat, [pid])
            return one(cat, pid)

    @app.delete("/api/products/{pid}/label")
    def delete_label(pid: int) -> dict[str, Any]:
        """Back to the prediction: the updated item."""
        with write_lock, opened(write=True) as cat:
            if one(cat, pid)["label_source"] == "human":
                cat.clear_human_label(pid)
                cache.refresh(cat, [pid])
            return one(cat, pid)

    @app.post("/api/accept")
    def accept(ids: list[int] = Body(..., embed=True, max_length=MAX_LIMIT)) -> dict[str, Any]:
        """Make the shown label of each product a human one (a page the person checked), as
        one batch that one undo takes back; products without a label, or with a human one,
        are left as they are."""
        with write_lock, opened(write=True) as cat:
            current = {i: cache.get(cat, i) for i in ids}
            missing = [i for i, r in current.items() if r is None]
            if missing:
                raise _NotFound(f"no product with id {missing[0]} in {name}")
            todo = {i: r["label"] for i, r in current.items()
                    if r is not None and r["label"] is not None and r["label_source"] != "human"}
            cat.set_human_labels(todo)
            cache.refresh(cat, list(todo))
            return {"accepted": len(todo), "items": [one(cat, i) for i in ids]}

    @app.post("/api/undo")
    def undo() -> dict[str, Any]:
        """Take back the latest human-label change (a whole accepted page at once)."""
        with write_lock, opened(write=True) as cat:
            cache.rows(cat)  # current before the change, so that only the change is reread
            undone = cat.undo_human_label()
            cache.refresh(cat, undone)
            return {"undone": undone, "items": [one(cat, i) for i in undone]}

    @app.get("/api/products/{pid}/view.png")
    def view(pid: int) -> Response:
        """The product's packshot as the network saw it: 28x28, the recipe's first framing."""
        with opened() as cat:
            row = cat.image(product_id=pid)
        if row is None or row["status"] != "ok" or not row["path"]:
            raise _NotFound(f"product {pid} has no stored packshot")
        path = (folder / row["path"]).resolve()
        if not path.is_relative_to(images) or not path.is_file():
            raise _NotFound(f"product {pid}'s packshot is not in {images}")
        png = view_png(str(path), row["sha256"] or "")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    app.mount("/static", StaticFiles(packages=[("garment.review", "static")]), name="static")
    # StaticFiles serves only files inside the folder (no "..", no symlinks out of it).
    app.mount("/images", StaticFiles(directory=images, check_dir=False), name="images")
    return app


class _RowCache:
    """The catalogue's ``products_with_labels`` rows, read again only when another connection
    committed a change (``Catalogue.watcher``, on a connection kept open to watch: another
    process classifying, or adapting); the app's own changes reread just the products they
    touched. Listing a 10,000-product catalogue then costs a filter and a sort, not a full read."""

    def __init__(self, target: Path | str, model_id: str | None):
        self.model_id = model_id
        self.lock = threading.Lock()
        self.stamp: object = None
        self.list: list[dict[str, Any]] = []
        self.by_id: dict[int, dict[str, Any]] = {}
        # Read with no other lock held; None: cannot watch (e.g. a read-only folder without
        # the WAL's files): always reread.
        self.watch = Catalogue.watcher(target)

    def _stamp(self) -> object:
        return None if self.watch is None else self.watch()

    def rows(self, cat: Catalogue) -> list[dict[str, Any]]:
        """Every row, in product order (the list is never changed in place: safe to iterate)."""
        stamp = self._stamp()  # before reading: a write during the read makes the next call reread
        with self.lock:
            if stamp is not None and stamp == self.stamp:
                return self.list
        fresh = cat.products_with_labels(self.model_id)
        with self.lock:
            self.list, self.by_id, self.stamp = fresh, {r["product_id"]: r for r in fresh}, stamp
        return fresh

    def get(self, cat: Catalogue, pid: int) -> dict[str, Any] | None:
        self.rows(cat)
        return self.by_id.get(pid)

    def refresh(self, cat: Catalogue, ids: list[int]) -> None:
        """Reread the rows of ``ids`` after this process changed them."""
        if not ids:
            return
        stamp = self._stamp()  # the change is committed: this counts it
        fresh = {r["product_id"]: r for r in cat.products_with_labels(self.model_id, product_ids=ids)}
        with self.lock:
            self.by_id = {**self.by_id, **fresh}
            self.list = [fresh.get(r["product_id"], r) for r in self.list]
            self.stamp = stamp


class _NotFound(GarmentError):
    status = 404


def _number(name: str, value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise GarmentError(f"{name}={value!r} is not a number: give a confidence between 0 and 1") from None


def _flag(name: str, value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise GarmentError(f"{name}={value!r}: use true or false")


class ReviewServer:
    """The review app listening on ``config.host:config.port`` (bound now, so a busy port
    is a GarmentError before anything starts); ``run`` serves until interrupted, ``start``
    and ``stop`` serve from a thread."""

    def __init__(self, config: ReviewConfig):
        import uvicorn

        self.config = config
        self.app = create_app(config)
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((config.host, config.port))
            self.sock.listen(128)
        except OSError as exc:
            self.sock.close()
            raise GarmentError(f"cannot listen on {config.host}:{config.port} ({exc.strerror}); "
                               "pass another --port (0 picks a free one)") from exc
        self.port = self.sock.getsockname()[1]
        host = f"[{config.host}]" if family == socket.AF_INET6 else config.host
        self.url = f"http://{host}:{self.port}/"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False,
                                                    lifespan="off"))
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until Ctrl-C (uvicorn's signal handling)."""
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 10.0) -> ReviewServer:
        """Serve from a daemon thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name="garment-review", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise GarmentError(f"the review server on {self.url} did not start within {timeout:.0f} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()
