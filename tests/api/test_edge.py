"""The public edge (app/http) over real HTTP and WebSocket: the same size, rate and
authentication rules on both, forwarded headers only from trusted proxies,
malformed requests answered 4xx with the request id, WebSocket sessions logged
with their real outcome, and cache keys that survive a restart.

Servers with small limits are started per test (``edge_server``), on SQLite with
the memory cache and on PostgreSQL with Redis, on a database holding one
comparison (the learner does not start on an empty one)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from app.db import connection, writes
from tests.api.conftest import (
    _pg_admin,
    backend_settings,
    start_server,
    stop_server,
)

PROTOCOL = ["graphql-transport-ws"]
STATS = "{ stats { users videos comparisons } }"


async def _seed(db_url: str) -> None:
    from app.db.models import User, Video

    await connection.migrate(db_url)
    await connection.init(db_url)
    try:
        user = await User.create(username="someone")
        a, b = [await Video.create(youtube_id=f"video{i}abcde") for i in "01"]
        await writes.upsert_comparison(user.id, a.id, b.id, {"largely_recommended": (3, 10)})
    finally:
        await connection.close()


@asynccontextmanager
async def edge_server(
    request: pytest.FixtureRequest, tmp: Path, **overrides: Any
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """A real server on ``request.param``'s backend with these settings: its URL and
    an HTTP client for it."""
    settings = backend_settings(request, tmp, **overrides)
    pg_name = None
    if settings.database_url.startswith("postgres"):
        pg_name = settings.database_url.rsplit("/", 1)[1]
        await _pg_admin(f'CREATE DATABASE "{pg_name}"')
    try:
        await _seed(settings.db_url)
        server, task, url = await start_server(settings)
        try:
            async with httpx.AsyncClient(base_url=url) as client:
                yield url, client
        finally:
            await stop_server(server, task)
    finally:
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


backends = pytest.mark.parametrize(
    "backend",
    ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])],
    indirect=True,
)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    return request


class _Param:
    """A stand-in for pytest's indirect parametrisation (one backend only)."""

    def __init__(self, param: str):
        self.param = param


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/graphql"


async def ws_send(ws: Any, frame: dict) -> None:
    await ws.send(json.dumps(frame))


async def ws_recv(ws: Any, timeout: float = 30) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


@asynccontextmanager
async def ws_session(url: str, payload: dict | None = None, **kw: Any) -> AsyncIterator[Any]:
    async with websockets.connect(ws_url(url), subprotocols=PROTOCOL, **kw) as ws:
        await ws_send(ws, {"type": "connection_init", "payload": payload or {}})
        assert (await ws_recv(ws))["type"] == "connection_ack"
        yield ws


async def ws_query(ws: Any, query: str, op: str = "1", variables: dict | None = None) -> dict:
    """Run one operation; its ``next`` payload, or the ``error`` frame itself."""
    await ws_send(ws, {"id": op, "type": "subscribe",
                       "payload": {"query": query, "variables": variables or {}}})  # fmt: skip
    frame = await ws_recv(ws)
    if frame["type"] == "next":
        assert (await ws_recv(ws))["type"] == "complete"
        return frame["payload"]
    return frame


async def _token(client: httpx.AsyncClient, username: str) -> str:
    password = "correct horse battery"
    for mutation in ("register", "login"):
        body = (await client.post("/graphql", json={
            "query": f"mutation($u: String!, $p: String!) {{ {mutation}(input: "
                     "{username: $u, password: $p}) { userErrors { code } } }",
            "variables": {"u": username, "p": password},
        })).json()  # fmt: skip
        assert not body["data"][mutation]["userErrors"], body
    body = (await client.post("/graphql", json={
        "query": "mutation($u: String!, $p: String!) { login(input: {username: $u, "
                 "password: $p}) { token } }", "variables": {"u": username, "p": password},
    })).json()  # fmt: skip
    return body["data"]["login"]["token"]


# ------------------------------------------------------------------ rate limits


@backends
async def test_http_and_websocket_share_one_rate_limit(backend, tmp_path):
    async with edge_server(backend, tmp_path, rate_limit_per_minute=4) as (url, client):
        assert (await client.post("/graphql", json={"query": STATS})).status_code == 200
        # the handshake counts one, each operation one: 2 operations are left
        async with ws_session(url) as ws:
            for op in ("a", "b"):
                assert "data" in await ws_query(ws, STATS, op)
            refused = await ws_query(ws, STATS, "c")
            assert refused["type"] == "error" and refused["id"] == "c"
            error = refused["payload"][0]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert error["extensions"]["retryAfter"] >= 1
            assert "4 requests per minute" in error["message"]
            # the connection stays usable (ping/pong needs no operation)
            await ws_send(ws, {"type": "ping"})
            assert (await ws_recv(ws))["type"] == "pong"
        response = await client.post("/graphql", json={"query": STATS})
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_password_guesser_on_websocket_is_limited_like_on_http(tmp_path):
    async with edge_server(_Param("sqlite"), tmp_path, rate_limit_per_minute=5) as (url, _):
        guess = ("mutation { login(input: {username: \"someone\", password: \"guess\"}) "
                 "{ userErrors { code } } }")  # fmt: skip
        codes = []
        async with ws_session(url) as ws:
            for i in range(8):
                frame = await ws_query(ws, guess, str(i))
                codes.append(frame["payload"][0]["extensions"]["code"] if "type" in frame
                             else "answered")  # fmt: skip
        assert codes.count("answered") == 4  # 5 per minute, the handshake took one
        assert codes[4:] == ["RATE_LIMITED"] * 4


async def test_rotating_x_forwarded_for_gets_no_fresh_limit(tmp_path):
    async with edge_server(_Param("sqlite"), tmp_path, rate_limit_per_minute=3) as (_, client):
        codes = [
            (await client.post(
                "/graphql", json={"query": STATS},
                headers={"x-forwarded-for": f"203.0.113.{i}"},
            )).status_code
            for i in range(6)
        ]  # fmt: skip
    assert codes == [200, 200, 200, 429, 429, 429]


async def test_forwarded_for_is_honoured_from_a_trusted_proxy(tmp_path, caplog):
    caplog.set_level(logging.INFO, "sunrank.request")
    async with (
        edge_server(
            _Param("sqlite"), tmp_path, rate_limit_per_minute=2, forwarded_allow_ips=("127.0.0.1",)
        ) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        codes = []
        for client_ip in ("203.0.113.7", "203.0.113.7", "203.0.113.7", "198.51.100.1"):
            response = await client.post(
                "/graphql", json={"query": STATS}, headers={"x-forwarded-for": client_ip}
            )
            codes.append(response.status_code)
    # each real client has its own limit; the proxy itself is not the client
    assert codes == [200, 200, 429, 200]
    clients = [getattr(r, "fields", {}).get("client") for r in caplog.records]
    assert "203.0.113.7" in clients and "198.51.100.1" in clients


# ------------------------------------------------------------------ sizes and shapes


@backends
async def test_oversized_bodies_and_messages_are_refused(backend, tmp_path):
    async with edge_server(backend, tmp_path, max_body_bytes=4096) as (url, _):
        big = {"query": STATS, "variables": {"pad": "x" * 5000}}
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.post("/graphql", json=big)
            assert response.status_code == 413
            assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

            async def chunks():
                for _ in range(8):
                    yield b"x" * 1024

            assert (await client.post("/graphql", content=chunks())).status_code == 413
        async with ws_session(url) as ws:
            await ws_send(ws, {"id": "1", "type": "subscribe", "payload": big})
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws_recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


MALFORMED = [
    (b'"hello"', "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b"[1, 2]", "batched requests"),
    (b"\xff\xfe{}", "not valid UTF-8"),
    (b'{"query": ', "not valid JSON"),
    (b'{"query": 3}', "`query` must be a string"),
    (b'{"query": "{ stats { users } }", "variables": [1]}', "`variables` must be an object"),
    (
        b'{"query": "query($v: String) { stats { users } }", "variables": {"v": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}}",
        "nests deeper than 32 levels",
    ),
]


@backends
async def test_malformed_requests_get_400_with_the_request_id(backend, tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    async with edge_server(backend, tmp_path) as (url, client):
        for body, reason in MALFORMED:
            response = await client.post(
                "/graphql", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 400, (body[:40], response.text)
            error = response.json()["errors"][0]
            assert reason in error["message"], (body[:40], error)
            assert error["extensions"]["requestId"] == response.headers["x-request-id"]
        deep = json.dumps({"v": json.loads("[" * 40 + "]" * 40)})
        response = await client.get("/graphql", params={"query": STATS, "variables": deep})
        assert response.status_code == 400
        # a subscription over HTTP is told to use the WebSocket
        response = await client.post(
            "/graphql", json={"query": "subscription { scoresUpdated { youtubeId } }"}
        )
        assert response.status_code == 400
        assert "WebSocket" in response.json()["errors"][0]["message"]
        assert (await client.put("/graphql", json={"query": STATS})).status_code == 405
        async with ws_session(url) as ws:
            await ws.send('{"id": "1", "type": "subscribe", "payload": ' + "[" * 5000)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws_recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# ------------------------------------------------------------------ WebSocket specifics


@backends
async def test_websocket_signs_in_through_connection_init(backend, tmp_path):
    async with edge_server(backend, tmp_path) as (url, client):
        token = await _token(client, f"ws-{uuid.uuid4().hex[:6]}")
        me = "{ me { username } }"
        for payload in ({"Authorization": f"Bearer {token}"}, {"authToken": token}):
            async with ws_session(url, payload) as ws:
                assert (await ws_query(ws, me))["data"]["me"]["username"].startswith("ws-")
        header = {"authorization": f"Bearer {token}"}
        async with ws_session(url, additional_headers=header) as ws:
            assert (await ws_query(ws, me))["data"]["me"] is not None
        async with ws_session(url) as ws:  # anonymous
            assert (await ws_query(ws, me))["data"]["me"] is None
        # a bad token in connection_init closes with 4403; on the handshake, 401
        async with websockets.connect(ws_url(url), subprotocols=PROTOCOL) as ws:
            await ws_send(ws, {"type": "connection_init", "payload": {"authToken": "nope"}})
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws_recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                ws_url(url), subprotocols=PROTOCOL,
                additional_headers={"authorization": "Bearer nope"},
            ):  # fmt: skip
                pass
        assert refused.value.response.status_code == 401


@backends
async def test_websocket_connection_and_operation_caps(backend, tmp_path):
    async with edge_server(backend, tmp_path, ws_max_connections_per_ip=2, ws_max_operations=2) as (
        url,
        _,
    ):
        subscription = 'subscription { scoresUpdated(youtubeIds: ["video0abcde"]) { initial } }'
        async with ws_session(url) as first, ws_session(url):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(ws_url(url), subprotocols=PROTOCOL):
                    pass
            assert refused.value.response.status_code == 429
            for op in ("s1", "s2"):
                await ws_send(first, {"id": op, "type": "subscribe",
                                      "payload": {"query": subscription}})  # fmt: skip
                assert (await ws_recv(first))["payload"]["data"]["scoresUpdated"]["initial"]
            await ws_send(first, {"id": "s3", "type": "subscribe",
                                  "payload": {"query": subscription}})  # fmt: skip
            refused_op = await ws_recv(first)
            assert refused_op["id"] == "s3" and refused_op["type"] == "error"
            assert refused_op["payload"][0]["extensions"]["code"] == "TOO_MANY_OPERATIONS"
            # completing one frees its place
            await ws_send(first, {"id": "s1", "type": "complete"})
            assert "data" in await ws_query(first, STATS, "q")
        # the two connections closed: a new one is accepted
        async with ws_session(url) as ws:
            assert "data" in await ws_query(ws, STATS)


async def test_idle_websockets_are_closed(tmp_path):
    async with edge_server(_Param("sqlite"), tmp_path, ws_idle_seconds=1) as (url, _):
        session = ws_session(url)
        async with session as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws_recv(ws, timeout=30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408


@pytest.mark.slow
async def test_a_client_that_stops_reading_is_disconnected(tmp_path, caplog):
    """Answers pile up for a client that reads nothing: once one waits longer than
    SUNRANK_WS_SEND_TIMEOUT_SECONDS, the server closes the connection and lets go of
    its operations instead of holding them (and their answers) for good."""
    caplog.set_level(logging.WARNING, "sunrank.websocket")
    introspection = (
        "{ __schema { types { name description fields { name description "
        "args { name description type { name } } } inputFields { name description } } } }"
    )
    sent = 1000  # ~40 KB answers each: far more than the socket buffers hold
    server = edge_server(
        _Param("sqlite"), tmp_path, ws_send_timeout_seconds=1, ws_max_operations=sent
    )
    # max_queue=1: the client stops reading from its socket after one message
    async with server as (url, _), ws_session(url, max_queue=1) as ws:
        for i in range(sent):
            await ws_send(ws, {"id": str(i), "type": "subscribe",
                               "payload": {"query": introspection}})  # fmt: skip
        for _ in range(600):  # the server gives up after the timeout: wait for it
            if "reads too slowly" in caplog.text:
                break
            await asyncio.sleep(0.1)
        assert "reads too slowly" in caplog.text
        answers = 0
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                frame = await ws_recv(ws)
                answers += frame["type"] == "next"
        assert answers < sent


async def test_websocket_sessions_are_logged_and_counted_with_their_real_status(tmp_path, caplog):
    caplog.set_level(logging.INFO, "sunrank.request")
    async with edge_server(_Param("sqlite"), tmp_path, ws_max_connections_per_ip=1) as (url, _):
        async with ws_session(url) as ws:
            assert "data" in await ws_query(ws, STATS)
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(ws_url(url), subprotocols=PROTOCOL):
                    pass
        await asyncio.sleep(0.5)  # the server logs when it sees the close
        async with httpx.AsyncClient(base_url=url) as client:
            metrics = (await client.get("/metrics")).text
    sessions = [
        r.fields for r in caplog.records
        if getattr(r, "fields", {}).get("operation") == "websocket"
    ]  # fmt: skip
    assert {(s["status"], s["close_code"]) for s in sessions} >= {(101, 1000), (429, None)}
    assert not any(s["status"] == 500 for s in sessions)
    assert 'sunrank_requests_total{operation="websocket",status="101"}' in metrics
    assert 'operation="websocket",status="500"' not in metrics


# ------------------------------------------------------------------ cache keys


@backends
async def test_a_mutation_over_websocket_invalidates_cached_answers(backend, tmp_path):
    async with edge_server(backend, tmp_path) as (url, client):
        before = (await client.post("/graphql", json={"query": STATS})).json()
        assert before == (await client.post("/graphql", json={"query": STATS})).json()
        async with ws_session(url) as ws:
            register = (
                'mutation { register(input: {username: "by-websocket", password: '
                '"correct horse battery"}) { userErrors { code } } }'
            )
            assert (await ws_query(ws, register))["data"]["register"]["userErrors"] == []
        after = (await client.post("/graphql", json={"query": STATS})).json()
    assert after["data"]["stats"]["users"] == before["data"]["stats"]["users"] + 1


@pytest.mark.redis
@pytest.mark.postgres
async def test_cached_answers_survive_a_restart_only_while_still_true(tmp_path):
    """Two server lives on one PostgreSQL and one Redis namespace: what changed while
    the server was down, or just before it stopped, is what the next life serves."""
    request = _Param("postgres")
    settings = backend_settings(request, tmp_path)
    pg_name = settings.database_url.rsplit("/", 1)[1]
    await _pg_admin(f'CREATE DATABASE "{pg_name}"')
    try:
        await _seed(settings.db_url)
        answers = []
        for life in range(3):
            server, task, url = await start_server(settings)
            try:
                async with httpx.AsyncClient(base_url=url) as client:
                    for _ in range(2):  # the second is served from Redis
                        body = (await client.post("/graphql", json={"query": STATS})).json()
                        answers.append(body["data"]["stats"])
                    if life == 0:  # a change made by a mutation, right before the stop
                        await _token(client, "registered-before-restart")
            finally:
                await stop_server(server, task)
            if life == 1:  # a change made while the server is down (an import, say)
                await connection.init(settings.db_url)
                try:
                    from app.db.models import User, Video

                    user = await User.get(username="someone")
                    a = await Video.get(youtube_id="video0abcde")
                    c = await Video.create(youtube_id="video2abcde")
                    await writes.upsert_comparison(
                        user.id, a.id, c.id, {"largely_recommended": (-2, 10)}
                    )
                finally:
                    await connection.close()
        users = [a["users"] for a in answers]
        comparisons = [a["comparisons"] for a in answers]
        assert users == [1, 1, 2, 2, 2, 2]
        assert comparisons == [1, 1, 1, 1, 2, 2]
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
