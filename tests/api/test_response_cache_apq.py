"""Hash-only automatic persisted queries go through the whole-response cache
(app/response_cache.py keys on the resolved document, not on the body)."""

from __future__ import annotations

import hashlib

from app.datasets.importer import import_dataset
from app.datasets.reader import read_dataset
from app.db import connection
from app.metrics import REQUESTS
from tests.conftest import SAMPLE, running_app

QUERY = "{ rankings(first: 3, includeUnsafe: true) { edges { score node { youtubeId } } } }"
CACHED = REQUESTS.labels("query (cached)", "200")  # answered by app/response_cache.py


def _served_cached() -> float:
    return CACHED._value.get()


HASH_ONLY = {
    "extensions": {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(QUERY.encode()).hexdigest()}
    }
}


async def test_hash_only_persisted_queries_are_served_from_the_cache(sqlite_url, tmp_path):
    await connection.migrate(sqlite_url)
    await connection.init(sqlite_url)
    await import_dataset(read_dataset(SAMPLE))
    await connection.close()
    async with running_app(sqlite_url, tmp_path / "d") as (_, client):
        baseline = _served_cached()
        unknown = (await client.post("/graphql", json=HASH_ONLY)).json()
        assert unknown["errors"][0]["message"] == "PersistedQueryNotFound"
        assert _served_cached() == baseline

        registered = await client.post("/graphql", json={"query": QUERY, **HASH_ONLY})
        assert registered.json()["data"]["rankings"]["edges"]
        before = _served_cached()
        by_hash = await client.post("/graphql", json=HASH_ONLY)
        assert by_hash.content == registered.content
        assert _served_cached() == before + 1, "answered from the cache"
        by_text = await client.post("/graphql", json={"query": QUERY})
        assert by_text.content == registered.content
        assert _served_cached() == before + 2, "text and hash: one entry"

        # Other variables or another operation name are other entries.
        other = await client.post("/graphql", json={**HASH_ONLY, "variables": {"x": 1}})
        assert other.json()["data"] == registered.json()["data"]
        assert _served_cached() == before + 2
