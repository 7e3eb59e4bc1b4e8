"""Property-based fuzzing of the GraphQL API over real HTTP and WebSocket.

hypothesis-graphql generates queries, mutations and subscriptions from the schema,
valid ones and ones with a single schema violation, with hostile scalars
(tests/api/fuzzing.py); their arguments are sent inline or as variables, some
variables swapped for arbitrary JSON. They go to a dedicated server on SQLite,
loaded with the Tournesol sample, as an anonymous client, a contributor, and an
admin; raw malformed bodies go there too. For every request:

- no 5xx, no traceback in the response, no masked internal error
  (``INTERNAL_SERVER_ERROR``), every error has a message;
- nothing logged at ERROR level or with a traceback by the server;
- a request refused (an HTTP error, ``userErrors``, or an error before execution or
  in a root field) leaves the database unchanged; over WebSocket, no close with
  1011 (internal error) or 1006 (abnormal).

``make test`` runs a small, fixed set of examples (the same on every run). For a
hunt: ``SUNRANK_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/api/test_fuzz.py -x``
runs that many random examples per test (``--hypothesis-seed=N`` to repeat a run);
hypothesis prints the shrunk failing request, as a JSON body or a curl command.
``SUNRANK_FUZZ_BACKENDS=sqlite,postgres`` runs them on PostgreSQL + Redis as well.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import graphql
import httpx
import pytest
import pytest_asyncio
import websockets
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode

from tests.api import fuzzing
from tests.api.conftest import (
    ADMIN,
    TABLES,
    Api,
    _prepare_db,
    backend_settings,
    start_server,
    stop_server,
)
from tests.conftest import _pg_admin

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

# The root logger, and uvicorn's, which does not propagate to it ("Exception in ASGI
# application" goes there).
WATCHED_LOGGERS = ("", "uvicorn")
CONTRIBUTOR = "aidjango"  # has comparisons and ratings in the sample
IDENTITIES = (None, CONTRIBUTOR, ADMIN)
LOG_SETTLE_SECONDS = 0.01


def fuzz_settings(default_examples: int) -> Any:
    examples = os.environ.get("SUNRANK_FUZZ_EXAMPLES")
    return settings(
        max_examples=int(examples or default_examples),
        deadline=None,
        derandomize=examples is None,  # the same examples on every run of `make test`
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )  # fmt: skip


class ErrorLog(logging.Handler):
    """Records logged at ERROR or above, or with a traceback, by anything in the
    process (the server runs in it) — except by the background tasks of servers
    started before this one. The session's ``api`` servers (tests/api/conftest.py)
    stay up beside the fuzz target in this process, and tortoise's connections are
    process-wide, so the PostgreSQL one's housekeeping then runs against the fuzz
    target's SQLite file; what it logs says nothing about the fuzzed requests."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.foreign = set(asyncio.all_tasks())

    def emit(self, record: logging.LogRecord) -> None:
        seen = any(record is r for r in self.records)  # via uvicorn's logger and the root
        serious = record.levelno >= logging.ERROR or record.exc_info
        if serious and not seen and not self._from_foreign_task():
            self.records.append(record)

    def _from_foreign_task(self) -> bool:
        try:
            return asyncio.current_task() in self.foreign
        except RuntimeError:  # logged from a thread with no event loop
            return False

    async def take(self) -> list[str]:
        # uvicorn logs an unhandled exception after the 500 has gone out: let it run
        await asyncio.sleep(LOG_SETTLE_SECONDS)
        out = [self._describe(record) for record in self.records]
        self.records.clear()
        return out

    @staticmethod
    def _describe(record: logging.LogRecord) -> str:
        text = f"logged {record.levelname} by {record.name}: {record.getMessage()[:300]}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            frames = traceback.extract_tb(error.__traceback__)
            where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
            text += f" [{type(error).__name__}{where}]"
        return text


@dataclass(repr=False)
class Target:
    api: Api
    log: ErrorLog
    tokens: dict[str | None, str | None] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Target({self.api.backend}, {self.api.url})"

    async def fingerprint(self) -> dict[str, Any]:
        return await fuzzing.fingerprint(self.api.settings.db_url, TABLES)

    def headers(self, identity: str | None) -> dict[str, str]:
        token = self.tokens.get(identity)
        return {"authorization": f"Bearer {token}"} if token else {}

    async def sign_in_again(self) -> None:
        # a generated `logout` may have revoked any identity's tokens
        for identity in IDENTITIES:
            if identity is not None:
                self.tokens[identity] = await self.api.login(identity)

    async def db_problems(self, before: dict[str, Any]) -> list[str]:
        after = await self.fingerprint()
        changed = [table for table in before if before[table] != after[table]]
        return [f"rejected, yet changed the tables {changed}"] if changed else []


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="session",
    params=[
        pytest.param(backend, marks=[pytest.mark.postgres] if backend == "postgres" else [])
        for backend in os.environ.get("SUNRANK_FUZZ_BACKENDS", "sqlite").split(",")
    ],
)
async def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    """A server of its own (fuzzed mutations change its data) with the API suite's
    settings (rate limits out of the way): on SQLite, or on the backends listed in
    ``SUNRANK_FUZZ_BACKENDS`` (``sqlite,postgres``: PostgreSQL + Redis)."""
    server_settings = backend_settings(request, tmp_path_factory.mktemp("fuzz"))
    pg_name = None
    if request.param == "postgres":
        pg_name = server_settings.database_url.rsplit("/", 1)[1]
        await _pg_admin(f'CREATE DATABASE "{pg_name}"')
    log = ErrorLog()
    for logger in WATCHED_LOGGERS:
        logging.getLogger(logger).addHandler(log)
    try:
        await _prepare_db(server_settings.db_url)
        server, task, url = await start_server(server_settings)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                api = Api(request.param, url, server.config.app, server_settings, client)
                target = Target(api, log)
                await target.sign_in_again()
                await log.take()
                yield target
        finally:
            await stop_server(server, task)
    finally:
        for logger in WATCHED_LOGGERS:
            logging.getLogger(logger).removeHandler(log)
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------
# Generated GraphQL operations over HTTP


@dataclass
class Operation:
    identity: str | None
    kind: str
    root_fields: list[str]
    body: dict[str, Any]

    def __repr__(self) -> str:
        who = f"as {self.identity}" if self.identity else "anonymous"
        return f"{self.kind} {who}: {fuzzing.dumps(self.body).decode()}"


@st.composite
def operations(draw: st.DrawFn, kinds: tuple[str, ...]) -> Operation:
    kind = draw(st.sampled_from(kinds))
    mode = draw(st.sampled_from((Mode.POSITIVE, Mode.NEGATIVE)))
    document = draw(fuzzing.documents(kind, mode))
    roots = fuzzing.root_fields(document)
    identity = draw(st.sampled_from(IDENTITIES))
    # an admin's refit is a full fit that takes seconds: tested elsewhere
    assume(not (identity == ADMIN and "refit" in roots))
    document = fuzzing.aim_arguments(document, draw)
    variables: dict[str, Any] = {}
    if draw(st.booleans()):
        document, variables = fuzzing.lift_arguments(document)
        for name in variables:
            if draw(st.integers(0, 3)) == 0:
                variables[name] = draw(fuzzing.hostile_json())
    body: dict[str, Any] = {"query": graphql.print_ast(document)}
    if variables or draw(st.booleans()):
        body["variables"] = variables
    return Operation(identity, kind, roots, body)


async def check_operation(target: Target, operation: Operation) -> list[str]:
    before = await target.fingerprint()
    response = await target.api.client.post(
        "/graphql",
        content=fuzzing.dumps(operation.body),
        headers={"content-type": "application/json", **target.headers(operation.identity)},
    )
    problems = fuzzing.response_problems(response.status_code, response.text)
    problems += await target.log.take()
    try:
        body = response.json()
    except ValueError:
        body = None
    if fuzzing.rejected(response.status_code, body):
        problems += await target.db_problems(before)
    if "logout" in operation.root_fields:
        await target.sign_in_again()
    if problems:
        problems.append(f"answer {response.status_code}: {response.text[:500]}")
    return problems


@fuzz_settings(default_examples=100)
@given(operation=operations(("query", "mutation", "mutation", "subscription")))
# failures found by longer runs, kept
@example(
    Operation(None, "query", ["video"], {"query": '{ video(youtubeId: "a123456789bc") { url } }'})
)
@example(
    Operation(None, "query", ["node"], {"query": '{ node(id: "VmlkZW86YWFhYWFhYWFhYWFh") { id } }'})
)
async def test_generated_operations_over_http(target: Target, operation: Operation):
    problems = await check_operation(target, operation)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------
# Malformed HTTP requests


async def check_raw_request(
    target: Target, request: fuzzing.RawRequest, identity: str | None
) -> list[str]:
    before = await target.fingerprint()
    headers: dict[str, str | bytes] = {**target.headers(identity), **dict(request.headers)}
    if request.content_type:
        headers["content-type"] = request.content_type
    response = await target.api.client.request(
        request.method, "/graphql", content=request.content, params=request.params,
        headers=headers,
    )  # fmt: skip
    problems = fuzzing.response_problems(response.status_code, response.text)
    problems += await target.log.take()
    try:
        body = response.json()
    except ValueError:
        body = None
    # only POST may change anything (a GET mutation would be a CSRF hole)
    if request.method != "POST" or fuzzing.rejected(response.status_code, body):
        problems += await target.db_problems(before)
    if b"logout" in request.content or "logout" in request.params.get("query", ""):
        await target.sign_in_again()
    if problems:
        problems.append(f"answer {response.status_code}: {response.text[:500]}")
    return problems


@fuzz_settings(default_examples=80)
@given(request=fuzzing.raw_requests(), identity=st.sampled_from(IDENTITIES))
# failures found by longer runs, kept
@example(fuzzing.RawRequest("POST", fuzzing.deep_variables(5_000), "text/plain"), None)
async def test_malformed_http_requests(
    target: Target, request: fuzzing.RawRequest, identity: str | None
):
    problems = await check_raw_request(target, request, identity)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------
# Generated operations over WebSocket (graphql-transport-ws)

# A live subscription never completes: its first messages come within this time.
# A query or a mutation is awaited to its end: completing an operation the server
# is finishing races in strawberry (it logs a KeyError).
WS_SUBSCRIPTION_SECONDS = 0.5
WS_SUBSCRIPTION_MESSAGES = 3
WS_OPERATION_SECONDS = 60.0
BAD_CLOSE_CODES = {1006: "abnormal closure", 1011: "internal error"}


async def _ws_exchange(target: Target, operation: Operation) -> tuple[list[dict], int | None]:
    """Subscribe with the operation; collect what comes back until it completes or
    errors (or, for a live subscription, its first messages); the close code if the
    server closed the connection."""
    token = target.tokens.get(operation.identity)
    payload = {"authorization": f"Bearer {token}"} if token else {}
    headers = target.headers(operation.identity)
    messages: list[dict] = []
    live = operation.kind == "subscription"
    wait = WS_SUBSCRIPTION_SECONDS if live else WS_OPERATION_SECONDS
    async with websockets.connect(
        target.api.ws_url, subprotocols=["graphql-transport-ws"], additional_headers=headers,
        max_size=None,
    ) as ws:  # fmt: skip
        try:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            ack = json.loads(await ws.recv())
            assert ack["type"] == "connection_ack", ack
            body = fuzzing.dumps({"id": "1", "type": "subscribe", "payload": operation.body})
            await ws.send(body.decode())
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), wait)
                except TimeoutError:
                    if not live:
                        messages.append({"type": "timeout", "after_seconds": wait})
                    break
                message = json.loads(raw)
                messages.append(message)
                if message.get("type") in ("complete", "error"):
                    break
                if live and len(messages) >= WS_SUBSCRIPTION_MESSAGES:
                    break  # it streams while fuzzed mutations move scores
            if live:
                await ws.send(json.dumps({"id": "1", "type": "complete"}))
        except websockets.ConnectionClosed:
            pass
    return messages, ws.close_code


def ws_message_problems(message: dict) -> list[str]:
    """What is wrong with a server message, as with an HTTP answer."""
    payload = message.get("payload")
    if message.get("type") == "error":
        return fuzzing.response_problems(200, json.dumps({"errors": payload}))
    if message.get("type") == "next":
        return fuzzing.response_problems(200, json.dumps(payload))
    return []


async def check_websocket_operation(target: Target, operation: Operation) -> list[str]:
    before = await target.fingerprint()
    messages, close_code = await _ws_exchange(target, operation)
    problems = await target.log.take()
    if close_code in BAD_CLOSE_CODES:
        problems.append(f"closed with {close_code} ({BAD_CLOSE_CODES[close_code]})")
    errored = False
    for message in messages:
        if message.get("type") == "timeout":
            problems.append(f"no answer within {message['after_seconds']} s")
        errored = errored or message.get("type") == "error"
        if message.get("type") == "next":
            errored = errored or fuzzing.rejected(200, message.get("payload"))
        problems += ws_message_problems(message)
    if errored or (close_code is not None and close_code >= 4000):
        problems += await target.db_problems(before)
    if "logout" in operation.root_fields:
        await target.sign_in_again()
    if problems:
        problems.append(f"messages: {messages!r}"[:1000])
    return problems


@fuzz_settings(default_examples=30)
@given(operation=operations(("query", "mutation", "subscription", "subscription")))
async def test_generated_operations_over_websocket(target: Target, operation: Operation):
    problems = await check_websocket_operation(target, operation)
    assert not problems, "\n".join(problems)


@fuzz_settings(default_examples=30)
@given(frames=fuzzing.ws_frames(), identity=st.sampled_from(IDENTITIES))
# failures found by longer runs, kept: a close reason over 123 bytes, or not encodable
# in UTF-8; an id that is not a string
@example(['{"type": "' + "x" * 200 + '"}'], None)
@example(['{"type": "x\\udfffy"}'], None)
@example(['{"type": "subscribe", "id": [], "payload": {"query": "{ stats { users } }"}}'], None)
async def test_malformed_websocket_messages(
    target: Target, frames: list[str | bytes], identity: str | None
):
    before = await target.fingerprint()
    received: list[dict] = []
    token = target.tokens.get(identity)
    auth = {"authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(
        target.api.ws_url, subprotocols=["graphql-transport-ws"], max_size=None
    ) as ws:
        try:
            await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
            received.append(json.loads(await ws.recv()))
            for frame in frames:
                await ws.send(frame)
            # a ping answered means every frame before it was handled
            await ws.send(json.dumps({"type": "ping"}))
            while received[-1].get("type") != "pong":
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
        except websockets.ConnectionClosed:
            pass
    problems = await target.log.take()
    if ws.close_code in BAD_CLOSE_CODES:
        problems.append(f"closed with {ws.close_code} ({BAD_CLOSE_CODES[ws.close_code]})")
    for message in received:
        problems += ws_message_problems(message)
    problems += await target.db_problems(before)  # these frames hold no mutation
    assert not problems, "\n".join([*problems, f"received: {received!r}"[:1000]])
