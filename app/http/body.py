"""Request bodies and WebSocket messages: bounded in size, well-formed JSON, bounded
in nesting, before strawberry reads a byte.

HTTP ``POST /graphql``
    - a body over ``SUNRANK_MAX_BODY_BYTES`` gets ``413 PAYLOAD_TOO_LARGE``, whether
      announced by Content-Length or streamed in chunks;
    - a JSON body (``application/json``, or no content type) must be UTF-8, parse,
      nest at most :data:`MAX_JSON_DEPTH` levels, and be one GraphQL request: an
      object whose ``query`` and ``operationName`` are strings and ``variables`` an
      object, when present. Anything else gets ``400 BAD_REQUEST`` saying what is
      wrong. Batches (JSON arrays) are not supported.
    The body, read once, is kept in ``scope["state"]["body"]`` (and, parsed, in
    ``["request"]``) for the response cache, and replayed to the app.
``GET /graphql``
    ``variables`` and ``extensions`` in the query string get the same JSON checks.
WebSocket ``/graphql``
    a message over the same size limit closes the connection with 1009 (message too
    big); a message that is not a JSON object within the nesting limit closes it with
    4400, as graphql-transport-ws prescribes for invalid messages.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from app.http.asgi import (
    GRAPHQL_PATH,
    WS_BAD_MESSAGE,
    WS_MESSAGE_TOO_BIG,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    send_json_error,
    state,
    ws_frame,
)

# GraphQL inputs here nest three levels at most; 32 leaves room for any client
# while keeping every later walk of the request (cache keys, logging) shallow.
MAX_JSON_DEPTH = 32


class BadRequest(ValueError):
    """The request is not a well-formed GraphQL request; the message says why."""


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(raw: bytes | str, what: str) -> Any:
    """Parse ``raw`` as UTF-8 JSON nested at most MAX_JSON_DEPTH levels."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise BadRequest(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def check_graphql_request(value: Any) -> None:
    """A GraphQL-over-HTTP request object (the parts strawberry would trip on)."""
    if isinstance(value, list):
        raise BadRequest("batched requests (a JSON array) are not supported: send one object")
    if not isinstance(value, dict):
        raise BadRequest('the body must be a JSON object such as {"query": "{ stats { videos } }"}')
    for key, kinds, name in (
        ("query", (str,), "a string"),
        ("operationName", (str,), "a string"),
        ("variables", (dict,), "an object"),
        ("extensions", (dict,), "an object"),
    ):
        if value.get(key) is not None and not isinstance(value[key], kinds):
            raise BadRequest(f"`{key}` must be {name}")


def _is_json(scope: Scope) -> bool:
    for name, raw in scope.get("headers") or ():
        if name == b"content-type":
            # strawberry parses any media type containing "application/json" as JSON
            return "json" in raw.decode("latin-1").split(";", 1)[0].lower()
    return True  # checked anyway: harmless, strawberry refuses it without a type


class BodyLimits:
    def __init__(self, app: ASGIApp, max_bytes: int, path: str = GRAPHQL_PATH):
        self.app, self.max_bytes, self.path = app, max_bytes, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") != self.path:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.app(scope, self._checked_ws_receive(receive, send), send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["method"] == "GET":
                self._check_query_string(scope)
            elif scope["method"] == "POST":
                body = await self._read_body(scope, receive, send)
                if body is None:
                    return  # answered (413) or the client went away
                if _is_json(scope):
                    request = parse_json(body, "the request body")
                    check_graphql_request(request)
                    state(scope)["request"] = request  # parsed once (app.response_cache)
                state(scope)["body"] = body
                receive = replay_body(body, receive)
        except BadRequest as exc:
            await send_json_error(scope, send, 400, str(exc), "BAD_REQUEST")
            return
        await self.app(scope, receive, send)

    def _check_query_string(self, scope: Scope) -> None:
        raw = scope.get("query_string", b"")
        if len(raw) > self.max_bytes:
            raise BadRequest(f"the query string is longer than {self.max_bytes} bytes")
        try:
            params = parse_qs(raw.decode("utf-8"), errors="strict")
        except UnicodeDecodeError:
            raise BadRequest("the query string is not valid UTF-8") from None
        for key in ("variables", "extensions"):
            for value in params.get(key, ()):
                parsed = parse_json(value, f"`{key}`")
                if parsed is not None and not isinstance(parsed, dict):
                    raise BadRequest(f"`{key}` must be a JSON object")

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        too_large = f"request body too large: the limit is {self.max_bytes} bytes"
        for name, value in scope.get("headers") or ():
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await send_json_error(scope, send, 413, too_large, "PAYLOAD_TOO_LARGE")
                return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_json_error(scope, send, 413, too_large, "PAYLOAD_TOO_LARGE")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _checked_ws_receive(self, receive: Receive, send: Send) -> Receive:
        async def checked() -> Message:
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            data = message.get("text")
            size = len(data.encode()) if data is not None else len(message.get("bytes") or b"")
            if size > self.max_bytes:
                reason = f"message too big: the limit is {self.max_bytes} bytes"
                return await _close(send, WS_MESSAGE_TOO_BIG, reason)
            if data is None:
                return message  # binary: strawberry refuses it (4400)
            frame = ws_frame(message)
            if frame is not None and json_depth(frame) <= MAX_JSON_DEPTH:
                return message
            try:
                parse_json(data, "the message")
                reason = "a message must be a JSON object"
            except BadRequest as exc:
                reason = str(exc)
            return await _close(send, WS_BAD_MESSAGE, reason)

        return checked


async def _close(send: Send, code: int, reason: str) -> Message:
    """Close the WebSocket and tell the app the client is gone."""
    await send({"type": "websocket.close", "code": code, "reason": reason[:120]})
    return {"type": "websocket.disconnect", "code": code}


def replay_body(body: bytes, receive: Receive) -> Receive:
    """The buffered body once more for the app, then the client's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
