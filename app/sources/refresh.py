"""``sunrank refresh-metadata``: the queue's rules, run once from the command line.

``--stale`` (the default) fetches what the server's worker would (never fetched,
due by the refresh rule, or whose retry time has come); ``--all`` fetches every
video. Videos a running server is fetching at that moment (leased) are skipped.
It only writes metadata, so it runs beside a server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from app.cache import Cache
from app.config import Settings
from app.db.models import Video
from app.sources.queue import BatchResult, MetadataFetcher, QuotaSpent, claim, now_utc
from app.sources.youtube import BATCH_SIZE, YouTubeClient


@dataclass
class RefreshReport:
    selected: int = 0
    fetched: int = 0
    unavailable: int = 0
    failed: int = 0
    skipped: int = 0  # leased by a running server
    quota_until: datetime | None = None
    errors: list[str] = field(default_factory=list)

    def add(self, result: BatchResult, claimed: int, asked: int) -> None:
        self.fetched += result.fetched
        self.unavailable += result.unavailable
        self.failed += result.failed
        self.skipped += asked - claimed
        self.errors += result.errors

    def summary(self) -> str:
        text = (
            f"{self.fetched} of {self.selected} videos fetched ({self.unavailable} unavailable), "
            f"{self.failed} failed, {self.skipped} skipped (being fetched by a server)"
        )
        if self.quota_until is not None:
            text += f"; quota spent until {self.quota_until:%Y-%m-%d %H:%M} UTC"
        return text


async def selected_ids(everything: bool, limit: int | None) -> list[int]:
    if everything:
        query = Video.all().order_by("id")
    else:
        now = now_utc()
        # never fetched first (NULL), then the longest overdue
        # tortoise types values_list(flat=True) as tuples; each is a list of ids.
        never = cast(
            list[int],
            await Video.filter(metadata_due_at__isnull=True)
            .order_by("id")
            .values_list("id", flat=True),
        )
        stale = Video.filter(metadata_due_at__lte=now).order_by("metadata_due_at", "id")
        ids = never + cast(list[int], await stale.values_list("id", flat=True))
        return ids[:limit] if limit is not None else ids
    if limit is not None:
        query = query.limit(limit)
    return cast(list[int], await query.values_list("id", flat=True))


async def refresh(
    settings: Settings,
    *,
    everything: bool = False,
    limit: int | None = None,
    progress: Callable[[int], object] | None = None,
    on_total: Callable[[int], object] | None = None,
) -> RefreshReport:
    """Fetch the selected videos in batches; stops early when the quota is spent."""
    ids = await selected_ids(everything, limit)
    report = RefreshReport(selected=len(ids))
    if on_total is not None:
        on_total(len(ids))
    async with YouTubeClient.from_settings(settings) as client:
        fetcher = MetadataFetcher(client, settings)
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            videos = await claim(chunk, now_utc(), force=everything)
            try:
                result = await fetcher.fetch(videos)
            except QuotaSpent as spent:
                report.quota_until = spent.until
                break
            report.add(result, len(videos), len(chunk))
            if progress is not None:
                progress(len(chunk))
    if report.fetched:
        # A server sharing a Redis cache drops the answers made before (memory: a
        # server's own cache expires with SUNRANK_CACHE_TTL_SECONDS).
        cache = Cache.from_settings(settings)
        try:
            await cache.data_changed()
        finally:
            await cache.close()
    return report
