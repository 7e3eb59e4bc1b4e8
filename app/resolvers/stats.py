"""Counts for ``stats``, cached per data version (:meth:`app.cache.Cache.key`) and
for a few seconds at most, since another process (an import) can add users and
videos."""

from __future__ import annotations

from typing import Any

from tortoise import connections

from app.db.models import Comparison, User, Video

STATS_TTL = 10.0


async def stats(ctx: Any) -> dict[str, int]:
    async def compute() -> dict[str, int]:
        conn = connections.get(Comparison._meta.default_connection)
        rows = await conn.execute_query_dict("SELECT COUNT(DISTINCT user_id) AS n FROM comparison")
        return {
            "contributors": int(rows[0]["n"]),
            "users": await User.all().count(),
            "comparisons": await Comparison.all().count(),
            "videos": await Video.all().count(),
            "scored_videos": int((await ctx.learner.ranking_table()).video_ids.size),
            "score_version": ctx.learner.version,
        }

    return await ctx.cache.get_or_compute(
        "stats", ctx.learner.watermark, None, compute, ttl=STATS_TTL
    )
