"""Small ASGI helpers shared by the edge middlewares: typed aliases, the client's
address, JSON error answers for HTTP, and the graphql-transport-ws frames the
middlewares read and write on a WebSocket."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Close codes (RFC 6455 §7.4.1 and graphql-transport-ws's 44xx).
WS_POLICY_VIOLATION = 1008
WS_MESSAGE_TOO_BIG = 1009
WS_BAD_MESSAGE = 4400
WS_UNAUTHORIZED = 4401
WS_FORBIDDEN = 4403
WS_IDLE = 4408

GRAPHQL_PATH = "/graphql"


def client_ip(scope: Scope) -> str:
    """The client's address: the socket peer, or the address a trusted proxy gave
    (``SUNRANK_FORWARDED_ALLOW_IPS``; uvicorn's ProxyHeadersMiddleware sets it)."""
    client = scope.get("client")
    return client[0] if client else "unknown"


def state(scope: Scope) -> dict[str, Any]:
    """Per-request values the middlewares share (request id, viewer, body…)."""
    return scope.setdefault("state", {})


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}


async def send_json_error(
    scope: Scope,
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An HTTP error answer in GraphQL's shape, carrying the request id (app.http.log)."""
    request_id = state(scope).get("request_id")
    extra = {"requestId": request_id} if request_id else {}
    body = json.dumps(error_body(message, code, **extra)).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(headers or []),
        ],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def deny_websocket(
    scope: Scope, receive: Receive, send: Send, status: int, message: str, code: str
) -> None:
    """Refuse a WebSocket handshake with an HTTP status when the server supports the
    denial-response extension (uvicorn does), else with a plain close (HTTP 403)."""
    connect = await receive()  # the handshake's websocket.connect comes first
    if connect["type"] != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = json.dumps(error_body(message, code)).encode()
        await send({
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        })  # fmt: skip
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": message})


class QuietDenials(logging.Filter):
    """uvicorn's websockets-sansio protocol logs "ASGI callable returned without
    completing handshake" at ERROR after the denial response it was asked to send
    (the websocket.http.response extension, used by :func:`deny_websocket`): a
    refused handshake is no server error. Every other path through this app
    accepts or denies, so the line carries no information here."""

    MESSAGE = "ASGI callable returned without completing handshake."

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.MESSAGE

    @classmethod
    def install(cls) -> None:
        logger = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, cls) for f in logger.filters):
            logger.addFilter(cls())


def ws_frame(message: Message) -> dict[str, Any] | None:
    """The graphql-transport-ws frame a ``websocket.receive`` message carries, parsed
    once and remembered on the message (several middlewares read it); None when it is
    not a JSON object (strawberry answers that with close code 4400)."""
    if "_frame" in message:
        return message["_frame"]
    frame = None
    text = message.get("text")
    if text is not None:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        frame = parsed if isinstance(parsed, dict) else None
    message["_frame"] = frame
    return frame


def ws_operation_error(operation_id: Any, message: str, code: str, **extensions: Any) -> Message:
    """A graphql-transport-ws ``error`` frame for one operation."""
    payload = [{"message": message, "extensions": {"code": code, **extensions}}]
    frame = {"id": operation_id, "type": "error", "payload": payload}
    return {"type": "websocket.send", "text": json.dumps(frame)}
