"""Two real ``sunrank serve`` processes on one PostgreSQL database and one Redis
(issue 13, item 3): what they share through Redis means the same on both.

- the per-client rate limit is one counter across both processes;
- a ``rankings`` answer cached on B is not served again once a write on A returns
  (the data revision in Redis moved), and B's next answers follow the write.

No timing is asserted.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import time
import uuid

import httpx
import pytest

from bench._replicas import SUBMIT
from tests.conftest import REDIS_HOST, REDIS_PORT, require_service
from tests.test_crash import _prepare
from tests.test_ops import _start_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

LIMIT = 6  # anonymous requests per minute per address, across both processes
RANKINGS = "{ rankings(first: 50, includeUnsafe: true) { edges { score node { youtubeId } } } }"
WAIT_S = 120  # generous bound for a condition on a loaded machine (not a timing assertion)
_addresses = (f"10.9.{i // 250}.{i % 250 + 1}" for i in itertools.count())


def _post(base: str, query: str, variables: dict | None = None, **headers: str) -> httpx.Response:
    # each call from its own forwarded address, so that only the probe below meets the limit
    headers.setdefault("x-forwarded-for", next(_addresses))
    body = {"query": query, "variables": variables or {}}
    return httpx.post(f"{base}/graphql", json=body, headers=headers, timeout=30)


def _data(response: httpx.Response) -> dict:
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return body["data"]


def _hits(base: str) -> float:
    """How many answers the process served from the whole-response cache."""
    text = httpx.get(f"{base}/metrics", timeout=30).text
    # answers of the whole-response cache (a miss there may still hit the resolver's)
    found = re.search(
        r'^sunrank_requests_total\{operation="query \(cached\)",status="200"\} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def _cached(base: str) -> dict:
    """A rankings answer once the process served it from the cache. A refit or an
    adopted state may move the data revision between two identical queries: retry."""
    started = time.monotonic()
    while True:
        first = _data(_post(base, RANKINGS))
        hits = _hits(base)
        again = _data(_post(base, RANKINGS))
        if _hits(base) == hits + 1:
            assert again == first
            return again
        assert time.monotonic() - started < WAIT_S, "never served from the cache"


def _token(base: str, username: str) -> str:
    creds = {"i": {"username": username, "password": "a long enough password"}}
    register = "mutation($i: RegisterInput!) { register(input: $i) { userErrors { message } } }"
    login = "mutation($i: CredentialsInput!) { login(input: $i) { token } }"
    assert not _data(_post(base, register, creds))["register"]["userErrors"]
    return _data(_post(base, login, creds))["login"]["token"]


def test_rate_limit_and_response_cache_shared_by_two_processes(postgres_url, env_for, tmp_path):
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    youtube_ids = asyncio.run(_prepare(postgres_url))
    env = {
        **env_for, "SUNRANK_DATABASE_URL": postgres_url,
        "SUNRANK_CACHE_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
        "SUNRANK_CACHE_NAMESPACE": f"t-{uuid.uuid4().hex}",  # this test's keys only
        "SUNRANK_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "SUNRANK_FORWARDED_ALLOW_IPS": "127.0.0.1",  # the test picks its addresses
    }  # fmt: skip
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(_start_server({**env, "SUNRANK_DATA_DIR": str(tmp_path / name)}))
        (_, base_a), (_, base_b) = servers

        # 1. One address, alternately on A and B: LIMIT answers in all, not per process.
        probe = "192.0.2.77"
        codes = [
            _post(base, "{ __typename }", **{"x-forwarded-for": probe}).status_code
            for base in [base_a, base_b] * (LIMIT // 2 + 1)
        ]
        assert codes == [200] * LIMIT + [429] * 2, codes

        # 2. A rankings answer cached on B ...
        before = _cached(base_b)

        # ... is stale as soon as a write on A has returned: B's next answer is not the
        # cached one (a miss), whether or not B has applied the event yet.
        token = _token(base_a, "shared")
        scores = [{"criterion": "largely_recommended", "score": 10}]
        submitted = _post(
            base_a, SUBMIT,
            {"i": {"videoA": youtube_ids[0], "videoB": youtube_ids[1], "scores": scores}},
            authorization=f"Bearer {token}",
        )  # fmt: skip
        assert not _data(submitted)["submitComparison"]["userErrors"]
        hits = _hits(base_b)
        _post(base_b, RANKINGS)
        assert _hits(base_b) == hits, "B served a cached answer made before A's write"

        # B's answers follow the write once B applied it (its own learner).
        started = time.monotonic()
        while _data(_post(base_b, RANKINGS)) == before:
            assert time.monotonic() - started < WAIT_S, "B's rankings never moved"
            time.sleep(0.3)
        assert _cached(base_b) != before  # and cached again
    finally:
        for proc, _ in servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in servers:
            proc.communicate(timeout=60)
