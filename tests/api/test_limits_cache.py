"""The rate limiter (429 + Retry-After) on a small app of its own, and the cache:
keys carry the data version, both backends return the same JSON, and an
unreachable Redis is bypassed, logged, and used again once it is back.
(tests/api/test_edge.py covers the rest of the edge, WebSocket included.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import httpx
import pytest

from app.cache import Cache
from app.config import load_settings
from tests.api.conftest import free_port, start_server, stop_server
from tests.conftest import REDIS_HOST, REDIS_PORT, require_service


async def test_rate_limit_answers_429_with_retry_after(tmp_path):
    settings = load_settings(
        {}, database_url=f"sqlite://{tmp_path / 'db.sqlite3'}", data_dir=tmp_path,
        rate_limit_per_minute=3,
    )  # fmt: skip
    from app.db import connection, writes
    from app.db.models import User, Video

    await connection.migrate(settings.db_url)
    await connection.init(settings.db_url)
    try:  # one comparison: the learner does not start on an empty database (see notes)
        user = await User.create(username="someone")
        a, b = [await Video.create(youtube_id=f"video{i}abcde") for i in "01"]
        await writes.upsert_comparison(user.id, a.id, b.id, {"largely_recommended": (3, 10)})
    finally:
        await connection.close()
    server, task, url = await start_server(settings)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            query = {"query": "{ criteria { name } }"}
            codes = [(await client.post("/graphql", json=query)).status_code for _ in range(3)]
            assert codes == [200, 200, 200]
            response = await client.post("/graphql", json=query)
            assert response.status_code == 429
            assert int(response.headers["retry-after"]) >= 1
            assert "rate limit" in response.json()["errors"][0]["message"]
            assert (await client.get("/healthz")).status_code == 200  # not limited

            # a chunked body over the limit is refused too
            async def chunks():
                for _ in range(20):
                    yield b"x" * 65536

            response = await client.post("/graphql", content=chunks())
            assert response.status_code in (413, 429)
    finally:
        await stop_server(server, task)


async def _memory_and_redis() -> list[Cache]:
    caches = [Cache("memory://", namespace=f"t-{uuid.uuid4().hex}")]
    try:
        require_service("Redis", REDIS_HOST, REDIS_PORT)
    except pytest.skip.Exception:
        return caches
    caches.append(
        Cache(f"redis://{REDIS_HOST}:{REDIS_PORT}/0", namespace=f"t-{uuid.uuid4().hex}", ttl=30)
    )
    return caches


async def test_both_backends_return_the_same_json():
    value = {"edges": [{"rank": 1, "score": 1.5, "video": {"pk": 3}}], "weights": [["a", 1.0]]}
    for cache in await _memory_and_redis():
        calls = []

        async def compute(calls=calls):
            calls.append(1)
            return {**value, "weights": [("a", 1.0)]}  # a tuple, as computed

        revision = await cache.revision()
        key = await cache.key("rankings", 7, {"w": [("a", 1.0)]})
        assert key is not None and key.startswith(f"rankings:7.{revision}:")
        first = await cache.get_or_compute("rankings", 7, {"w": [("a", 1.0)]}, compute)
        second = await cache.get_or_compute("rankings", 7, {"w": [("a", 1.0)]}, compute)
        assert first == second == value and len(calls) == 1, cache.kind
        # another event applied, or a mutation, is another key: never a stale ranking
        assert await cache.get(await cache.key("rankings", 8, {"w": [("a", 1.0)]})) is None
        await cache.data_changed()
        assert await cache.revision() == revision + 1
        assert await cache.get(await cache.key("rankings", 7, {"w": [("a", 1.0)]})) is None
        await cache.close()


@pytest.mark.redis
async def test_a_lost_revision_restarts_from_the_clock_not_from_zero():
    """Redis restarted or evicted the counter: the next revision must not be one an
    earlier life of the cache already used for its keys."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    namespace = f"t-{uuid.uuid4().hex}"
    cache = Cache(f"redis://{REDIS_HOST}:{REDIS_PORT}/0", namespace=namespace)
    first = await cache.revision()
    for _ in range(3):
        await cache.data_changed()
    import redis.asyncio as redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    await client.delete(f"{namespace}:revision")
    await client.aclose()
    assert await cache.revision() > first + 3
    await cache.close()


async def _forward(port: int, target: int):
    """A loopback TCP forwarder to Redis that the test can stop and restart."""

    async def handle(reader, writer):
        up_reader, up_writer = await asyncio.open_connection(REDIS_HOST, target)

        async def pipe(src, dst):
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port)


@pytest.mark.redis
async def test_redis_down_is_bypassed_logged_and_retried(caplog, monkeypatch):
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    monkeypatch.setattr("app.cache.RETRY_SECONDS", 0.2)
    caplog.set_level(logging.WARNING, "sunrank.cache")
    port = free_port()
    cache = Cache(f"redis://127.0.0.1:{port}/0", namespace=f"t-{uuid.uuid4().hex}")
    computed = []

    async def compute():
        computed.append(1)
        return {"n": len(computed)}

    # nothing listens: every call falls through to compute, logged once
    assert await cache.get_or_compute("k", 1, None, compute) == {"n": 1}
    assert await cache.get_or_compute("k", 1, None, compute) == {"n": 2}
    assert "unavailable" in caplog.text and cache.errors >= 1
    # Redis comes back (through the forwarder): the cache works again
    server = await _forward(port, REDIS_PORT)
    try:
        await asyncio.sleep(0.3)
        assert await cache.get_or_compute("k2", 1, None, compute) == {"n": 3}
        assert await cache.get_or_compute("k2", 1, None, compute) == {"n": 3}
        assert "is back" in caplog.text
    finally:
        server.close()
        await cache.close()
