"""GraphQL over HTTP (media types, status codes, the graphql-http audit), the one
error model (codes, stale tokens, subscription failures) and automatic persisted
queries, against the real server of tests/api/conftest.py."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import websockets

from app.http.media import GRAPHQL_RESPONSE
from app.http.persisted import PersistedQueries, sha256
from tests.api.anonymous import answered_anonymous
from tests.api.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
AUDIT = Path(__file__).with_name("graphql_http_audit.mjs")
MODERN = {"accept": f"{GRAPHQL_RESPONSE}, application/json;q=0.9"}
STATS = "{ stats { videos } }"


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("SUNRANK_TEST_SERVICES") == "required":
        pytest.fail(reason + " (SUNRANK_TEST_SERVICES=required)")
    pytest.skip(reason)


# -- GraphQL over HTTP -----------------------------------------------------------------


async def test_graphql_http_audit_passes_every_check(api: Api):
    """graphql-http's own conformance audit (npm graphql-http, pinned in package.json),
    run by Node against the live server: every one of its checks is ok."""
    node = shutil.which("node")
    if node is None:
        _skip_or_fail("node is not installed: the graphql-http audit needs it")
    if not (ROOT / "node_modules" / "graphql-http" / "package.json").exists():
        _skip_or_fail("node_modules/graphql-http is missing: run `npm ci`")
    process = await asyncio.create_subprocess_exec(
        node, str(AUDIT), api.url + "/graphql", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["failures"] == [], json.dumps(report["failures"], indent=1)[:4000]
    assert report["ok"] == report["total"] >= 61, report


async def test_media_types_and_status_codes(api: Api):
    # success: the type asked for, on a fresh answer and on a cached one
    for _ in range(2):
        response = await api.client.post("/graphql", json={"query": STATS}, headers=MODERN)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
        assert response.json()["data"]["stats"]["videos"] > 0
    legacy = await api.client.post("/graphql", json={"query": STATS})
    assert legacy.headers["content-type"].startswith("application/json")

    # request errors: 400 and no `data` for the new type, 200 and `data: null` for JSON
    for query, code in (
        ("{ stats {", "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
    ):
        modern = await api.client.post("/graphql", json={"query": query}, headers=MODERN)
        assert modern.status_code == 400, modern.text
        assert modern.headers["content-type"].startswith(GRAPHQL_RESPONSE)
        assert "data" not in modern.json()
        assert modern.json()["errors"][0]["extensions"]["code"] == code
        old = await api.client.post("/graphql", json={"query": query})
        assert old.status_code == 200 and old.json()["data"] is None
        assert old.json()["errors"][0]["extensions"]["code"] == code

    # a field error is no request error: 200 with `data` for both types
    bad_id = 'query { node(id: "not-an-id") { id } }'
    for headers in (MODERN, {}):
        response = await api.client.post("/graphql", json={"query": bad_id}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "data" in body and body["errors"][0]["extensions"]["code"] == "BAD_ID"

    # errors of the edge (here: not JSON) come in the type asked for too
    broken = await api.client.post(
        "/graphql", content=b"{", headers={**MODERN, "content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.headers["content-type"].startswith(GRAPHQL_RESPONSE)


# -- one error model -------------------------------------------------------------------


async def test_stale_token_on_a_public_query_answers_as_anonymous(api: Api):
    stale = {"authorization": "Bearer not-a-token-we-issued"}
    response = await api.client.post(
        "/graphql", json={"query": "{ me { username } stats { videos } }"}, headers=stale
    )
    assert answered_anonymous(response), response.text
    assert response.json()["data"]["stats"]["videos"] > 0
    # what needs sign-in still says so, with the same code
    needs_sign_in = await api.client.post(
        "/graphql",
        json={"query": "mutation { logout { revokedTokens userErrors { code } } }"},
        headers=stale,
    )
    body = needs_sign_in.json()
    assert body["data"]["logout"]["userErrors"] == [{"code": "UNAUTHENTICATED"}], body
    assert body["extensions"]["warnings"][0]["code"] == "UNAUTHENTICATED"


async def test_subscription_failures_are_error_messages(api: Api):
    async with websockets.connect(api.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        cases = [
            ('subscription { scoresUpdated(youtubeIds: ["bad"]) { youtubeId } }', "BAD_VIDEO_ID"),
            ("subscription { nope }", "GRAPHQL_VALIDATION_FAILED"),
        ]
        for i, (query, code) in enumerate(cases):
            await ws.send(
                json.dumps({"id": str(i), "type": "subscribe", "payload": {"query": query}})
            )
            message = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert message["type"] == "error" and message["id"] == str(i), message
            assert message["payload"][0]["extensions"]["code"] == code
        # the connection stays usable, and nothing else was sent for those operations
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 20)) == {"type": "pong"}


# -- automatic persisted queries -------------------------------------------------------


def _apq(digest: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def test_automatic_persisted_queries(api: Api):
    query = "query Apq { stats { videos comparisons } }"
    digest = sha256(query)
    ext = _apq(digest)
    # unknown hash: Apollo's answer, at 200 (a 400 makes Apollo clients give up APQ)
    for headers in ({}, MODERN):
        miss = await api.client.post("/graphql", json={"extensions": ext}, headers=headers)
        assert miss.status_code == 200, miss.text
        error = miss.json()["errors"][0]
        assert error["message"] == "PersistedQueryNotFound"
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # the text once, with its hash: run and remembered
    first = await api.client.post("/graphql", json={"query": query, "extensions": ext})
    assert first.json()["data"]["stats"]["videos"] > 0, first.text
    # then the hash alone, by POST and by GET
    again = await api.client.post("/graphql", json={"extensions": ext})
    assert again.json() == first.json()
    by_get = await api.client.get(
        "/graphql", params={"extensions": json.dumps(ext)}, headers={"accept": "*/*"}
    )
    assert by_get.status_code == 200 and by_get.json() == first.json(), by_get.text
    assert "accept" in by_get.headers["vary"].lower()  # its type follows Accept
    # a hash that does not match its text, a bad extension: request errors
    wrong = await api.client.post(
        "/graphql", json={"query": STATS, "extensions": ext}, headers=MODERN
    )
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    for bad in ({"version": 2, "sha256Hash": digest}, {"version": 1, "sha256Hash": "xyz"}, 7):
        response = await api.client.post(
            "/graphql", json={"extensions": {"persistedQuery": bad}}, headers=MODERN
        )
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    # a mutation by GET stays refused, persisted or not
    mutation = "mutation { logout { revokedTokens } }"
    await api.client.post(
        "/graphql", json={"query": mutation, "extensions": _apq(sha256(mutation))}
    )
    refused = await api.client.get(
        "/graphql", params={"extensions": json.dumps(_apq(sha256(mutation)))}
    )
    assert refused.status_code == 400 and "GET" in refused.json()["errors"][0]["message"]


async def test_persisted_queries_off_and_allowlist(api: Api, tmp_path: Path):
    store = api.app.state.persisted_queries
    registered = "query Registered { stats { videos } }"
    manifest = tmp_path / "operations.json"
    manifest.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [
                    {"id": "x", "name": "Registered", "type": "query", "body": registered}
                ],
            }
        )
    )
    try:
        api.app.state.persisted_queries = PersistedQueries(
            replace(api.settings, persisted_queries="off")
        )
        off = await api.client.post("/graphql", json={"extensions": _apq(sha256(registered))})
        assert off.json()["errors"][0]["message"] == "PersistedQueryNotSupported"
        assert (await api.client.post("/graphql", json={"query": STATS})).json()["data"]

        allow = {"persisted_queries": "allowlist", "persisted_queries_file": str(manifest)}
        api.app.state.persisted_queries = PersistedQueries(replace(api.settings, **allow))
        by_hash = await api.client.post("/graphql", json={"extensions": _apq(sha256(registered))})
        assert by_hash.json()["data"]["stats"]["videos"] > 0, by_hash.text
        by_text = await api.client.post("/graphql", json={"query": registered})
        assert by_text.json() == by_hash.json()
        # (a text the server never answered: the whole-response cache only ever holds
        # answers to operations that ran, which in this mode are registered ones)
        unregistered = "{ unregistered: stats { videos } }"
        other = await api.client.post("/graphql", json={"query": unregistered}, headers=MODERN)
        assert other.status_code == 400
        assert other.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
        unknown = await api.client.post("/graphql", json={"extensions": _apq(sha256(STATS))})
        assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        # over WebSocket too: by hash, and refused when not registered
        async with websockets.connect(api.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            by_hash = {"extensions": _apq(sha256(registered))}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": by_hash}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert answer["type"] == "next", answer
            assert answer["payload"]["data"]["stats"]["videos"] > 0
            assert json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] == "complete"
            by_text = {"query": unregistered}
            await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": by_text}))
            refused = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert refused["type"] == "error", refused
            assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
        # introspection stays open (GraphiQL's documentation pane, code generators)
        schema = await api.client.post(
            "/graphql",
            json={"query": "query IntrospectionQuery { __schema { queryType { name } } }"},
        )
        assert schema.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    finally:
        api.app.state.persisted_queries = store


@pytest.mark.redis
async def test_persisted_queries_are_shared_through_redis(api: Api):
    """Two stores (two server processes) on one Redis: what one learned, the other
    runs."""
    from app.cache import Cache
    from tests.conftest import REDIS_HOST, REDIS_PORT, require_service

    require_service("Redis", REDIS_HOST, REDIS_PORT)
    namespace = f"sunrank-test-apq-{os.getpid()}-{id(api)}"
    caches = [Cache(f"redis://{REDIS_HOST}:{REDIS_PORT}/0", namespace=namespace) for _ in range(2)]
    try:
        one, two = (PersistedQueries(api.settings, cache) for cache in caches)
        query = "{ shared: stats { videos } }"
        ext = _apq(sha256(query))
        with pytest.raises(Exception, match="PersistedQueryNotFound"):
            await two.document(None, ext)
        await one.document(query, ext)
        assert await two.document(None, ext) == query
    finally:
        for cache in caches:
            await cache.close()
        import redis.asyncio as redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
        async for key in client.scan_iter(match=f"{namespace}:*"):
            await client.delete(key)
        await client.aclose()
