"""The server over real HTTP: ``sunrank serve`` in a subprocess, and the ASGI app
with its lifespan in process."""

import socket
import subprocess
import sys
import time

import httpx

from app.datasets.importer import import_dataset
from app.datasets.reader import read_dataset
from app.db import connection
from tests.conftest import SAMPLE, running_app

VIDEOS = (
    "query($after: String) { videos(first: 2, after: $after) { totalCount "
    "edges { node { youtubeId url } } pageInfo { hasNextPage endCursor } } }"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_graphql_over_http(env_for, tmp_path):
    port = _free_port()
    env_for["SUNRANK_PORT"] = str(port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--demo", "--demo-path", str(SAMPLE)],
        env=env_for,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start within 60 s"
            time.sleep(0.2)
        response = httpx.post(f"{base}/graphql", json={"query": "{ criteria { name isMain } }"})
        criteria = response.json()["data"]["criteria"]
        assert criteria[0] == {"name": "largely_recommended", "isMain": True}
        assert len(criteria) == 10
        page = httpx.post(f"{base}/graphql", json={"query": VIDEOS}).json()["data"]["videos"]
        assert page["totalCount"] == 887, "the demo data was loaded into the empty database"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_videos_pages_follow_their_cursors(db, db_url, tmp_path):
    await import_dataset(read_dataset(SAMPLE))
    await connection.close()
    async with running_app(db_url, tmp_path / "data") as (_, client):
        seen, after = [], None
        for _ in range(3):
            body = (
                await client.post("/graphql", json={"query": VIDEOS, "variables": {"after": after}})
            ).json()
            page = body["data"]["videos"]
            seen += [e["node"]["youtubeId"] for e in page["edges"]]
            after = page["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == 6
        bad = (
            await client.post("/graphql", json={"query": "{ videos(first: 1000) { totalCount } }"})
        ).json()
        assert "between 1 and 100" in bad["errors"][0]["message"]
        bad = (
            await client.post(
                "/graphql", json={"query": '{ videos(after: "garbage") { totalCount } }'}
            )
        ).json()
        assert "cursor" in bad["errors"][0]["message"]
        assert (await client.get("/healthz")).json() == {"status": "ok"}
