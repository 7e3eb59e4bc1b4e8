"""The API's one cache: aiocache, in memory by default or Redis via
``SUNRANK_CACHE_URL=redis://host:port/db``.

- One serializer (JSON) for both backends, so a value reads back the same
  whichever is configured; cached values are plain JSON data.
- Keys carry a persistent data version (see :meth:`Cache.key`): a cached answer
  is never staler than the last applied event or the last mutation, on any server
  process, across restarts. Old versions are never read again and expire with the
  TTL; nothing is ever cleared (a Redis ``FLUSHDB`` would hit other tenants of the
  database).
- Keys carry ``SUNRANK_CACHE_NAMESPACE`` (default ``sunrank``) as a prefix.
- Redis down: every call falls through (a miss, a no-op set), the API keeps
  answering from the learner and the database, and the outage is logged once;
  Redis is retried every ``RETRY_SECONDS`` and its return logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiocache import Cache as _Cache
from aiocache.serializers import JsonSerializer

from app.config import Settings
from app.metrics import CACHE_REQUESTS

log = logging.getLogger("sunrank.cache")
RETRY_SECONDS = 5.0
REDIS_TIMEOUT = 0.5  # seconds for one cache call; slower counts as down
REVISION_KEY = "revision"


class Cache:
    def __init__(
        self,
        url: str = "memory://",
        *,
        namespace: str = "sunrank",
        ttl: float = 300.0,
        enabled: bool = True,
    ):
        self.url, self.ttl, self.enabled = url, ttl, enabled
        self.namespace = namespace.rstrip(":")  # aiocache adds the ":"
        parts = urlsplit(url)
        self.kind = parts.scheme
        self.hits = self.misses = self.errors = 0
        self._down_since: float | None = None
        self._retry_at = 0.0
        if parts.scheme == "redis":
            db = int(parts.path.strip("/") or 0)
            self._backend = _Cache(
                _Cache.REDIS,
                endpoint=parts.hostname or "127.0.0.1",
                port=parts.port or 6379,
                db=db,
                password=parts.password,
                namespace=self.namespace,
                serializer=JsonSerializer(),
                timeout=REDIS_TIMEOUT,
                create_connection_timeout=REDIS_TIMEOUT,
            )
        else:
            self._backend = _Cache(
                _Cache.MEMORY, namespace=self.namespace, serializer=JsonSerializer()
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Cache:
        return cls(
            settings.cache_url,
            namespace=settings.cache_namespace,
            ttl=settings.cache_ttl_seconds,
            enabled=settings.cache_enabled,
        )

    async def key(self, kind: str, scores: int, params: Any) -> str | None:
        """``kind:<scores>.<revision>:<sha1 of the canonical JSON of params>``, or None
        when the cache is off or unavailable (callers then compute without it).

        Both parts of the version are persistent, so a key means the same data on
        every server process and across restarts:

        - ``scores``: the id of the last event the learner applied (its watermark in
          the event log, stored in the database);
        - ``revision``: a counter held in the cache backend itself, moved by
          :meth:`data_changed` after every mutation (some change data without an
          event: a new account, a new video) and after every refit. It starts from
          the clock (nanoseconds) whenever the backend has lost it, so a restarted
          or flushed Redis cannot hand out an old revision again.
        """
        revision = await self.revision()
        if revision is None:
            return None
        blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
        digest = hashlib.sha1(blob.encode()).hexdigest()
        return f"{kind}:{scores}.{revision}:{digest}"

    async def revision(self) -> int | None:
        """The data revision (see :meth:`key`); None when the cache cannot be used."""
        if not self.available:
            return None
        try:
            # A raw integer, outside the JSON serializer: increment() works on it.
            value = await self._backend.get(REVISION_KEY, loads_fn=_raw)
            if value is None:
                with contextlib.suppress(ValueError):  # another process set it first
                    await self._backend.add(REVISION_KEY, time.time_ns(), dumps_fn=str)
                value = await self._backend.get(REVISION_KEY, loads_fn=_raw)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            self._failed(exc)
            return None
        self._succeeded()
        return int(value)

    async def data_changed(self) -> None:
        """Data changed: every key made from now on is new (see :meth:`key`)."""
        if await self.revision() is None:
            return
        try:
            await self._backend.increment(REVISION_KEY)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            self._failed(exc)

    @property
    def available(self) -> bool:
        return self.enabled and (self._down_since is None or time.monotonic() >= self._retry_at)

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "cache %s unavailable (%s: %s): serving without it, retrying every %.0f s",
                self.kind, type(exc).__name__, exc, RETRY_SECONDS,
            )  # fmt: skip
        self._retry_at = now + RETRY_SECONDS

    def _succeeded(self) -> None:
        if self._down_since is not None:
            log.warning(
                "cache %s is back after %.1f s", self.kind, time.monotonic() - self._down_since
            )
            self._down_since = None

    async def get(self, key: str) -> Any | None:
        if not self.available:
            CACHE_REQUESTS.labels("bypassed").inc()
            return None
        try:
            value = await self._backend.get(key)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            self._failed(exc)
            CACHE_REQUESTS.labels("error").inc()
            return None
        self._succeeded()
        if value is None:
            self.misses += 1
            CACHE_REQUESTS.labels("miss").inc()
        else:
            self.hits += 1
            CACHE_REQUESTS.labels("hit").inc()
        return value

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if not self.available:
            return
        try:
            await self._backend.set(key, value, ttl=ttl or self.ttl)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            self._failed(exc)
            return
        self._succeeded()

    async def get_or_compute(
        self,
        kind: str,
        scores: int,
        params: Any,
        compute: Callable[[], Awaitable[Any]],
        ttl: float | None = None,
    ) -> Any:
        """The cached value for (kind, scores, params) (see :meth:`key`), or
        ``compute()`` stored for next time.

        The value goes through the JSON serializer on both paths, so a hit and a
        miss return the same shape whatever the backend.
        """
        key = await self.key(kind, scores, params)
        cached = await self.get(key) if key is not None else None
        if cached is not None:
            return cached
        value = await compute()
        if key is not None:
            await self.set(key, value, ttl)
        return json.loads(json.dumps(value)) if self.enabled else value

    async def close(self) -> None:
        try:
            await self._backend.close()
        except Exception:  # closing a dead Redis connection pool
            log.debug("cache close failed", exc_info=True)


def _raw(value: Any) -> Any:
    return value
