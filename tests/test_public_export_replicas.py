"""The public dataset on every replica (PostgreSQL): the leader's build is stored in
``public_export`` (migration 0060) and a replica that does not lead serves the same
bytes under the same ETag from its own data dir, with no shared filesystem."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from app.config import load_settings
from app.datasets.importer import import_dataset
from app.datasets.published import PublicExports, _conn
from app.datasets.reader import read_dataset
from app.db import connection
from tests.conftest import SAMPLE
from tests.test_crash import _prepare
from tests.test_ops import _start_server
from tests.test_published_exports import serving

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_a_follower_serves_what_the_leader_stored(postgres_url: str, tmp_path: Path):
    await connection.migrate(postgres_url)
    await connection.init(postgres_url)
    try:
        leader = PublicExports(
            load_settings({}, data_dir=tmp_path / "a", database_url=postgres_url)
        )
        follower = PublicExports(
            load_settings({}, data_dir=tmp_path / "b", database_url=postgres_url)
        )
        assert await follower.sync() == 0  # nothing stored yet: still 503
        await leader.rebuild()  # an empty database: headers only
        assert await follower.sync() == 2
        assert await follower.sync() == 0  # same ETags: nothing fetched again
        empty = follower._files["all.zip"].etag

        await import_dataset(read_dataset(SAMPLE))
        await leader.rebuild()
        assert await follower.sync() == 2
        async with serving(leader) as a, serving(follower) as b:
            for path in ("/exports/all.zip", "/exports/comparisons.csv"):
                built, adopted = await a.get(path), await b.get(path)
                assert adopted.status_code == 200 and adopted.content == built.content
                assert adopted.headers["etag"] == built.headers["etag"] != f'"{empty}"'
        # the follower's own data dir holds the files: a restart serves them at once
        assert (tmp_path / "b" / "exports" / "all.zip").read_bytes() == (
            tmp_path / "a" / "exports" / "all.zip"
        ).read_bytes()

        # A leader's first start after migration 0060 (nothing stored yet): it stores
        # the files its data dir holds; a new leader with an empty data dir adopts them.
        await _conn().execute_script("DELETE FROM public_export")
        restarted = PublicExports(leader.settings)
        assert await restarted.load_existing() is not None
        assert await restarted.reconcile() is not None
        assert await follower.sync() == 0  # the same ETags are stored again
        fresh = PublicExports(load_settings({}, data_dir=tmp_path / "c", database_url=postgres_url))
        assert await fresh.reconcile() is not None
        assert fresh._files["all.zip"].etag == leader._files["all.zip"].etag
    finally:
        await connection.close()


def test_a_follower_process_serves_the_leaders_export(postgres_url, env_for, tmp_path):
    asyncio.run(_prepare(postgres_url))
    env = {**env_for, "SUNRANK_DATABASE_URL": postgres_url, "SUNRANK_EXPORT_EVERY_SECONDS": "5"}
    servers = []
    try:
        for name in ("a", "b"):
            proc, base = _start_server({**env, "SUNRANK_DATA_DIR": str(tmp_path / name)})
            servers.append((proc, base))
        (_, base_a), (_, base_b) = servers
        assert httpx.get(f"{base_b}/readyz", timeout=30).json()["role"] == "follower"
        deadline = time.monotonic() + 120  # a bound for a loaded machine, not a timing check
        while True:
            a = httpx.get(f"{base_a}/exports/all.zip", timeout=30)
            b = httpx.get(f"{base_b}/exports/all.zip", timeout=30)
            if a.status_code == b.status_code == 200 and a.headers["etag"] == b.headers["etag"]:
                break
            assert time.monotonic() < deadline, f"follower answers {b.status_code}"
            time.sleep(0.5)
        assert b.content == a.content and b.content.startswith(b"PK")
    finally:
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            proc.wait(timeout=60)
