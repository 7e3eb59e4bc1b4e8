"""The YouTube client against a local server speaking both APIs, failures included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.sources import language
from app.sources.youtube import (
    Availability,
    MalformedResponse,
    QuotaExceeded,
    RequestRejected,
    ServerError,
    Source,
    SourceTimeout,
    UnknownVideo,
    YouTubeClient,
    parse_duration,
)
from tests.sources.fake_youtube import (
    API_KEY,
    BAD_KEY,
    MALFORMED,
    QUOTA,
    SERVER_ERROR,
    SLOW,
    FakeYouTube,
)


def api_client(fake: FakeYouTube, key: str = API_KEY, timeout: float = 5.0) -> YouTubeClient:
    return YouTubeClient(
        api_key=key, api_url=fake.api_url, oembed_url=fake.oembed_url, timeout=timeout
    )


def oembed_client(fake: FakeYouTube, timeout: float = 5.0) -> YouTubeClient:
    return api_client(fake, key="", timeout=timeout)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT1H2M3S", 3723), ("PT10M", 600), ("PT45S", 45), ("P1DT2S", 86402), ("P0D", 0),
     ("P1W", 604800), ("", None), (None, None), ("PT", None), ("1:02:03", None)],
)  # fmt: skip
def test_iso_8601_durations(text: str | None, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


async def test_data_api_parses_every_field(fake_youtube: FakeYouTube) -> None:
    async with api_client(fake_youtube) as client:
        found = await client.fetch(["dQw4w9WgXcQ", "Frc1111111A", "NoEmbed0001", "NoTags00001"])
    meta = found["dQw4w9WgXcQ"]
    assert meta.source is Source.DATA_API
    assert meta.availability is Availability.OK
    assert meta.title == "How democracies decide: a simple explanation"
    assert meta.uploader == "Civic Lab"
    assert meta.description.startswith("Why voting rules matter")
    assert meta.tags == ["democracy", "voting", "explainer"]
    assert meta.language == "en"  # declared defaultAudioLanguage en-US
    assert meta.duration_s == 3723
    assert meta.published_at == datetime(2021, 6, 1, 12, tzinfo=UTC)
    french = found["Frc1111111A"]
    assert french.language == "fr"  # none declared: detected from title + description
    assert french.published_at == datetime(2024, 2, 29, 22, 30, tzinfo=UTC)  # in UTC
    assert found["NoEmbed0001"].availability is Availability.NOT_EMBEDDABLE
    assert found["NoEmbed0001"].language == "de"  # defaultLanguage when no audio language
    short = found["NoTags00001"]
    assert (short.tags, short.duration_s, short.description) == ([], 0, None)
    assert short.language is None  # "Short clip": too little text to tell
    (call,) = fake_youtube.calls("/youtube/v3/videos")
    assert call["query"]["part"] == ["snippet,contentDetails,status"]


async def test_data_api_batches_of_50_and_unknown_ids_come_back_deleted(
    fake_youtube: FakeYouTube,
) -> None:
    ids = ["dQw4w9WgXcQ"] + [f"unknown{i:04d}" for i in range(119)]
    async with api_client(fake_youtube) as client:
        found = await client.fetch(ids)
        assert client.cost(len(ids)) == 3
    assert [len(c["ids"]) for c in fake_youtube.calls("/youtube/v3/videos")] == [50, 50, 20]
    assert found["dQw4w9WgXcQ"].availability is Availability.OK
    assert {found[i].availability for i in ids[1:]} == {Availability.DELETED}
    assert found["unknown0001"].title is None


async def test_unknown_and_private_ids_one_by_one(fake_youtube: FakeYouTube) -> None:
    async with api_client(fake_youtube) as client:
        with pytest.raises(UnknownVideo):
            await client.video("unknown0000")
        with pytest.raises(UnknownVideo):  # a key never sees a private video
            await client.video("Private0001")
    async with oembed_client(fake_youtube) as client:
        with pytest.raises(UnknownVideo):
            await client.video("unknown0000")
        assert (await client.video("Private0001")).availability is Availability.PRIVATE


async def test_oembed_gives_title_and_channel_only(fake_youtube: FakeYouTube) -> None:
    async with oembed_client(fake_youtube) as client:
        assert client.cost(100) == 0
        found = await client.fetch(["dQw4w9WgXcQ", "NoEmbed0001", "unknown0000"])
    meta = found["dQw4w9WgXcQ"]
    assert meta.source is Source.OEMBED
    assert (meta.title, meta.uploader) == (
        "How democracies decide: a simple explanation", "Civic Lab"
    )  # fmt: skip
    assert (meta.description, meta.tags, meta.duration_s, meta.published_at) == (
        None, None, None, None
    )  # fmt: skip
    assert found["NoEmbed0001"].availability is Availability.NOT_EMBEDDABLE
    assert found["unknown0000"].availability is Availability.DELETED
    assert fake_youtube.calls("/youtube/v3/videos") == []
    assert len(fake_youtube.calls("/oembed")) == 3


@pytest.mark.parametrize(
    ("mode", "error"),
    [(QUOTA, QuotaExceeded), (SERVER_ERROR, ServerError), (MALFORMED, MalformedResponse),
     (BAD_KEY, RequestRejected)],
)  # fmt: skip
async def test_data_api_failures_are_typed(
    fake_youtube: FakeYouTube, mode: str, error: type[Exception]
) -> None:
    fake_youtube.fail_next.append(mode)
    async with api_client(fake_youtube) as client:
        with pytest.raises(error) as raised:
            await client.fetch(["dQw4w9WgXcQ"])
        assert raised.value.retryable
        # the next call, with the failure gone, works
        assert (await client.fetch(["dQw4w9WgXcQ"]))["dQw4w9WgXcQ"].title


@pytest.mark.parametrize(
    ("mode", "error"),
    [(QUOTA, QuotaExceeded), (SERVER_ERROR, ServerError), (MALFORMED, MalformedResponse)],
)
async def test_oembed_failures_are_typed(
    fake_youtube: FakeYouTube, mode: str, error: type[Exception]
) -> None:
    fake_youtube.fail_next.append(mode)
    async with oembed_client(fake_youtube) as client:
        with pytest.raises(error):
            await client.fetch(["dQw4w9WgXcQ"])


async def test_a_slow_source_times_out(fake_youtube: FakeYouTube) -> None:
    fake_youtube.fail_next.append(SLOW)
    async with api_client(fake_youtube, timeout=0.2) as client:
        with pytest.raises(SourceTimeout):
            await client.fetch(["dQw4w9WgXcQ"])


async def test_a_closed_port_is_a_server_error(fake_youtube: FakeYouTube) -> None:
    client = YouTubeClient(api_key=API_KEY, api_url="http://127.0.0.1:9/youtube/v3", timeout=2)
    async with client:
        with pytest.raises(ServerError):
            await client.fetch(["dQw4w9WgXcQ"])


def test_language_detection_is_deterministic_and_abstains_when_unsure() -> None:
    text = "Une explication claire des causes du réchauffement climatique"
    assert {language.detect(text) for _ in range(5)} == {"fr"}
    assert language.detect("Why the ocean is salty: the water cycle and erosion") == "en"
    assert language.detect("Hi!") is None
    assert language.detect(None, "") is None
    assert language.normalize("en-US") == "en"
    assert language.normalize("zxx") is None
