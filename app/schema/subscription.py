"""The root Subscription type (graphql-transport-ws)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from app.resolvers import live
from app.schema.types import ScoresUpdate, VideoScore


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="New scores of these videos (1..100) after every applied change that moves "
        "them; the first messages are their current scores (`initial: true`)."
    )
    async def scores_updated(
        self, info: strawberry.Info, youtube_ids: list[str], criteria: list[str] | None = None
    ) -> AsyncGenerator[ScoresUpdate, None]:
        async for youtube_id, version, views, initial in live.scores_updated(
            info.context, youtube_ids, criteria
        ):
            yield ScoresUpdate(
                youtube_id=youtube_id, score_version=version, initial=initial,
                scores=[VideoScore.of(youtube_id, v) for v in views],
            )  # fmt: skip
