"""The metadata queue on a real database (SQLite and PostgreSQL) against the local
fake YouTube: what is due, writing, locks, retries with backoff, the quota."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.config import load_settings
from app.db.models import Video
from app.sources import queue
from app.sources.queue import MetadataFetcher, MetadataWorker, QuotaBudget, QuotaSpent
from app.sources.youtube import YouTubeClient
from tests.sources.fake_youtube import API_KEY, QUOTA, SERVER_ERROR, FakeYouTube

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def settings_for(fake: FakeYouTube, key: str = API_KEY, **overrides):
    return load_settings(
        {},
        youtube_api_key=key,
        youtube_api_url=fake.api_url,
        youtube_oembed_url=fake.oembed_url,
        youtube_timeout_seconds=5.0,
        **overrides,
    )


def worker_for(fake: FakeYouTube, key: str = API_KEY, **overrides) -> MetadataWorker:
    worker = MetadataWorker(settings_for(fake, key, **overrides))
    worker.fetcher.rng = random.Random(7)
    return worker


def test_refresh_rule_is_half_the_age_with_a_floor() -> None:
    minimum = timedelta(days=1)
    # fetched 10 days after publication: due when 20 days old, i.e. 10 days later
    assert queue.next_refresh(T0, T0 - 10 * DAY, minimum) == T0 + 10 * DAY
    # at that instant the time since the fetch is exactly half the age
    due = queue.next_refresh(T0, T0 - 10 * DAY, minimum)
    assert due - T0 == (due - (T0 - 10 * DAY)) / 2
    assert queue.next_refresh(T0, T0 - timedelta(hours=2), minimum) == T0 + minimum
    assert queue.next_refresh(T0, None, minimum) == T0 + queue.UNKNOWN_AGE


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for failures in range(1, 8):
        delay = queue.retry_delay(failures, 60.0, rng).total_seconds()
        nominal = 60.0 * 2 ** (failures - 1)
        assert 0.5 * nominal <= delay <= 1.5 * nominal
    assert queue.retry_delay(40, 60.0, rng) == queue.MAX_RETRY_DELAY
    assert len({queue.retry_delay(3, 60.0, rng) for _ in range(20)}) > 1  # jittered


def test_quota_day_resets_at_midnight_pacific() -> None:
    budget = QuotaBudget(3)
    before = datetime(2025, 3, 2, 7, 59, tzinfo=UTC)  # 23:59 in Los Angeles (PST)
    budget.spend(3, before)
    assert budget.remaining(before) == 0
    assert budget.resets_at(before) == datetime(2025, 3, 2, 8, tzinfo=UTC)
    assert budget.remaining(datetime(2025, 3, 2, 8, 0, 1, tzinfo=UTC)) == 3


async def test_due_new_first_then_stale_never_the_fresh(db: str) -> None:
    fresh = await Video.create(youtube_id="fresh000001", metadata_due_at=T0 + DAY)
    stale = await Video.create(youtube_id="stale000001", metadata_due_at=T0 - DAY)
    new = await Video.create(youtube_id="new00000001")
    assert await queue.due_ids(T0, 10) == [new.id, stale.id]
    assert await queue.due_ids(T0, 1) == [new.id]
    assert await queue.count_due(T0) == 2
    assert fresh.id not in await queue.due_ids(T0 + timedelta(hours=1), 10)
    # a lease hides claimed videos from a second claimer (another process)
    first = await queue.claim([new.id, stale.id], T0)
    assert {v.id for v in first} == {new.id, stale.id}
    assert await queue.claim([new.id, stale.id], T0) == []
    assert await queue.due_ids(T0, 10) == []


async def test_worker_writes_metadata_and_schedules_the_refresh(
    db: str, fake_youtube: FakeYouTube
) -> None:
    for yt in ("dQw4w9WgXcQ", "Frc1111111A", "NoEmbed0001", "Private0001", "unknown0000"):
        await Video.create(youtube_id=yt)
    worker = worker_for(fake_youtube)
    try:
        assert await worker.step(T0) == 5
        assert await worker.step(T0) == 0  # nothing is due any more
        earliest = min(await Video.all().values_list("metadata_due_at", flat=True))
        assert earliest == T0 + queue.UNKNOWN_AGE  # the unavailable ones, of unknown age
        assert await worker.step(earliest - timedelta(seconds=1)) == 0
        assert await worker.step(earliest) == 2
    finally:
        await worker.stop()
    # one batch (one unit) for all five, then the two unavailable ones when due
    assert [len(c["ids"]) for c in fake_youtube.calls("/youtube/v3/videos")] == [5, 2]
    video = await Video.get(youtube_id="dQw4w9WgXcQ")
    assert (video.title, video.uploader, video.language) == (
        "How democracies decide: a simple explanation", "Civic Lab", "en"
    )  # fmt: skip
    assert video.tags == ["democracy", "voting", "explainer"]
    assert (video.duration_s, video.availability, video.metadata_source) == (
        3723, "ok", "youtube_api"
    )  # fmt: skip
    assert video.published_at == datetime(2021, 6, 1, 12, tzinfo=UTC)
    assert video.metadata_fetched_at == T0
    assert video.metadata_due_at == T0 + (T0 - video.published_at)  # half the age rule
    availability = dict(await Video.all().values_list("youtube_id", "availability"))
    assert availability == {
        "dQw4w9WgXcQ": "ok",
        "Frc1111111A": "ok",
        "NoEmbed0001": "not_embeddable",
        "Private0001": "deleted",
        "unknown0000": "deleted",
    }  # fmt: skip  (a key sees private videos as unknown)
    assert (await Video.get(youtube_id="Frc1111111A")).language == "fr"  # detected


async def test_locked_fields_survive_a_fetch_and_oembed_keeps_what_it_lacks(
    db: str, fake_youtube: FakeYouTube
) -> None:
    await Video.create(
        youtube_id="dQw4w9WgXcQ", title="Admin's title", description="Old description",
        duration_s=99, locked_fields=["title"],
    )  # fmt: skip
    worker = worker_for(fake_youtube, key="")  # oEmbed
    try:
        assert await worker.step(T0) == 1
    finally:
        await worker.stop()
    video = await Video.get(youtube_id="dQw4w9WgXcQ")
    assert video.title == "Admin's title"  # locked
    assert video.uploader == "Civic Lab"  # from oEmbed
    assert (video.description, video.duration_s) == ("Old description", 99)  # oEmbed is silent
    assert video.metadata_source == "oembed"
    assert video.metadata_due_at == T0 + queue.UNKNOWN_AGE  # publication date unknown


async def test_failures_back_off_then_succeed(db: str, fake_youtube: FakeYouTube) -> None:
    await Video.create(youtube_id="dQw4w9WgXcQ")
    worker = worker_for(fake_youtube, metadata_retry_seconds=60.0)
    try:
        fake_youtube.fail_next += [SERVER_ERROR, SERVER_ERROR]
        assert await worker.step(T0) == 1
        video = await Video.get(youtube_id="dQw4w9WgXcQ")
        assert video.metadata_failures == 1 and "ServerError" in video.metadata_error
        assert T0 + timedelta(seconds=30) <= video.metadata_due_at <= T0 + timedelta(seconds=90)
        assert video.title is None and video.metadata_fetched_at is None
        assert await worker.step(T0 + timedelta(seconds=29)) == 0  # not yet
        t1 = video.metadata_due_at
        assert await worker.step(t1) == 1  # fails again: the delay doubles
        video = await Video.get(youtube_id="dQw4w9WgXcQ")
        assert video.metadata_failures == 2
        assert t1 + timedelta(seconds=60) <= video.metadata_due_at <= t1 + timedelta(seconds=180)
        assert await worker.step(video.metadata_due_at) == 1  # the source is back
    finally:
        await worker.stop()
    video = await Video.get(youtube_id="dQw4w9WgXcQ")
    assert (video.metadata_failures, video.metadata_error, video.availability) == (0, None, "ok")
    assert video.title is not None


async def test_daily_budget_stops_before_spending_more(db: str, fake_youtube: FakeYouTube) -> None:
    await Video.bulk_create([Video(youtube_id=f"budget{i:05d}") for i in range(120)])
    worker = worker_for(fake_youtube, youtube_daily_quota=2)
    try:
        assert await worker.step(T0) == 50
        assert await worker.step(T0) == 50
        with pytest.raises(QuotaSpent) as spent:
            await worker.step(T0)
    finally:
        await worker.stop()
    assert len(fake_youtube.calls("/youtube/v3/videos")) == 2
    reset = QuotaBudget(1).resets_at(T0)
    assert spent.value.until == reset
    # the 20 left wait for the reset, counted as no failure
    left = await Video.filter(metadata_fetched_at__isnull=True)
    assert len(left) == 20
    assert {(v.metadata_due_at, v.metadata_failures) for v in left} == {(reset, 0)}


async def test_quota_exceeded_at_the_source_pauses_until_the_reset(
    db: str, fake_youtube: FakeYouTube
) -> None:
    await Video.create(youtube_id="dQw4w9WgXcQ")
    fake_youtube.fail_next.append(QUOTA)
    client = YouTubeClient(api_key=API_KEY, api_url=fake_youtube.api_url)
    fetcher = MetadataFetcher(client, settings_for(fake_youtube))
    try:
        videos = await queue.claim(await queue.due_ids(T0, 50), T0)
        with pytest.raises(QuotaSpent):
            await fetcher.fetch(videos, T0)
        # no more calls today, whatever is due
        with pytest.raises(QuotaSpent):
            await fetcher.fetch(await Video.all(), T0 + timedelta(hours=1))
    finally:
        await client.close()
    assert len(fake_youtube.calls("/youtube/v3/videos")) == 1
    video = await Video.get(youtube_id="dQw4w9WgXcQ")
    assert (video.metadata_due_at, video.metadata_failures) == (QuotaBudget(1).resets_at(T0), 0)


async def test_worker_task_wakes_on_demand(db: str, fake_youtube: FakeYouTube) -> None:
    import asyncio

    changes = []

    async def changed() -> None:
        changes.append(1)

    worker = MetadataWorker(settings_for(fake_youtube), on_change=changed)
    worker.start()
    try:
        for _ in range(100):  # idle: nothing due
            await asyncio.sleep(0.02)
            if worker.batches == 0 and fake_youtube.calls("/youtube/v3/videos") == []:
                break
        await Video.create(youtube_id="dQw4w9WgXcQ")
        worker.wake()
        for _ in range(500):  # bounded wait, no timing asserted
            if (await Video.get(youtube_id="dQw4w9WgXcQ")).title:
                break
            await asyncio.sleep(0.02)
        assert (await Video.get(youtube_id="dQw4w9WgXcQ")).title is not None
        assert changes
    finally:
        await worker.stop()


async def test_a_failing_source_pauses_the_whole_queue(db: str, fake_youtube: FakeYouTube) -> None:
    import asyncio

    await Video.bulk_create([Video(youtube_id=f"down{i:07d}") for i in range(120)])
    fake_youtube.fail_next += [SERVER_ERROR] * 10
    worker = MetadataWorker(settings_for(fake_youtube, metadata_retry_seconds=3600.0))
    worker.start()
    try:
        for _ in range(500):  # bounded wait for the first batch
            if worker.batches:
                break
            await asyncio.sleep(0.02)
        worker.wake()  # a new video would not cut the pause short either
        for _ in range(10):
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    # one failed batch, then a pause of about an hour: not the other 70 videos in turn
    assert (worker.batches, worker.failed_in_a_row) == (1, 1)
    assert len(fake_youtube.calls("/youtube/v3/videos")) == 1
    assert await Video.filter(metadata_failures=1).count() == 50
