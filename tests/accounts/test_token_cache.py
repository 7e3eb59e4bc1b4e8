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
