"""``sunrank refresh-metadata`` as an operator runs it: a real subprocess on a SQLite
file, against the local fake YouTube."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from app.db import connection
from app.db.models import Video
from tests.sources.fake_youtube import API_KEY, QUOTA, SERVER_ERROR, FakeYouTube

pytestmark = pytest.mark.slow  # a subprocess per run


def sunrank(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "refresh-metadata", "--quiet", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
async def cli(sqlite_url: str, env_for: dict[str, str], fake_youtube: FakeYouTube):
    await connection.migrate(sqlite_url)
    await connection.init(sqlite_url)
    later = datetime.now(UTC) + timedelta(days=30)
    for yt in ("dQw4w9WgXcQ", "Frc1111111A", "Gone0000001"):
        await Video.create(youtube_id=yt)
    await Video.create(youtube_id="NoTags00001", metadata_due_at=later, title="Fresh")
    env = env_for | {
        "SUNRANK_DATABASE_URL": sqlite_url,
        "SUNRANK_YOUTUBE_API_KEY": API_KEY,
        "SUNRANK_YOUTUBE_API_URL": fake_youtube.api_url,
        "SUNRANK_YOUTUBE_OEMBED_URL": fake_youtube.oembed_url,
    }
    try:
        yield env, fake_youtube
    finally:
        await connection.close()


async def titles() -> dict[str, str | None]:
    return dict(await Video.all().values_list("youtube_id", "title"))


async def test_stale_fetches_what_is_due_only(cli) -> None:
    env, fake = cli
    result = sunrank(env)  # --stale is the default
    assert result.returncode == 0, result.stderr
    assert "YouTube Data API: 3 of 3 videos fetched (1 unavailable), 0 failed" in result.stdout
    assert await titles() == {
        "dQw4w9WgXcQ": "How democracies decide: a simple explanation",
        "Frc1111111A": "Le réchauffement climatique expliqué en dix minutes",
        "Gone0000001": None,
        "NoTags00001": "Fresh",  # not due
    }
    assert (await Video.get(youtube_id="Gone0000001")).availability == "deleted"
    again = sunrank(env, "--stale")
    assert "0 of 0 videos fetched" in again.stdout  # nothing due any more
    everything = sunrank(env, "--all", "--limit", "2")
    assert "2 of 2 videos fetched" in everything.stdout
    assert len(fake.calls("/youtube/v3/videos")) == 2


async def test_without_a_key_oembed_gives_title_and_channel(cli) -> None:
    env, fake = cli
    result = sunrank(env | {"SUNRANK_YOUTUBE_API_KEY": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("oEmbed (no API key): 3 of 3 videos fetched")
    video = await Video.get(youtube_id="dQw4w9WgXcQ")
    assert (video.uploader, video.duration_s, video.metadata_source) == ("Civic Lab", None,
                                                                         "oembed")  # fmt: skip
    assert fake.calls("/youtube/v3/videos") == []


@pytest.mark.parametrize(
    ("mode", "expected"), [(QUOTA, "quota spent until"), (SERVER_ERROR, "3 failed")]
)
async def test_failures_exit_1_and_say_why(cli, mode: str, expected: str) -> None:
    env, fake = cli
    fake.fail_next.append(mode)
    result = sunrank(env)
    assert result.returncode == 1
    assert expected in result.stdout
    if mode == SERVER_ERROR:
        assert "error: ServerError: YouTube Data API answered 500" in result.stderr
        video = await Video.get(youtube_id="dQw4w9WgXcQ")
        assert video.metadata_failures == 1 and video.metadata_due_at is not None
    assert await titles() == {
        "dQw4w9WgXcQ": None, "Frc1111111A": None, "Gone0000001": None, "NoTags00001": "Fresh",
    }  # fmt: skip


def test_bad_arguments_are_refused(env_for: dict[str, str]) -> None:
    result = sunrank(env_for, "--limit", "0")
    assert result.returncode == 2 and "positive integer" in result.stderr
    result = sunrank(env_for, "--all", "--stale")
    assert result.returncode == 2 and "not allowed with" in result.stderr
