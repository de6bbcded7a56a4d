"""Scrape, the frontier's request format: JSON, never pickle (``SCHEDULER_SERIALIZER``).

scrapy-redis pickles requests by default, and unpickling data read from a shared Redis
runs whatever code its writer chose. Here a request is Scrapy's ``Request.to_dict`` as
JSON: bytes (headers, body) as text, callbacks by the spider's method name, ``meta`` and
``cb_kwargs`` restricted to JSON values (others are left out). ``loads`` accepts only what
``dumps`` writes: an http(s) URL, plain Scrapy request classes, public method names.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

#: Request classes a stored request may name (``request_from_dict`` imports the name).
ALLOWED_CLASSES = frozenset({"scrapy.http.request.Request",
                             "scrapy.http.request.form.FormRequest",
                             "scrapy.http.request.json_request.JsonRequest"})
#: Meta keys that never travel: the worker's own in-flight token.
LOCAL_META = frozenset({"frontier_token", "frontier_give_back"})
_METHOD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_FIELDS = frozenset({"url", "callback", "errback", "headers", "method", "body", "cookies",
                     "meta", "encoding", "priority", "dont_filter", "flags", "cb_kwargs",
                     "_class"})


def _jsonable(values: dict[str, Any], what: str) -> dict[str, Any]:
    kept = {}
    for key, value in values.items():
        if key in LOCAL_META:
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            logger.debug("request %s %r is not JSON: left out of the frontier", what, key)
            continue
        kept[key] = value
    return kept


def dumps(d: dict[str, Any]) -> bytes:
    """A request dict (``Request.to_dict(spider=...)``) as JSON bytes."""
    out = dict(d)
    out["headers"] = {k.decode("latin-1") if isinstance(k, bytes) else k:
                      [v.decode("latin-1") if isinstance(v, bytes) else v for v in vs]
                      for k, vs in d.get("headers", {}).items()}
    out["body"] = base64.b64encode(d.get("body") or b"").decode("ascii")
    out["meta"] = _jsonable(d.get("meta") or {}, "meta")
    out["cb_kwargs"] = _jsonable(d.get("cb_kwargs") or {}, "cb_kwargs")
    return json.dumps(out, separators=(",", ":"), sort_keys=True).encode()


def loads(data: bytes | str) -> dict[str, Any]:
    """The request dict ``dumps`` wrote; ValueError for anything else."""
    d = json.loads(data)
    if not isinstance(d, dict) or set(d) - _FIELDS:
        raise ValueError("not a request written by garment")
    if urlsplit(str(d.get("url", ""))).scheme not in ("http", "https"):
        raise ValueError(f"request URL {str(d.get('url'))[:200]!r} is not http(s)")
    if "_class" in d and d["_class"] not in ALLOWED_CLASSES:
        raise ValueError(f"request class {str(d['_class'])[:100]!r} is not allowed")
    for name in ("callback", "errback"):
        value = d.get(name)
        if value is not None and not (isinstance(value, str) and _METHOD_NAME.fullmatch(value)):
            raise ValueError(f"request {name} {str(value)[:100]!r} is not a spider method name")
    for name in ("meta", "cb_kwargs", "headers"):
        if not isinstance(d.get(name, {}), dict):
            raise ValueError(f"request {name} is not an object")
    d["headers"] = {str(k).encode("latin-1"): [str(v).encode("latin-1") for v in vs]
                    for k, vs in d.get("headers", {}).items()}
    d["body"] = base64.b64decode(d.get("body") or "", validate=True)
    return d
