"""Whole-response cache for anonymous GraphQL queries.

Most traffic is anonymous reads (rankings, video pages) whose answer depends only
on the request body and on the data. Resolving them field by field costs far more
than serving stored bytes, so an anonymous ``POST /graphql`` whose operations are
all queries is answered from the cache when the same body was answered before at
the same *data version* (:meth:`app.cache.Cache.key`): the last event the learner
applied and the cache's data revision, which moves after every mutation, over HTTP
or WebSocket (:class:`app.schema.invalidation.InvalidateOnMutation`), and after
every refit. Both are persistent, so a cached answer is never staler than the last
applied comparison or the last mutation, on any server process, across restarts.
The cache's TTL bounds anything else. Responses with errors are never stored.

Entries are keyed on the document that runs (a hash-only automatic persisted query
is resolved first), its variables and operation name, and the answer's language.

Requests with an ``Authorization`` header, mutations and GETs (GraphiQL) pass
through untouched.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.cache import Cache
from app.http.body import replay_body
from app.http.persisted import PersistedQueryError
from app.i18n import negotiate
from app.schema.documents import parse_document

MAX_CACHED_BYTES = 256 * 1024
# Real clients' queries are a few KiB; bigger bodies bypass the cache, so that
# neither the parse below nor its memo can be made to hold large documents.
MAX_CACHED_REQUEST_BYTES = 16 * 1024


async def _operation_types(query: str, max_tokens: int) -> frozenset[OperationType] | None:
    try:  # the schema's bounded parse cache: parsed once per request, off the loop if large
        document = await parse_document(query, max_tokens)
    except GraphQLError:
        return None  # strawberry answers the syntax error
    return frozenset(
        d.operation for d in document.definitions if isinstance(d, OperationDefinitionNode)
    )


class ResponseCache:
    def __init__(self, app: ASGIApp, path: str = "/graphql"):
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        body = scope.get("state", {}).get("body")  # buffered by app.http.body.BodyLimits
        if body is None or len(body) > MAX_CACHED_REQUEST_BYTES:
            await self.app(scope, receive, send)  # large documents: not worth a parse here
            return
        replay = replay_body(body, receive)
        request = scope["state"].get("request")  # the JSON request BodyLimits checked
        state = scope["app"].state
        cache = getattr(state, "cache", None)
        query = await _document(state, cache, request)
        types = None  # not ours to judge: strawberry answers it
        if isinstance(query, str):
            max_tokens = state.settings.max_query_tokens
            types = await _operation_types(query, max_tokens)
        anonymous = not any(name == b"authorization" for name, _ in scope["headers"])
        if not (anonymous and types == {OperationType.QUERY} and cache and cache.enabled):
            await self.app(scope, replay, send)
            return

        # Labels follow Accept-Language (app/i18n.py): one entry per served language.
        language = negotiate(_header(scope, b"accept-language"))
        # The resolved document, not the body: a hash-only persisted query and the
        # same operation sent as text share one entry.
        assert isinstance(request, dict) and isinstance(query, str)
        what = [query, request.get("variables"), request.get("operationName")]
        canonical = json.dumps(what, sort_keys=True, separators=(",", ":"), default=str)
        digest = hashlib.sha256(canonical.encode()).hexdigest() + "." + language
        key = await cache.key("response", state.learner.watermark, digest)
        if key is None:  # the cache is unavailable
            await self.app(scope, replay, send)
            return
        cached = await cache.get(key)
        if cached is not None:
            scope.setdefault("state", {})["operation"] = "query (cached)"
            await _send_json(send, cached.encode())
            return
        captured = _Capture(send)
        await self.app(scope, replay, captured)
        if captured.cacheable() and not scope["state"].get("no_store"):  # random draws
            await cache.set(key, bytes(captured.body).decode())


async def _document(state: Any, cache: Cache | None, request: Any) -> str | None:
    """The request's GraphQL document: its ``query``, or for a hash-only automatic
    persisted query the document the hash names (app/http/persisted.py). None when
    there is none to run (strawberry answers: not found, not allowed, no query)."""
    if not isinstance(request, dict):
        return None
    query = request.get("query")
    store = getattr(state, "persisted_queries", None)
    if query is not None or store is None:
        return query if isinstance(query, str) else None
    if store.cache is None:  # share documents through Redis, as the GraphQL view does
        store.use_cache(cache)
    try:
        return await store.document(None, request.get("extensions"))
    except PersistedQueryError:
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _send_json(send: Send, body: bytes) -> None:
    await send({
        "type": "http.response.start", "status": 200,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class _Capture:
    """Passes the response through and keeps a copy of a small 200 JSON body."""

    def __init__(self, send: Send):
        self.send = send
        self.status = 0
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and len(self.body) <= MAX_CACHED_BYTES:
            self.body += message.get("body", b"")
        await self.send(message)

    def cacheable(self) -> bool:
        if self.status != 200 or len(self.body) > MAX_CACHED_BYTES:
            return False
        try:
            return "errors" not in json.loads(self.body)
        except ValueError:
            return False
