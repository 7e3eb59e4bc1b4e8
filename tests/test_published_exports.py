"""app/datasets/published.py over real HTTP, without the learner: what is served
before the first build, after it, and after a restart (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from app.config import load_settings
from app.datasets.importer import import_dataset
from app.datasets.published import PublicExports, _conn
from app.datasets.reader import read_dataset
from tests.conftest import SAMPLE

pytestmark = pytest.mark.slow  # each imports a sample: ~10 s


@asynccontextmanager
async def serving(exports: PublicExports) -> AsyncIterator[httpx.AsyncClient]:
    """A real uvicorn server holding only the export routes, on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        Starlette(routes=exports.routes()), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await task


async def test_nothing_is_built_on_a_request_and_a_restart_serves_the_same_file(
    db: str, tmp_path: Path
):
    await import_dataset(read_dataset(SAMPLE))
    settings = load_settings({}, data_dir=tmp_path, database_url=db)
    exports = PublicExports(settings)  # not started: no background build
    async with serving(exports) as client:
        for path in ("/exports/all.zip", "/exports/comparisons.csv"):
            waiting = await client.get(path)
            assert waiting.status_code == 503 and waiting.headers["retry-after"] == "60"
        assert not (tmp_path / "exports").exists()  # the requests built nothing

        await exports.rebuild()
        first = await client.get("/exports/all.zip")
        assert first.status_code == 200 and first.content.startswith(b"PK")
        comparisons = await client.get("/exports/comparisons.csv")
        assert comparisons.content.startswith(b"public_username,video_a,video_b,")
        assert comparisons.headers["content-disposition"].startswith("attachment;")

    # only the two files, no temporary file left behind
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [
        "all.zip", "comparisons.csv",
    ]  # fmt: skip

    # A new process publishes what the last one left, with the same validators,
    # without building (its first build is due one period after the file's mtime).
    again = PublicExports(settings)
    assert await again.load_existing() is not None
    async with serving(again) as client:
        reread = await client.get("/exports/all.zip")
        assert reread.content == first.content
        assert reread.headers["etag"] == first.headers["etag"]
        assert reread.headers["last-modified"] == first.headers["last-modified"]
        assert again.builds == 0
        # the same data rebuilt: the file (and its Last-Modified) stay as they were
        mtime = (tmp_path / "exports" / "all.zip").stat().st_mtime_ns
        await again.rebuild()
        assert (tmp_path / "exports" / "all.zip").stat().st_mtime_ns == mtime
        weak = {"if-none-match": f'W/{first.headers["etag"]}, "other"'}
        assert (await client.get("/exports/all.zip", headers=weak)).status_code == 304
        garbled = {"if-modified-since": "not a date"}
        assert (await client.get("/exports/all.zip", headers=garbled)).status_code == 200


async def test_a_missing_file_means_a_build_at_startup(db: str, tmp_path: Path):
    await import_dataset(read_dataset(SAMPLE))
    settings = load_settings({}, data_dir=tmp_path, database_url=db)
    exports = PublicExports(settings)
    await exports.rebuild()
    (tmp_path / "exports" / "comparisons.csv").unlink()
    if db.startswith("postgres"):  # else the leader adopts the copy stored there
        await _conn().execute_script("DELETE FROM public_export")
    restarted = PublicExports(settings)
    assert await restarted.load_existing() is None  # so _run builds at once
    restarted.start()
    try:
        for _ in range(300):
            if restarted.builds:
                break
            await asyncio.sleep(0.05)
        assert restarted.builds == 1
        assert (tmp_path / "exports" / "comparisons.csv").is_file()
    finally:
        await restarted.stop()
