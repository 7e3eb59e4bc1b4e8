"""Whole-response cache for anonymous GraphQL queries.

Most traffic is anonymous reads (rankings, video pages) whose answer depends only
on the request body and on the data. Resolving them field by field costs far more
than serving stored bytes, so an anonymous ``POST /graphql`` whose operations are
all queries is answered from the cache when the same body was answered before at
the same *data version* (:meth:`app.cache.Cache.key`): the learner's score version
(it moves with every applied event, including those written by other processes)
and the cache's generation, which this middleware bumps after every mutation
(addVideo, register... change data without an event; there is one server process
per database, see app/leader.py). Resolver-level cache keys carry both too. A
cached answer is therefore never staler than the last applied comparison or the
last mutation, and the cache's TTL bounds anything else. Responses with errors are never stored.

Requests with an ``Authorization`` header, mutations and GETs (GraphiQL) pass
through untouched; a mutation bumps the mutation count when it completes.
"""

from __future__ import annotations

import functools
import hashlib
import json

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.limits import replay_body

MAX_CACHED_BYTES = 256 * 1024


@functools.lru_cache(maxsize=512)
def _operation_types(query: str) -> frozenset[OperationType] | None:
    try:
        document = parse(query)
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
        body = scope.get("state", {}).get("body")  # buffered by app.limits.ApiGuard
        if body is None:
            body = await _read_body(receive)
        replay = replay_body(body, receive)
        try:
            request = json.loads(body)
            types = _operation_types(request["query"])
        except (ValueError, KeyError, TypeError):
            types = None  # not ours to judge: strawberry answers it
        state = scope["app"].state
        cache = getattr(state, "cache", None)
        if types is not None and OperationType.MUTATION in types:
            try:
                await self.app(scope, replay, send)
            finally:
                if cache is not None:
                    cache.data_changed()
            return
        anonymous = not any(name == b"authorization" for name, _ in scope["headers"])
        if not (anonymous and types == {OperationType.QUERY} and cache and cache.enabled):
            await self.app(scope, replay, send)
            return

        digest = hashlib.sha256(body).hexdigest()
        key = cache.key("response", state.learner.version, digest)
        cached = await cache.get(key)
        if cached is not None:
            scope.setdefault("state", {})["operation"] = "query (cached)"
            await _send_json(send, cached.encode())
            return
        captured = _Capture(send)
        await self.app(scope, replay, captured)
        if captured.cacheable():
            await cache.set(key, bytes(captured.body).decode())


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


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
