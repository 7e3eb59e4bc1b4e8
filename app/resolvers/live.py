"""``scoresUpdated``: the learner's updates, filtered to the videos asked for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from app.db import validation
from app.db.validation import InvalidInput
from app.resolvers import videos

MAX_VIDEOS = 100


async def scores_updated(
    ctx: Any, youtube_ids: list[str], criteria: list[str] | None
) -> AsyncIterator[tuple[str, int, list, bool]]:
    """Yields (youtube_id, version, [ScoreView], initial): first the current scores
    of every video asked for (``initial``), then each change as it is applied."""
    if not 1 <= len(youtube_ids) <= MAX_VIDEOS:
        raise InvalidInput("youtubeIds", f"give 1 to {MAX_VIDEOS} video ids", "BAD_COUNT")
    for i, yt in enumerate(youtube_ids):
        validation.youtube_id(yt, f"youtubeIds[{i}]")
    for i, c in enumerate(criteria or ()):
        validation.criterion(c, f"criteria[{i}]")
    found = await videos.by_youtube_ids(list(youtube_ids))
    missing = [yt for yt in youtube_ids if yt not in found]
    if missing:
        raise InvalidInput("youtubeIds", f"unknown video(s): {', '.join(missing)}", "UNKNOWN_VIDEO")
    wanted = {v.id: yt for yt, v in found.items()}
    learner = ctx.learner
    wanted_criteria = set(criteria) if criteria else None

    def pick(views: dict) -> list:
        return [v for c, v in views.items() if wanted_criteria is None or c in wanted_criteria]

    updates = learner.subscribe()
    pending = asyncio.ensure_future(anext(updates))
    await asyncio.sleep(0)  # let the subscription register before the snapshot
    try:
        version = learner.version
        for pk, yt in wanted.items():
            yield yt, version, pick(learner.video_scores(pk)), True
        while True:
            try:
                update = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(updates))
            for pk in update.videos.keys() & wanted.keys():
                views = pick(update.videos[pk])
                if views:
                    yield wanted[pk], update.version, views, False
    finally:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        await updates.aclose()
