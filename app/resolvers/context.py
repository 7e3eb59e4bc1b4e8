"""The per-request context and the GraphQL ASGI app that builds it.

The context carries the services (learner, cache, settings), the signed-in
:class:`~app.auth.Viewer` found by :class:`app.http.auth.Authenticate` (or by
``connection_init`` on a WebSocket), and per-request
memos (no global dataloaders: each request gets its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError, get_operation_ast, parse
from graphql import OperationType as GraphQLOperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.unset import UNSET, UnsetType

from app import auth
from app.cache import Cache
from app.config import Settings
from app.errors import ErrorCode, InvalidInput
from app.http.asgi import send_json_error, state
from app.http.auth import token_from_params
from app.http.media import wants_graphql_response
from app.http.persisted import PersistedQueries, PersistedQueryError
from app.resolvers.catalog import VideoCatalog
from app.resolvers.errors import unauthenticated


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None  # strawberry's sub-response, or the socket
    settings: Settings
    learner: Any  # app.engine.service.LearnerService
    cache: Cache
    token_cache: auth.TokenCache | None
    viewer: auth.Viewer | None
    catalog: VideoCatalog
    connection_params: dict | None = None
    memo: dict[Any, Any] = field(default_factory=dict)

    def require_viewer(self, field: str = "") -> auth.Viewer:
        if self.viewer is None:
            raise unauthenticated(field)
        return self.viewer

    def require_admin(self) -> auth.Viewer:
        viewer = self.require_viewer()
        if not viewer.is_admin:
            raise InvalidInput("", "this mutation is for administrators only", ErrorCode.FORBIDDEN)
        return viewer

    async def my_scores(self) -> dict[int, list]:
        """The viewer's personal scores by video id (one learner call per request)."""
        if "my_scores" not in self.memo:
            rows = await self.learner.contributor_scores(self.viewer.id) if self.viewer else []
            by_video: dict[int, list] = {}
            for row in rows:
                by_video.setdefault(row.video_id, []).append(row)
            self.memo["my_scores"] = by_video
        return self.memo["my_scores"]


USE_WEBSOCKET = (
    "subscriptions are served over WebSocket only: connect to /graphql with the "
    "graphql-transport-ws protocol"
)


def persisted_queries(request: Request | WebSocket) -> PersistedQueries:
    """The app's persisted-query store (made on first use when create_app did not)."""
    app_state = request.scope["app"].state
    store = getattr(app_state, "persisted_queries", None)
    if store is None:
        store = app_state.persisted_queries = PersistedQueries(app_state.settings)
    if store.cache is None:
        store.use_cache(getattr(app_state, "cache", None))
    return store


def _is_subscription(request_data: GraphQLRequestData) -> bool:
    query = request_data.query or ""
    if "subscription" not in query:  # the keyword must be there: skip the parse
        return False
    try:
        operation = get_operation_ast(parse(query), request_data.operation_name)
    except GraphQLError:
        return False  # strawberry reports the syntax error
    return operation is not None and operation.operation is GraphQLOperationType.SUBSCRIPTION


class _TransportWSHandler(BaseGraphQLTransportWSHandler["Context", None]):
    """strawberry's graphql-transport-ws handler, where a failed subscription ends
    with the protocol's ``error`` message (an operation that yields nothing but
    errors, e.g. a bad argument its resolver refuses, would otherwise arrive as
    ``next`` with ``data: null`` followed by ``complete``), and quiet about two races
    a client can cause by completing an operation, or leaving, while its last message
    goes out: neither is a server error."""

    async def handle_subscribe(self, message: Any) -> None:
        """Persisted queries and the allow-list (app/http/persisted.py) apply to
        WebSocket operations too; a refusal is this operation's ``error`` message."""
        payload = message.get("payload") or {}
        store = persisted_queries(self.context.request)
        if self.connection_acknowledged and (
            store.mode == "allowlist" or payload.get("extensions") is not None
        ):
            try:
                query = await store.document(payload.get("query"), payload.get("extensions"))
            except PersistedQueryError as exc:
                if message["id"] not in self.operations:
                    error = GraphQLError(exc.message, extensions={"code": exc.code.value})
                    await self.send_message(
                        {"id": message["id"], "type": "error", "payload": [error.formatted]}
                    )
                    return
            else:
                message = {**message, "payload": {**payload, "query": query}}
        await super().handle_subscribe(message)

    async def _send_result_stream(self, operation: Any, result_source: Any) -> None:
        async def failures_as_errors() -> Any:
            async for result in result_source:
                if (
                    not isinstance(result, PreExecutionError)  # strawberry's own path
                    and getattr(result, "errors", None)
                    and getattr(result, "data", False) is None
                ):
                    await operation.send_initial_errors(result.errors)  # ends the operation
                    return
                yield result

        await super()._send_result_stream(operation, failures_as_errors())

    def forget_id(self, id: str) -> None:
        self.operations.pop(id, None)  # strawberry's `del` raises if `complete` won

    async def handle_task_exception(self, error: Exception) -> None:
        if not isinstance(error, WebSocketDisconnected):
            await super().handle_task_exception(error)


class SunrankGraphQL(GraphQL[Context, None]):
    """strawberry's ASGI app with our context (``context_getter``), WebSocket
    sign-in through ``connection_init``, subscriptions refused over HTTP, and:

    - GraphQL over HTTP's status codes: a request error (the document does not parse
      or validate, bad variables, a refused persisted query) is a 400 without
      ``data`` when the client accepts ``application/graphql-response+json``
      (app/http/media.py), a 200 with ``"data": null`` for ``application/json``;
    - automatic persisted queries and the allow-list (app/http/persisted.py);
    - the warning of a bearer token answered as anonymous (app/http/auth.py) in
      ``extensions.warnings``;
    - strawberry's own HTTP errors (405, 400…) answered as JSON with the request id.
    """

    graphql_transport_ws_handler_class = _TransportWSHandler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            code = "METHOD_NOT_ALLOWED" if exc.status_code == 405 else "BAD_REQUEST"
            await send_json_error(scope, send, exc.status_code, exc.reason, code)
            return
        st = state(scope)
        if st.get("request_error") and wants_graphql_response(scope):
            response.status_code = 400
        if "auth_warning" in st:
            response.headers["www-authenticate"] = 'Bearer error="invalid_token"'
        await response(scope, receive, send)

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A persisted query by GET has no `query` either (and Apollo Client sends
        # `Accept: */*`): it wants its answer, not the GraphiQL page.
        if "extensions" in request.query_params:
            return False
        return super().should_render_graphql_ide(request)

    async def execute_operation(  # type: ignore[override]
        self, request: Any, request_adapter: Any, request_data: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if isinstance(request_data, GraphQLRequestData):
            if request_data.protocol != "http":
                raise HTTPException(400, USE_WEBSOCKET)
            try:
                request_data.query = await persisted_queries(request).document(
                    request_data.query, request_data.extensions
                )
            except PersistedQueryError as exc:
                # Apollo clients give up on APQ after a 400: "not found" stays a 200
                state(request.scope)["retryable_pq" if exc.retryable else "request_error"] = True
                return ExecutionResult(
                    data=None,
                    errors=[GraphQLError(exc.message, extensions={"code": exc.code.value})],
                )
            if _is_subscription(request_data):
                raise HTTPException(400, USE_WEBSOCKET)
        return await super().execute_operation(
            request, request_adapter, request_data, *args, **kwargs
        )

    def encode_json(self, data: object) -> str:
        # orjson: a 20-edge ranking page in 2.4 µs instead of json.dumps' 29 µs (~2 %
        # of a cold `rankings` request). A str (not bytes), so that WebSocket
        # messages stay text frames, as graphql-transport-ws requires.
        return orjson.dumps(data).decode()

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        body = await super().process_result(request, result)
        st = state(request.scope)
        if result.errors and result.data is None and all(not e.path for e in result.errors):
            # nothing ran: the document, its variables or a limit were refused
            if not st.get("retryable_pq"):
                st["request_error"] = True
            if st.get("request_error") and wants_graphql_response(request.scope):
                body.pop("data", None)  # the spec: a request error has no `data`
        if (warning := st.get("auth_warning")) is not None:
            body["extensions"] = {**(body.get("extensions") or {}), "warnings": [warning]}
        return body

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        app = request.scope["app"]
        state = request.scope.get("state") or {}
        return Context(
            request=request,
            response=response,
            settings=app.state.settings,
            learner=app.state.learner,
            cache=app.state.cache,
            token_cache=getattr(app.state, "token_cache", None),
            viewer=state.get("viewer"),
            catalog=app.state.catalog,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Sign in with the token of the ``connection_init`` payload, if it has one
        (app.http.auth.token_from_params); a bad one closes with 4403."""
        try:
            token = token_from_params(context.connection_params)
            if token is None:
                return UNSET  # anonymous, or signed in by the handshake's header
            viewer = await auth.authenticate(token, context.settings, context.token_cache)
        except auth.BadToken:
            raise ConnectionRejectionError() from None
        context.viewer = viewer
        # the rate limiter and the log line key on the viewer too
        context.request.scope.setdefault("state", {})["viewer"] = viewer
        return UNSET
