"""Scrape, the shared frontier: many crawler processes on one Redis (``--frontier``).

The queue and the seen-URL set are scrapy-redis's (a sorted set of requests by priority,
a set of request fingerprints); this module adds what scrapy-redis lacks for crawls that
must lose nothing and stay polite across processes and machines:

- in-flight tracking: a request is popped into the worker's in-flight hash in the same
  Lua script that takes it from the queue, and leaves it only when its response (or its
  final failure) has been processed and stored, or when it goes back to the queue (a
  retry, a redirect). A worker renews a heartbeat key with a TTL (its lease); any worker
  puts the in-flight requests of a worker whose heartbeat expired back into the queue.
- per-host slots: the next time a host may be asked, in Redis, taken atomically by the
  worker about to send (Redis server time, so machines' clocks do not matter); a 429/503
  pushes it forward for all.
- the end: the queue is empty and no worker holds in-flight work (``pending``).
- ``status`` and ``reset`` for ``garment scrape --frontier URL --status / --reset``.

Every key starts with ``garment:``; one Redis database holds one crawl. Requests are
stored as JSON (``reqjson``), never pickled.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from garment.errors import GarmentError, missing_extra

PREFIX = "garment:"
QUEUE_KEY = PREFIX + "requests"          # scrapy-redis's priority queue (sorted set)
SEEN_KEY = PREFIX + "dupefilter"         # scrapy-redis's fingerprints (set)
WORKERS_KEY = PREFIX + "workers"         # ids of workers that joined (set)
FINISHED_KEY = PREFIX + "finished"       # set when a crawl ended with nothing left
REQUEUED_KEY = PREFIX + "requeued"       # requests taken back from dead workers (counter)
HOST_PREFIX = PREFIX + "host:"           # + netloc: the host's next allowed time (ms)
LEASE_S = 10.0                           # a worker silent this long is dead
HEARTBEAT_S = 1.0                        # seconds between heartbeats (and reaping)


def beat_key(worker: str) -> str:
    return f"{PREFIX}beat:{worker}"


def inflight_key(worker: str) -> str:
    return f"{PREFIX}inflight:{worker}"


# The in-flight hash maps a token to "score\ndata" so that a requeue restores the priority.
_POP = """
local r = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #r == 0 then return false end
redis.call('ZREM', KEYS[1], r[1])
redis.call('HSET', KEYS[2], ARGV[1], r[2] .. '\\n' .. r[1])
return r[1]
"""

# Requeue the in-flight requests of every worker whose heartbeat has expired (KEYS: queue,
# workers set, requeued counter; ARGV: key prefix). Atomic: two workers reaping at once
# cannot requeue a request twice.
_REAP = """
local n = 0
for _, w in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[1] .. 'beat:' .. w) == 0 then
    local key = ARGV[1] .. 'inflight:' .. w
    local all = redis.call('HGETALL', key)
    for i = 2, #all, 2 do
      local v = all[i]
      local nl = string.find(v, '\\n', 1, true)
      redis.call('ZADD', KEYS[1], tonumber(string.sub(v, 1, nl - 1)), string.sub(v, nl + 1))
      n = n + 1
    end
    redis.call('DEL', key)
    redis.call('SREM', KEYS[2], w)
  end
end
if n > 0 then redis.call('INCRBY', KEYS[3], n) end
return n
"""

# Put one worker's own in-flight requests back (a graceful stop).
_RETURN = """
local all = redis.call('HGETALL', KEYS[2])
for i = 2, #all, 2 do
  local v = all[i]
  local nl = string.find(v, '\\n', 1, true)
  redis.call('ZADD', KEYS[1], tonumber(string.sub(v, 1, nl - 1)), string.sub(v, nl + 1))
end
redis.call('DEL', KEYS[2])
return #all / 2
"""

# Queue size plus every worker's in-flight count: the work left anywhere.
_PENDING = """
local n = redis.call('ZCARD', KEYS[1])
for _, w in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  n = n + redis.call('HLEN', ARGV[1] .. 'inflight:' .. w)
end
return n
"""

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Take the host's slot if it is free now (the next one frees ARGV[1] ms later) and return
# 0; else return the ms until it frees. Taken at the moment of sending, not reserved ahead:
# a reservation held by a worker that wakes late would let two requests arrive together.
_CLAIM = _NOW_MS + """
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if now < nxt then return nxt - now end
redis.call('SET', KEYS[1], now + tonumber(ARGV[1]), 'PX', tonumber(ARGV[1]) + 3600000)
return 0
"""

# Hold the host for everyone until now + ARGV[1] ms (never shortens a longer hold).
_HOLD = _NOW_MS + """
local untilms = now + tonumber(ARGV[1])
if untilms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], untilms, 'PX', tonumber(ARGV[1]) + 3600000)
end
return untilms
"""


def safe_url(url: str) -> str:
    """``url`` without its password, for messages and records."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = (f"{parts.username}:***@" if parts.username else ":***@") + (
        parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_url(url: str) -> None:
    """Raise GarmentError unless ``url`` is a Redis URL."""
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise GarmentError(f"frontier {safe_url(url)!r} is not a Redis URL: give one like "
                           "redis://HOST:6379/0")


#: Requests this process sent to Redis (a pipeline or a script is one), for the stats.
ROUND_TRIPS = [0]


@functools.cache
def counting_connection() -> type:
    """redis-py's TCP connection class, counting round trips in ``ROUND_TRIPS``."""
    import redis

    class CountingConnection(redis.Connection):  # type: ignore[misc]
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            ROUND_TRIPS[0] += 1
            super().send_packed_command(command, check_health)

    return CountingConnection


def client_options(url: str) -> dict[str, Any]:
    """redis-py options for ``url``: round trips counted on plain TCP connections."""
    return {"connection_class": counting_connection()} if url.startswith("redis://") else {}


def connect(url: str) -> Any:
    """A redis-py client on ``url``, checked with a PING; one-line errors when Redis or
    scrapy-redis is missing or the server cannot be reached."""
    check_url(url)
    try:
        import redis
        import scrapy_redis  # noqa: F401  (the scheduler the workers run)
    except ImportError as exc:
        raise missing_extra("scale", exc.name or "scrapy-redis", "--frontier") from exc
    client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10,
                                  **client_options(url))
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        raise GarmentError(f"cannot reach the frontier {safe_url(url)}: {exc}; start "
                           "redis-server there or check --frontier") from exc
    return client


def check_frontier(url: str) -> None:
    """Raise GarmentError when the frontier cannot be used: unreachable, scrapy-redis
    missing, or holding a crawl that has finished (a new crawl starts on an empty one)."""
    client = connect(url)
    try:
        if client.exists(FINISHED_KEY):
            raise GarmentError(f"frontier {safe_url(url)} holds a finished crawl "
                               f"({client.scard(SEEN_KEY)} URLs seen): empty it with "
                               f"`garment scrape --frontier {safe_url(url)} --reset` or "
                               "use another database number")
    finally:
        client.close()


class Frontier:
    """One worker's view of the shared frontier: its id, its in-flight hash, the scripts."""

    def __init__(self, client: Any, worker: str | None = None):
        self.redis = client
        self.worker = worker or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.inflight = inflight_key(self.worker)
        self._n = 0
        self._pop = client.register_script(_POP)
        self._reap = client.register_script(_REAP)
        self._return = client.register_script(_RETURN)
        self._pending = client.register_script(_PENDING)
        self._claim = client.register_script(_CLAIM)
        self._hold = client.register_script(_HOLD)

    # -- the queue --------------------------------------------------------------------
    def pop(self) -> tuple[str, bytes] | None:
        """The next request's data from the queue, now in this worker's in-flight hash
        under the returned token; None when the queue is empty."""
        self._n += 1
        token = f"{self.worker}:{self._n}"
        data = self._pop(keys=[QUEUE_KEY, self.inflight], args=[token])
        return None if data is None else (token, data)

    def push(self, data: bytes, priority: int, token: str | None = None) -> None:
        """Queue a request; when it is one this worker held (``token``: a retry, a
        redirect), it leaves the in-flight hash in the same transaction."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(QUEUE_KEY, {data: -priority})
        if token:
            pipe.hdel(self.inflight, token)
        pipe.execute()

    def done(self, token: str) -> None:
        """The request ``token`` is processed: it leaves the in-flight hash."""
        self.redis.hdel(self.inflight, token)

    def give_back(self) -> int:
        """Put this worker's in-flight requests back into the queue; returns how many."""
        return int(self._return(keys=[QUEUE_KEY, self.inflight]))

    def forget_inflight(self) -> int:
        """Drop this worker's in-flight entries (called when it is idle: anything left is
        an entry whose request ended without passing the usual exits); returns how many."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hlen(self.inflight)
        pipe.delete(self.inflight)
        return int(pipe.execute()[0])

    def queue_size(self) -> int:
        return int(self.redis.zcard(QUEUE_KEY))

    def pending(self) -> int:
        """Requests queued or in flight at any worker (dead ones not yet reaped too)."""
        return int(self._pending(keys=[QUEUE_KEY, WORKERS_KEY], args=[PREFIX]))

    # -- workers ----------------------------------------------------------------------
    def heartbeat(self, info: dict[str, Any]) -> None:
        """Renew this worker's lease, with what it reports to ``status``."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(WORKERS_KEY, self.worker)
        pipe.set(beat_key(self.worker), json.dumps(info), px=int(LEASE_S * 1000))
        pipe.execute()

    def reap(self) -> int:
        """Requeue the in-flight requests of workers whose lease expired; returns how many."""
        return int(self._reap(keys=[QUEUE_KEY, WORKERS_KEY, REQUEUED_KEY], args=[PREFIX]))

    def leave(self) -> int:
        """This worker stops: its in-flight requests go back to the queue, its lease ends."""
        n = self.give_back()
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(beat_key(self.worker))
        pipe.srem(WORKERS_KEY, self.worker)
        pipe.execute()
        return n

    # -- hosts ------------------------------------------------------------------------
    def claim(self, host: str, delay: float) -> float:
        """Take host ``host``'s slot for a request sent now (the next one frees ``delay``
        seconds later, for every worker): 0.0 when taken, else the seconds until it frees
        (then wait and ask again)."""
        wait_ms = self._claim(keys=[HOST_PREFIX + host], args=[int(delay * 1000)])
        return max(0.0, int(wait_ms) / 1000)

    def hold(self, host: str, seconds: float) -> None:
        """No worker asks ``host`` again before ``seconds`` from now (Retry-After)."""
        self._hold(keys=[HOST_PREFIX + host], args=[int(seconds * 1000)])

    # -- the crawl --------------------------------------------------------------------
    def finished(self) -> bool:
        return bool(self.redis.exists(FINISHED_KEY))

    def mark_finished(self) -> None:
        self.redis.set(FINISHED_KEY, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def status(url: str) -> dict[str, Any]:
    """The frontier's state: queue size, seen URLs, workers (alive with their in-flight
    counts and rates, or dead with what they held), rates, hosts' next allowed times."""
    client = connect(url)
    try:
        secs, micros = client.time()
        now = secs + micros / 1e6
        workers = []
        for raw in sorted(client.smembers(WORKERS_KEY)):
            worker = raw.decode()
            beat = client.get(beat_key(worker))
            info = json.loads(beat) if beat else {}
            workers.append({"worker": worker, "alive": beat is not None,
                            "in_flight": int(client.hlen(inflight_key(worker))), **info})
        hosts = {}
        for key in client.scan_iter(match=HOST_PREFIX + "*", count=500):
            value = client.get(key)
            if value is not None:
                hosts[key.decode()[len(HOST_PREFIX):]] = round(int(value) / 1000 - now, 3)
        alive = [w for w in workers if w["alive"]]
        finished = client.get(FINISHED_KEY)
        return {
            "frontier": safe_url(url),
            "queued": int(client.zcard(QUEUE_KEY)),
            "seen": int(client.scard(SEEN_KEY)),
            "in_flight": sum(w["in_flight"] for w in workers),
            "requeued": int(client.get(REQUEUED_KEY) or 0),
            "finished": finished.decode() if finished else None,
            "workers_alive": len(alive),
            "requests_per_s": round(sum(w.get("requests_per_s", 0.0) for w in alive), 2),
            "products_per_s": round(sum(w.get("products_per_s", 0.0) for w in alive), 2),
            "workers": workers,
            # seconds from now until each host may be asked again (negative: free now)
            "hosts_next_s": dict(sorted(hosts.items())),
        }
    finally:
        client.close()


def reset(url: str) -> int:
    """Empty the frontier (every ``garment:`` key) for a new crawl; refuses while a worker
    is alive. Returns how many keys were deleted."""
    client = connect(url)
    try:
        alive = [w for w in client.smembers(WORKERS_KEY) if client.exists(beat_key(w.decode()))]
        if alive:
            raise GarmentError(f"frontier {safe_url(url)} has {len(alive)} live worker(s): "
                               "stop them before --reset")
        keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i:i + 1000])
        return len(keys)
    finally:
        client.close()
