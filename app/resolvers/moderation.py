"""Why a video is not recommended (``unsafeReasons``), and admin moderation.

Tournesol's reasons, each checked on live data: the main score is missing or at
most 20 (insufficient score); its raters' trust sums to less than 1.5
(insufficient trust); YouTube reports it deleted or private (unavailable); an admin
marked it unsafe (moderated). A video is safe when it has none. Rankings and
random recommendations leave unsafe videos out unless asked.

Moderation is reversible (``unsafe: false`` lifts it) and every change is logged
(``ModerationLog``, and a log line) with the admin and the reason.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from app.criteria import MAIN_CRITERION
from app.db.models import ModerationLog, VideoModeration
from app.db.validation import InvalidInput
from app.resolvers import videos
from app.sources.queue import HIDDEN

log = logging.getLogger("sunrank.moderation")
MIN_SCORE = 20.0  # Tournesol's recommendability thresholds (DESIGN.md §2)
MIN_TRUST = 1.5
MAX_REASON = 500

INSUFFICIENT_SCORE = "insufficient_score"
INSUFFICIENT_TRUST = "insufficient_trust"
UNAVAILABLE = "unavailable"
MODERATED = "moderated"


async def unsafe_reasons(ctx: Any, video_id: int, availability: str | None) -> list[str]:
    learner = ctx.learner
    main = learner.video_scores(video_id).get(MAIN_CRITERION)
    reasons = []
    if main is None or main.score <= MIN_SCORE:
        reasons.append(INSUFFICIENT_SCORE)
    if learner.sum_trust(video_id) < MIN_TRUST:
        reasons.append(INSUFFICIENT_TRUST)
    if availability in HIDDEN:
        reasons.append(UNAVAILABLE)
    if video_id in await ctx.catalog.moderated_ids():
        reasons.append(MODERATED)
    return reasons


async def moderate(ctx: Any, youtube_id: str, unsafe: bool, reason: str | None) -> Any:
    """Mark the video unsafe with ``reason`` (required), or lift it (``unsafe: false``)."""
    admin = ctx.require_admin()
    reason = (reason or "").strip() or None
    if unsafe and reason is None:
        raise InvalidInput("reason", "say why the video is unsafe", "MISSING")
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidInput("reason", f"at most {MAX_REASON} characters", "TOO_LONG")
    video = await videos.require(youtube_id, "youtubeId")
    now = datetime.now(UTC)
    async with in_transaction() as conn:
        current = await VideoModeration.get_or_none(video_id=video.id, using_db=conn)
        if unsafe:
            if current is None:
                await VideoModeration.create(
                    video_id=video.id, reason=reason, moderated_by_id=admin.id,
                    moderated_at=now, using_db=conn,
                )  # fmt: skip
            else:
                assert reason is not None  # required when unsafe, checked above
                current.reason, current.moderated_by_id, current.moderated_at = (
                    reason, admin.id, now,
                )  # fmt: skip
                await current.save(using_db=conn)
        elif current is not None:
            await current.delete(using_db=conn)
        else:
            raise InvalidInput("unsafe", "this video is not moderated", "NOT_MODERATED")
        await ModerationLog.create(
            video_id=video.id, admin_id=admin.id, unsafe=unsafe, reason=reason,
            created_at=now, using_db=conn,
        )  # fmt: skip
    ctx.catalog.forget()  # committed: rankings and unsafeReasons see it at once
    log.info(
        "video moderated" if unsafe else "video moderation lifted",
        extra={"fields": {"video": youtube_id, "admin": admin.username, "reason": reason}},
    )
    return video


async def moderation_of(video_id: int) -> VideoModeration | None:
    return await VideoModeration.get_or_none(video_id=video_id)
