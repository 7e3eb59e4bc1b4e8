"""The metadata queue: which videos are due, fetching them in batches, writing
what the source says.

What is due lives in the database (``video.metadata_due_at``), so it survives
restarts and is shared by every server process and the CLI:

- NULL: never fetched (a video just added, created by a comparison, or imported):
  due now;
- after a fetch: Tournesol's refresh rule, refetch once the time since the last
  fetch exceeds half the video's age. With fetch time f and publication p that is
  the instant f + (f − p), computed once at fetch time and indexed; at least
  ``SUNRANK_METADATA_REFRESH_MIN_SECONDS`` later (a day by default), and 30 days
  when the publication date is unknown (oEmbed does not give it);
- after a failure: exponential backoff with jitter from
  ``SUNRANK_METADATA_RETRY_SECONDS``, doubling per failure in a row, capped at a
  day; after a spent quota: when YouTube's quota day resets (midnight, Pacific);
- while a worker fetches a batch, a lease (``LEASE`` ahead), so that two
  processes do not fetch the same videos; a crashed worker's lease just expires.

The Data API costs 1 unit per ``videos.list`` call (up to 50 ids);
``SUNRANK_YOUTUBE_DAILY_QUOTA`` bounds the units one process spends per quota day.
Fields an admin locked are never overwritten. Never on the request path:
resolvers only :meth:`MetadataWorker.wake` the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from tortoise.expressions import Q

from app.config import Settings
from app.db.models import Video
from app.sources.youtube import (
    BATCH_SIZE,
    Availability,
    QuotaExceeded,
    VideoMetadata,
    YouTubeClient,
    YouTubeError,
)

log = logging.getLogger("sunrank.metadata")

METADATA_FIELDS = (
    "title", "uploader", "description", "tags", "language", "duration_s", "published_at",
)  # fmt: skip
# Hidden from default rankings: nobody can watch them.
HIDDEN = (Availability.DELETED.value, Availability.PRIVATE.value)
UNKNOWN_AGE = timedelta(days=30)
MAX_RETRY_DELAY = timedelta(days=1)
LEASE = timedelta(minutes=10)
IDLE_POLL_SECONDS = 60.0  # another process may have added videos meanwhile
QUOTA_TZ = ZoneInfo("America/Los_Angeles")  # YouTube's quota day
MAX_ERROR = 500


def now_utc() -> datetime:
    return datetime.now(UTC)


def next_refresh(
    fetched_at: datetime, published_at: datetime | None, minimum: timedelta
) -> datetime:
    """When a video fetched at ``fetched_at`` is due again (see the module docstring)."""
    age = fetched_at - published_at if published_at is not None else UNKNOWN_AGE
    return fetched_at + max(age, minimum)


def retry_delay(failures: int, base: float, rng: random.Random) -> timedelta:
    """Backoff after ``failures`` (≥ 1) failures in a row: base·2^(n−1), ±50 % jitter
    (so that a batch that failed together does not retry together), at most a day."""
    seconds = base * 2 ** min(failures - 1, 30) * rng.uniform(0.5, 1.5)
    return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)


class QuotaBudget:
    """Data API units one process may spend per quota day (in memory: a restart
    within the day starts over, and 403 quotaExceeded still stops the queue)."""

    def __init__(self, daily_units: int):
        self.daily_units = daily_units
        self._day: date | None = None
        self._spent = 0

    @staticmethod
    def quota_day(now: datetime) -> date:
        return now.astimezone(QUOTA_TZ).date()

    def resets_at(self, now: datetime) -> datetime:
        tomorrow = self.quota_day(now) + timedelta(days=1)
        return datetime.combine(tomorrow, time(0), QUOTA_TZ).astimezone(UTC)

    def remaining(self, now: datetime) -> int:
        if self._day != self.quota_day(now):
            self._day, self._spent = self.quota_day(now), 0
        return max(self.daily_units - self._spent, 0)

    def spend(self, units: int, now: datetime) -> None:
        self.remaining(now)
        self._spent += units

    def exhaust(self, now: datetime) -> None:
        self.remaining(now)
        self._spent = self.daily_units


async def due_ids(now: datetime, limit: int) -> list[int]:
    """Up to ``limit`` due videos, those never fetched first."""
    new = await Video.filter(metadata_due_at__isnull=True).order_by("id").limit(limit)
    ids = [v.id for v in new]
    if len(ids) < limit:
        stale = Video.filter(metadata_due_at__lte=now).order_by("metadata_due_at", "id")
        # tortoise types values_list(flat=True) as tuples; it is the list of ids.
        ids += cast(list[int], await stale.limit(limit - len(ids)).values_list("id", flat=True))
    return ids


async def count_due(now: datetime) -> int:
    return await Video.filter(Q(metadata_due_at__isnull=True) | Q(metadata_due_at__lte=now)).count()


async def claim(ids: Sequence[int], now: datetime, *, force: bool = False) -> list[Video]:
    """Lease the videos among ``ids`` that are still due (all of them if ``force``);
    another process's lease, or a refresh it just did, leaves them out."""
    lease = now + LEASE + timedelta(microseconds=random.randrange(1_000_000))
    due = Q(id__in=list(ids))
    if not force:
        due &= Q(metadata_due_at__isnull=True) | Q(metadata_due_at__lte=now)
    await Video.filter(due).update(metadata_due_at=lease)
    return await Video.filter(id__in=list(ids), metadata_due_at=lease).order_by("id")


async def apply(video: Video, meta: VideoMetadata, now: datetime, minimum: timedelta) -> None:
    """Write what the source says, except the fields an admin locked; an unknown or
    private video keeps its last known metadata (its title is still useful)."""
    locked = set(video.locked_fields or ())
    updates: dict[str, Any] = {"availability": meta.availability.value}
    if meta.availability in (Availability.OK, Availability.NOT_EMBEDDABLE):
        for name in METADATA_FIELDS:
            value = getattr(meta, name)
            # None: this source does not say (oEmbed has no description): keep ours.
            if value is not None and name not in locked:
                updates[name] = value
    updates |= {
        "metadata_fetched_at": now,
        "metadata_source": meta.source.value,
        "metadata_due_at": next_refresh(now, updates.get("published_at", video.published_at),
                                        minimum),
        "metadata_failures": 0,
        "metadata_error": None,
    }  # fmt: skip
    for name, value in updates.items():
        setattr(video, name, value)
    await video.save(update_fields=list(updates))


async def record_failure(
    videos: Sequence[Video], exc: YouTubeError, now: datetime, base: float, rng: random.Random
) -> None:
    message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
    for video in videos:
        failures = video.metadata_failures + 1
        await Video.filter(id=video.id).update(
            metadata_failures=failures,
            metadata_error=message,
            metadata_due_at=now + retry_delay(failures, base, rng),
        )


async def postpone(videos: Sequence[Video], until: datetime) -> None:
    """Give back a batch that was not fetched (quota spent): due again at ``until``."""
    await Video.filter(id__in=[v.id for v in videos]).update(metadata_due_at=until)


@dataclass
class BatchResult:
    fetched: int = 0
    unavailable: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class QuotaSpent(Exception):
    """No quota left today; ``until``: when it resets."""

    def __init__(self, until: datetime):
        super().__init__(f"YouTube Data API quota spent until {until.isoformat()}")
        self.until = until


class MetadataFetcher:
    """Fetch and write one batch; shared by the worker and ``sunrank refresh-metadata``."""

    def __init__(
        self,
        client: YouTubeClient,
        settings: Settings,
        budget: QuotaBudget | None = None,
        rng: random.Random | None = None,
    ):
        self.client, self.settings = client, settings
        self.budget = budget or QuotaBudget(settings.youtube_daily_quota)
        self.rng = rng or random.Random()
        self.minimum = timedelta(seconds=settings.metadata_refresh_min_seconds)

    def check_budget(self, now: datetime, n_ids: int) -> None:
        if self.client.cost(n_ids) > self.budget.remaining(now):
            raise QuotaSpent(self.budget.resets_at(now))

    async def fetch(self, videos: Sequence[Video], now: datetime | None = None) -> BatchResult:
        """Fetch ``videos`` (claimed by the caller) and write the result. Raises
        :class:`QuotaSpent` (the batch postponed to the reset) when the quota is gone."""
        now = now or now_utc()
        result = BatchResult()
        if not videos:
            return result
        try:
            self.check_budget(now, len(videos))
        except QuotaSpent as spent:
            await postpone(videos, spent.until)
            raise
        self.budget.spend(self.client.cost(len(videos)), now)
        try:
            found = await self.client.fetch([v.youtube_id for v in videos])
        except QuotaExceeded as exc:
            log.warning("metadata: %s; queue paused until the quota resets", exc)
            self.budget.exhaust(now)
            await postpone(videos, self.budget.resets_at(now))
            raise QuotaSpent(self.budget.resets_at(now)) from exc
        except YouTubeError as exc:
            log.warning("metadata: %d videos not fetched (%s: %s)", len(videos),
                        type(exc).__name__, exc)  # fmt: skip
            await record_failure(videos, exc, now, self.settings.metadata_retry_seconds, self.rng)
            result.failed, result.errors = len(videos), [f"{type(exc).__name__}: {exc}"]
            return result
        for video in videos:
            meta = found[video.youtube_id]
            await apply(video, meta, now, self.minimum)
            result.fetched += 1
            if meta.availability.value in HIDDEN:
                result.unavailable += 1
        return result


class MetadataWorker:
    """The server's background task: fetch whatever is due, sleep until woken or
    until the next poll."""

    def __init__(
        self,
        settings: Settings,
        on_change: Callable[[], Awaitable[None]] | None = None,
        client: YouTubeClient | None = None,
    ):
        self.settings = settings
        self.client = client or YouTubeClient.from_settings(settings)
        self.fetcher = MetadataFetcher(self.client, settings)
        self.on_change = on_change
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches done, for tests and logs
        self.failed_in_a_row = 0  # failed batches: the source is down, not one video

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metadata-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()

    def wake(self) -> None:
        """Something became due (a new video): look now rather than at the next poll."""
        self._wake.set()

    async def step(self, now: datetime | None = None) -> int:
        """One batch: claim, fetch, write. Returns how many videos it handled."""
        now = now or now_utc()
        videos = await claim(await due_ids(now, BATCH_SIZE), now)
        if not videos:
            return 0
        result = await self.fetcher.fetch(videos, now)
        self.batches += 1
        self.failed_in_a_row = self.failed_in_a_row + 1 if result.failed else 0
        if result.fetched and self.on_change is not None:
            await self.on_change()
        return len(videos)

    async def _pause(self, now: datetime) -> float:
        """Seconds until the next video falls due (at most ``IDLE_POLL_SECONDS``)."""
        upcoming = await Video.filter(metadata_due_at__gt=now).order_by("metadata_due_at").first()
        if upcoming is None or upcoming.metadata_due_at is None:
            return IDLE_POLL_SECONDS
        return min(max((upcoming.metadata_due_at - now).total_seconds(), 0.0), IDLE_POLL_SECONDS)

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the step: a wake during it is not lost
            pause = 0.0
            try:
                if await self.step() == 0:
                    pause = await self._pause(now_utc())
                elif self.failed_in_a_row:
                    # The source is failing (down, slow, answering garbage): back off
                    # as a whole rather than fail every due video in turn. Not cut
                    # short by wake(): a new video would only meet the same failure.
                    delay = retry_delay(self.failed_in_a_row, self.settings.metadata_retry_seconds,
                                        self.fetcher.rng)  # fmt: skip
                    await asyncio.sleep(delay.total_seconds())
            except QuotaSpent as spent:
                pause = (spent.until - now_utc()).total_seconds()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not end the queue for good
                log.exception("metadata worker: batch failed; retrying")
                pause = self.settings.metadata_retry_seconds
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=pause)


def start_worker(
    settings: Settings, on_change: Callable[[], Awaitable[None]] | None = None
) -> MetadataWorker | None:
    """The server's worker, started (None when ``SUNRANK_METADATA_WORKER`` is off)."""
    if not settings.metadata_worker:
        return None
    worker = MetadataWorker(settings, on_change)
    worker.start()
    return worker


def wake(app_state: Any) -> None:
    """Wake the server's worker, if it runs (resolvers call this after a new video)."""
    worker = getattr(app_state, "metadata", None)
    if worker is not None:
        worker.wake()
