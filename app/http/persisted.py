"""Automatic persisted queries (Apollo's APQ) and the optional allow-list.

A client sends ``extensions: {"persistedQuery": {"version": 1, "sha256Hash": h}}``
with no ``query`` (POST body, or GET's ``extensions`` parameter, which lets CDNs and
browsers cache GET requests): the server runs the document whose SHA-256 is ``h`` if
it has it, else answers ``PersistedQueryNotFound`` (code
``PERSISTED_QUERY_NOT_FOUND``) and the client sends it once more with the ``query``,
which the server checks against ``h`` and remembers. Apollo Client's
``createPersistedQueryLink``, urql's ``persistedExchange`` and Relay-style clients
speak this as they are.

``SUNRANK_PERSISTED_QUERIES``:

- ``on`` (default): as above. Documents live in a bounded in-process LRU (count:
  ``SUNRANK_PERSISTED_QUERIES_MAX``; bytes: :data:`MAX_BYTES`) and, with
  ``SUNRANK_CACHE_URL=redis://…``, in Redis too (TTL :data:`REDIS_TTL_SECONDS`), so
  every server process knows what one of them learned.
- ``off``: a hash-only request gets ``PersistedQueryNotSupported``, which makes
  Apollo clients stop trying; plain requests work as before.
- ``allowlist``: only the operations of ``SUNRANK_PERSISTED_QUERIES_FILE`` run, by
  hash or by identical text; anything else gets ``PERSISTED_QUERY_NOT_ALLOWED``.
  Introspection-only documents (every root field ``__schema``, ``__type`` or
  ``__typename``) stay allowed, so GraphiQL's documentation pane and code generators
  keep working; GraphiQL's own queries are refused unless registered. The file is
  Apollo's persisted-query manifest (``{"format": "apollo-persisted-query-manifest",
  "operations": [{"id", "body", …}]}``) or a JSON object ``{"<sha256>": "<document>"}``;
  every document is indexed by its own SHA-256, whatever id the file gives it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse

from app.cache import Cache
from app.config import ConfigError, Settings
from app.errors import ErrorCode

MAX_BYTES = 32 * 1024 * 1024  # the in-process store's bound on document text
REDIS_TTL_SECONDS = 7 * 86_400.0
_SHA256 = re.compile(r"[0-9a-f]{64}")
INTROSPECTION_FIELDS = frozenset({"__schema", "__type", "__typename"})


class PersistedQueryError(Exception):
    """Answered as a request error: ``errors[0].message`` is what Apollo clients
    look for (``PersistedQueryNotFound``, ``PersistedQueryNotSupported``)."""

    def __init__(self, message: str, code: ErrorCode):
        super().__init__(message)
        self.message, self.code = message, code

    @property
    def retryable(self) -> bool:
        """An answer Apollo clients act on (send the text, or stop hashing): keep it at
        HTTP 200, since they stop using APQ altogether after a 400 or a 500."""
        return self.code in (
            ErrorCode.PERSISTED_QUERY_NOT_FOUND,
            ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED,
        )


NOT_FOUND = PersistedQueryError("PersistedQueryNotFound", ErrorCode.PERSISTED_QUERY_NOT_FOUND)
NOT_SUPPORTED = PersistedQueryError(
    "PersistedQueryNotSupported", ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_allowlist(path: str) -> dict[str, str]:
    """The documents of an allow-list file by their SHA-256 (ConfigError when the
    file is missing or not one of the two formats)."""
    name = "SUNRANK_PERSISTED_QUERIES_FILE"
    if not path:
        raise ConfigError(f"{name} must name a file when SUNRANK_PERSISTED_QUERIES=allowlist")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{name}={path!r}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        bodies = [op.get("body") if isinstance(op, dict) else None for op in data["operations"]]
    elif isinstance(data, dict):
        bodies = list(data.values())
    else:
        bodies = [None]
    if not all(isinstance(body, str) and body.strip() for body in bodies):
        raise ConfigError(
            f"{name}={path!r}: expected an Apollo persisted-query manifest or a JSON "
            "object of documents by hash"
        )
    return {sha256(body): body for body in bodies if isinstance(body, str)}


def is_introspection(document: str) -> bool:
    try:
        ast = parse(document, max_tokens=10_000)
    except GraphQLError:
        return False
    operations = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    return bool(operations) and all(
        isinstance(selection, FieldNode) and selection.name.value in INTROSPECTION_FIELDS
        for op in operations
        for selection in op.selection_set.selections
    )


class PersistedQueries:
    def __init__(self, settings: Settings, cache: Cache | None = None):
        self.mode = settings.persisted_queries
        self.max_entries = settings.persisted_queries_max
        self.max_query_bytes = settings.max_query_bytes
        self.cache: Cache | None = None
        self.use_cache(cache)
        self.allowed = (
            load_allowlist(settings.persisted_queries_file) if self.mode == "allowlist" else {}
        )
        self._local: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0

    def use_cache(self, cache: Cache | None) -> None:
        """Share documents through ``cache`` when it is Redis (the in-process LRU
        already plays the memory backend's part)."""
        self.cache = cache if cache is not None and cache.kind == "redis" else None

    @staticmethod
    def requested_hash(extensions: Any) -> str | None:
        """The hash an APQ request names; None when it names none. A malformed
        ``persistedQuery`` is a PersistedQueryError (BAD_REQUEST)."""
        if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
            return None
        pq = extensions["persistedQuery"]
        if not isinstance(pq, dict) or pq.get("version") != 1:
            raise PersistedQueryError(
                "unsupported persistedQuery: expected {version: 1, sha256Hash}",
                ErrorCode.BAD_REQUEST,
            )
        digest = pq.get("sha256Hash")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest.lower()):
            raise PersistedQueryError(
                "persistedQuery.sha256Hash must be 64 hexadecimal digits", ErrorCode.BAD_REQUEST
            )
        return digest.lower()

    async def document(self, query: str | None, extensions: Any) -> str | None:
        """The document to run for a request's ``query`` and ``extensions`` (``query``
        itself for a plain request), or a PersistedQueryError."""
        digest = self.requested_hash(extensions)
        if self.mode == "allowlist":
            return self._allowed(query, digest)
        if digest is None:
            return query
        if self.mode == "off":
            raise NOT_SUPPORTED
        if query is None:
            found = await self._get(digest)
            if found is None:
                raise NOT_FOUND
            return found
        if sha256(query) != digest:
            raise PersistedQueryError(
                "provided sha does not match query", ErrorCode.PERSISTED_QUERY_HASH_MISMATCH
            )
        await self._put(digest, query)
        return query

    def _allowed(self, query: str | None, digest: str | None) -> str:
        if query is None:
            if digest is None:
                return query  # type: ignore[return-value]  # strawberry: "no query"
            if (found := self.allowed.get(digest)) is None:
                raise NOT_FOUND
            return found
        if digest is not None and sha256(query) != digest:
            raise PersistedQueryError(
                "provided sha does not match query", ErrorCode.PERSISTED_QUERY_HASH_MISMATCH
            )
        if sha256(query) in self.allowed or is_introspection(query):
            return query
        raise PersistedQueryError(
            "this server runs registered operations only (SUNRANK_PERSISTED_QUERIES=allowlist)",
            ErrorCode.PERSISTED_QUERY_NOT_ALLOWED,
        )

    async def _get(self, digest: str) -> str | None:
        if (found := self._local.get(digest)) is not None:
            self._local.move_to_end(digest)
            return found
        if self.cache is not None:
            found = await self.cache.get(f"apq:{digest}")
            if isinstance(found, str) and sha256(found) == digest:
                self._remember(digest, found)
                return found
        return None

    async def _put(self, digest: str, query: str) -> None:
        if len(query.encode()) > self.max_query_bytes:
            return  # refused by the document limits anyway (app/schema/documents.py)
        if digest in self._local:
            self._local.move_to_end(digest)
            return
        self._remember(digest, query)
        if self.cache is not None:
            await self.cache.set(f"apq:{digest}", query, ttl=REDIS_TTL_SECONDS)

    def _remember(self, digest: str, query: str) -> None:
        self._local[digest] = query
        self._bytes += len(query)
        while self._local and (len(self._local) > self.max_entries or self._bytes > MAX_BYTES):
            _, old = self._local.popitem(last=False)
            self._bytes -= len(old)
