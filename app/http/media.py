"""GraphQL over HTTP's media types: ``application/graphql-response+json`` for a
client that accepts it, ``application/json`` for the others (legacy clients).

The media type decides the status code of a request error (a document that does
not parse or validate, bad variables): 400 with no ``data`` entry under
``application/graphql-response+json``, 200 with ``"data": null`` under
``application/json`` (app/resolvers/context.py applies it). This middleware only
picks the type and labels the answer, whoever wrote it: the GraphQL app, the
whole-response cache (app/response_cache.py) or a refusal of the edge.
"""

from __future__ import annotations

from app.http.asgi import GRAPHQL_PATH, ASGIApp, Message, Receive, Scope, Send, state

GRAPHQL_RESPONSE = "application/graphql-response+json"
_JSON = b"application/json"
_GRAPHQL_RESPONSE_CT = (GRAPHQL_RESPONSE + "; charset=utf-8").encode()


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def prefers_graphql_response(accept: str | None) -> bool:
    """Whether ``Accept`` asks for ``application/graphql-response+json`` at least as
    much as for ``application/json`` (ties go to the newer type). No header, or only
    wildcards, means a legacy client: ``application/json``."""
    if not accept:
        return False
    graphql_q = json_q = 0.0
    for item in accept.split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        if media == GRAPHQL_RESPONSE:
            graphql_q = max(graphql_q, _quality(params))
        elif media == "application/json":
            json_q = max(json_q, _quality(params))
    return graphql_q > 0 and graphql_q >= json_q


def _accept(scope: Scope) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers") or () if k == b"accept"]
    return ",".join(values) if values else None


def _modern_type(name: bytes, value: bytes) -> bytes:
    if name == b"content-type" and value.startswith(_JSON):
        return _GRAPHQL_RESPONSE_CT
    return value


def wants_graphql_response(scope: Scope) -> bool:
    return bool(state(scope).get("graphql_response"))


class GraphQLMediaType:
    def __init__(self, app: ASGIApp, path: str = GRAPHQL_PATH):
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        modern = prefers_graphql_response(_accept(scope))
        # GET answers (persisted queries) may be kept by HTTP caches: their type
        # depends on Accept
        vary = scope.get("method") == "GET"
        if not modern and not vary:
            await self.app(scope, receive, send)
            return
        if modern:
            state(scope)["graphql_response"] = True

        async def relabel(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                headers = list(message.get("headers") or ())
                if modern:
                    headers = [(k, _modern_type(k, v)) for k, v in headers]
                if vary:
                    headers.append((b"vary", b"Accept"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, relabel)
