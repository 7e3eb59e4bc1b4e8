"""The in-process token cache: bounded, least recently used evicted first."""

from app.auth import TokenCache, Viewer


def test_token_cache_is_bounded_without_flushing():
    cache = TokenCache(ttl=60, size=100)
    viewers = [Viewer(i, f"u{i}", False, f"d{i}") for i in range(1000)]
    for v in viewers[:100]:
        cache.put(v.token_sha256 or "", v)
    cache.get("d0")  # recently used: kept
    for v in viewers[100:150]:
        cache.put(v.token_sha256 or "", v)
    assert cache.get("d0") == viewers[0]  # not flushed when full: least recently used go
    assert cache.get("d1") is None and cache.get("d149") == viewers[149]
    assert sum(cache.get(f"d{i}") is not None for i in range(150)) == 100
    cache.evict_user(149)
    assert cache.get("d149") is None


async def test_a_token_just_issued_is_known_without_a_lookup(sqlite_url, tmp_path):
    """register and login put their token in this process's cache, and mark it used:
    its first request neither reads nor writes its row (bench/startup.py: the first
    submitComparison after sign-in paid both)."""
    from app.auth import sha256
    from app.db import connection
    from app.db.models import ApiToken
    from tests.conftest import running_app

    await connection.migrate(sqlite_url)
    async with running_app(sqlite_url, tmp_path / "d") as (app, client):
        creds = {"username": "fresh", "password": "a long enough password"}
        register = "mutation($i: RegisterInput!) { register(input: $i) { token } }"
        login = "mutation($i: CredentialsInput!) { login(input: $i) { token } }"
        tokens = []
        for doc, name in ((register, "register"), (login, "login")):
            body = await client.post("/graphql", json={"query": doc, "variables": {"i": creds}})
            tokens.append(body.json()["data"][name]["token"])
        cache = app.state.token_cache
        for token in tokens:
            viewer = cache.get(sha256(token))
            assert viewer is not None and viewer.username == "fresh"
            row = await ApiToken.get(token_sha256=sha256(token))
            assert row.last_used_at is not None
        me = await client.post(
            "/graphql", json={"query": "{ me { username } }"},
            headers={"Authorization": f"Bearer {tokens[1]}"},
        )  # fmt: skip
        assert me.json()["data"]["me"]["username"] == "fresh"
