"""Video metadata end to end over real HTTP: a server with its metadata worker on,
talking to the local fake YouTube (Data API with a key), on SQLite + memory cache
and PostgreSQL + Redis. No timed assertions: polls with a bounded wait."""

from __future__ import annotations

import asyncio
import csv
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.api.conftest import (
    ADMIN,
    Api,
    _pg_admin,
    _prepare_db,
    backend_settings,
    start_server,
    stop_server,
)
from tests.conftest import SAMPLE
from tests.sources.fake_youtube import API_KEY, FakeYouTube, serve_fake_youtube, video_item

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

VIDEO = """query($id: String!) { video(youtubeId: $id) { youtubeId title uploader description
  tags language durationSeconds publishedAt availability metadataFetchedAt } }"""
ADD = """mutation($i: AddVideoInput!) { addVideo(input: $i) { created video { title }
  userErrors { field code message } } }"""
SET = """mutation($i: SetVideoMetadataInput!) { setVideoMetadata(input: $i) {
  video { title tags metadataFetchedAt } userErrors { field code message } } }"""
SUBMIT = """mutation($a: String!, $b: String!) { submitComparison(input: {videoA: $a, videoB: $b,
  scores: [{criterion: largely_recommended, score: 4}]}) { comparison { id }
  userErrors { field code } } }"""
RANKED = """query($u: Boolean!) { rankings(first: 100, includeUnsafe: $u) {
  edges { node { youtubeId title } } } }"""


def sample_video_ids() -> list[str]:
    with open(SAMPLE / "comparisons.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return sorted({r["video_a"] for r in rows} | {r["video_b"] for r in rows})


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="session",
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])],
)
async def meta(request, tmp_path_factory) -> AsyncIterator[tuple[Api, FakeYouTube]]:
    with serve_fake_youtube() as fake:
        for i, yt in enumerate(sample_video_ids()):
            fake.videos[yt] = video_item(
                yt, f"Sample video number {i}", f"Channel {i % 7}",
                published=f"20{10 + i % 14}-0{1 + i % 9}-15T10:00:00Z",
            )  # fmt: skip
        tmp = tmp_path_factory.mktemp(f"metadata-{request.param}")
        settings = backend_settings(
            request, tmp, metadata_worker=True, youtube_api_key=API_KEY,
            youtube_api_url=fake.api_url, youtube_oembed_url=fake.oembed_url,
            metadata_retry_seconds=0.2,
        )  # fmt: skip
        pg_name = settings.database_url.rsplit("/", 1)[1] if request.param == "postgres" else None
        if pg_name:
            await _pg_admin(f'CREATE DATABASE "{pg_name}"')
        try:
            await _prepare_db(settings.db_url)
            server, task, url = await start_server(settings)
            try:
                async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                    yield Api(request.param, url, server.config.app, settings, client), fake
            finally:
                await stop_server(server, task)
        finally:
            if pg_name:
                await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


async def eventually(check: Callable[[], Awaitable[Any]], what: str, tries: int = 600) -> Any:
    """Poll ``check`` until it returns something truthy (bounded: tries × 50 ms)."""
    for _ in range(tries):
        if result := await check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def video(api: Api, youtube_id: str, token: str | None = None) -> dict | None:
    body = await api.gql(VIDEO, {"id": youtube_id}, token)
    assert "errors" not in body, body
    return body["data"]["video"]


async def fetched_after(api: Api, youtube_id: str, previous: str | None) -> dict | None:
    found = await video(api, youtube_id)
    return found if found and found["metadataFetchedAt"] not in (None, previous) else None


async def test_imported_videos_get_their_metadata_in_the_background(meta) -> None:
    api, fake = meta

    async def none_left() -> bool:
        ((n,),) = await api.rows("SELECT count(*) FROM video WHERE metadata_fetched_at IS NULL")
        return n == 0

    await eventually(none_left, "every imported video fetched")
    # batches of at most 50 ids, one call each
    assert all(len(c["ids"]) <= 50 for c in fake.calls("/youtube/v3/videos"))
    edges = (await api.gql(RANKED, {"u": False}))["data"]["rankings"]["edges"]
    assert edges and all(e["node"]["title"].startswith("Sample video") for e in edges)


async def test_add_video_fetches_its_metadata(meta) -> None:
    api, _ = meta
    token = await api.register(f"meta_{uuid.uuid4().hex[:8]}")
    body = await api.gql(ADD, {"i": {"youtubeId": "Frc1111111A"}}, token)
    assert body["data"]["addVideo"] == {"created": True, "video": {"title": None},
                                        "userErrors": []}  # fmt: skip
    found = await eventually(lambda: fetched_after(api, "Frc1111111A", None), "metadata")
    assert found == {
        "youtubeId": "Frc1111111A",
        "title": "Le réchauffement climatique expliqué en dix minutes",
        "uploader": "Sciences Étonnantes",
        "description": found["description"],
        "tags": ["climat"],
        "language": "fr",
        "durationSeconds": 600,
        "publishedAt": "2024-02-29T22:30:00+00:00",
        "availability": "OK",
        "metadataFetchedAt": found["metadataFetchedAt"],
    }
    assert found["description"].startswith("Une explication claire")


async def test_users_cannot_write_metadata(meta) -> None:
    api, _ = meta
    token = await api.register(f"meta_{uuid.uuid4().hex[:8]}")
    ((count,),) = await api.rows("SELECT count(*) FROM video")
    attempts = [
        ("title", "VANDALIZED <b>!</b>"), ("language", "xx"), ("durationSeconds", 5),
        ("publishedAt", "2020-01-01T00:00:00Z"),
    ]  # fmt: skip
    for field, value in attempts:
        for youtube_id in ("NewVideo001", "Frc1111111A"):  # new, and known
            body = await api.gql(ADD, {"i": {"youtubeId": youtube_id, field: value}}, token)
            payload = body["data"]["addVideo"]
            assert payload["created"] is False and payload["video"] is None, body
            assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
                (field, "READ_ONLY")
            ]
            assert "YouTube" in payload["userErrors"][0]["message"]
    assert await api.rows("SELECT count(*) FROM video") == [(count,)]
    assert await video(api, "NewVideo001") is None
    # the admin's mutation is refused to a contributor
    body = await api.gql(SET, {"i": {"youtubeId": "Frc1111111A", "title": "mine"}}, token)
    assert [e["code"] for e in body["data"]["setVideoMetadata"]["userErrors"]] == ["FORBIDDEN"]
    found = await eventually(lambda: fetched_after(api, "Frc1111111A", None), "metadata")
    assert found["title"].startswith("Le réchauffement")


async def test_a_comparison_creates_a_new_video_known_or_not_at_the_source(meta) -> None:
    api, _ = meta
    token = await api.register(f"meta_{uuid.uuid4().hex[:8]}")
    known = sample_video_ids()[0]
    for new in ("dQw4w9WgXcQ", "Gone0000001"):
        body = await api.gql(SUBMIT, {"a": known, "b": new}, token)
        assert body["data"]["submitComparison"]["userErrors"] == [], body
    found = await eventually(lambda: fetched_after(api, "dQw4w9WgXcQ", None), "metadata")
    assert (found["title"], found["availability"], found["language"]) == (
        "How democracies decide: a simple explanation", "OK", "en"
    )  # fmt: skip
    gone = await eventually(lambda: fetched_after(api, "Gone0000001", None), "flagged")
    assert (gone["availability"], gone["title"]) == ("DELETED", None)


async def test_admin_override_is_locked_until_unlocked(meta) -> None:
    api, _ = meta
    admin = await api.login(ADMIN)
    user = await api.register(f"meta_{uuid.uuid4().hex[:8]}")
    await api.gql(ADD, {"i": {"youtubeId": "NoTags00001"}}, user)
    before = await eventually(lambda: fetched_after(api, "NoTags00001", None), "metadata")
    body = await api.gql(SET, {"i": {"youtubeId": "NoTags00001", "title": "Corrected title",
                                     "tags": ["fixed"]}}, admin)  # fmt: skip
    assert body["data"]["setVideoMetadata"]["userErrors"] == [], body
    # unlocking tags makes the video due now: the fetch leaves the locked title alone
    body = await api.gql(SET, {"i": {"youtubeId": "NoTags00001", "unlock": ["tags"]}}, admin)
    assert body["data"]["setVideoMetadata"]["userErrors"] == [], body
    again = await eventually(
        lambda: fetched_after(api, "NoTags00001", before["metadataFetchedAt"]), "refetched"
    )
    assert (again["title"], again["tags"]) == ("Corrected title", None)  # no tags: unknown
    body = await api.gql(SET, {"i": {"youtubeId": "NoTags00001", "unlock": ["title"]}}, admin)
    assert body["data"]["setVideoMetadata"]["userErrors"] == [], body
    last = await eventually(
        lambda: fetched_after(api, "NoTags00001", again["metadataFetchedAt"]), "refetched"
    )
    assert last["title"] == "Short clip"
    # bad input changes nothing
    refused = [
        ({"language": "English"}, "BAD_LANGUAGE"), ({"unlock": ["colour"]}, "UNKNOWN_FIELD"),
        ({"durationSeconds": -1}, "OUT_OF_RANGE"), ({}, "NOTHING_TO_DO"),
    ]  # fmt: skip
    for change, code in refused:
        body = await api.gql(SET, {"i": {"youtubeId": "NoTags00001", **change}}, admin)
        assert [e["code"] for e in body["data"]["setVideoMetadata"]["userErrors"]] == [code]
    assert (await video(api, "NoTags00001"))["title"] == "Short clip"


async def test_unavailable_videos_leave_default_rankings(meta) -> None:
    api, fake = meta
    admin = await api.login(ADMIN)

    async def ranked(include_unsafe: bool) -> list[str]:
        body = await api.gql(RANKED, {"u": include_unsafe})
        return [e["node"]["youtubeId"] for e in body["data"]["rankings"]["edges"]]

    top = (await eventually(lambda: ranked(False), "a ranking"))[0]
    item = fake.videos.pop(top)  # deleted on YouTube
    try:
        previous = (await video(api, top))["metadataFetchedAt"]
        await api.gql(SET, {"i": {"youtubeId": top, "unlock": ["title"]}}, admin)  # due now
        gone = await eventually(lambda: fetched_after(api, top, previous), "refetched")
        assert gone["availability"] == "DELETED"
        assert gone["title"].startswith("Sample video")  # the last known title stays
        assert top not in await ranked(False)
        assert top in await ranked(True)
    finally:
        fake.videos[top] = item
    previous = gone["metadataFetchedAt"]
    await api.gql(SET, {"i": {"youtubeId": top, "unlock": ["title"]}}, admin)
    back = await eventually(lambda: fetched_after(api, top, previous), "refetched")
    assert back["availability"] == "OK"
    assert top in await ranked(False)
