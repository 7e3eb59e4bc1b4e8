"""The API's one cache: aiocache, in memory by default or Redis via
``SUNRANK_CACHE_URL=redis://host:port/db``.

- One serializer (JSON) for both backends, so a value reads back the same
  whichever is configured; cached values are plain JSON data.
- Callers put the learner's score ``version`` in their keys (see :meth:`key`): a
  cached ranking is never staler than the last applied comparison. Old versions
  are never read again and expire with the TTL; nothing is ever cleared (a Redis
  ``FLUSHDB`` would hit other tenants of the database).
- Keys carry ``SUNRANK_CACHE_NAMESPACE`` (default ``sunrank``) as a prefix.
- Redis down: every call falls through (a miss, a no-op set), the API keeps
  answering from the learner and the database, and the outage is logged once;
  Redis is retried every ``RETRY_SECONDS`` and its return logged.
"""

from __future__ import annotations

import asyncio
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
        self.namespace = namespace.rstrip(":") + ":"
        parts = urlsplit(url)
        self.kind = parts.scheme
        self.hits = self.misses = self.errors = 0
        self.generation = 0
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

    def key(self, kind: str, version: int, params: Any) -> str:
        """``kind:v<version>.<generation>:<sha1 of the canonical JSON of params>``.

        ``version`` is the learner's score version; ``generation`` counts this
        process's mutations (see :meth:`data_changed`), which change data without
        moving the scores (a new account, a new video).
        """
        blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
        digest = hashlib.sha1(blob.encode()).hexdigest()
        return f"{kind}:v{version}.{self.generation}:{digest}"

    def data_changed(self) -> None:
        """A mutation completed: every key made from now on is new."""
        self.generation += 1

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
        self, key: str, compute: Callable[[], Awaitable[Any]], ttl: float | None = None
    ) -> Any:
        """The cached value, or ``compute()`` stored for next time.

        The value goes through the JSON serializer on both paths, so a hit and a
        miss return the same shape whatever the backend.
        """
        cached = await self.get(key)
        if cached is not None:
            return cached
        value = await compute()
        if self.available:
            await self.set(key, value, ttl)
        return json.loads(json.dumps(value)) if self.enabled else value

    async def close(self) -> None:
        try:
            await self._backend.close()
        except Exception:  # closing a dead Redis connection pool
            log.debug("cache close failed", exc_info=True)
