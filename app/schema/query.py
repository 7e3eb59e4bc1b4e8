"""The root Query type."""

from __future__ import annotations

import strawberry
from strawberry import relay

from app.resolvers import accounts, comparisons, rankings, stats, videos
from app.schema.inputs import CriterionWeightInput, VideoFilter, filter_dict
from app.schema.types import (
    ALL_CRITERIA,
    Comparison,
    CriterionType,
    Me,
    PageInfo,
    PublicUser,
    RankingConnection,
    Stats,
    Suggestion,
    Video,
    VideoConnection,
    VideoEdge,
)


@strawberry.type
class Query:
    node: relay.Node | None = relay.node(
        description="Any object by its global id (comparisons: only your own)."
    )

    @strawberry.field(description="The criteria videos are compared on; the main one first.")
    def criteria(self) -> list[CriterionType]:
        return ALL_CRITERIA

    @strawberry.field(description="A video by its YouTube id, or null if Sunrank does not know it.")
    async def video(self, youtube_id: str) -> Video | None:
        found = await videos.by_youtube_ids([youtube_id])
        return Video.from_row(found[youtube_id]) if youtube_id in found else None

    @strawberry.field(description="Known videos, oldest first (1 ≤ first ≤ 100).")
    async def videos(
        self, filter: VideoFilter | None = None, first: int = 20, after: str | None = None
    ) -> VideoConnection:
        flt = filter_dict(filter)
        rows, more = await videos.page(first, after, flt)
        edges = [VideoEdge(cursor=c, node=Video.from_row(v)) for c, v in rows]
        return VideoConnection(
            edges=edges, page_info=PageInfo.of(edges, more), total_count=await videos.count(flt)
        )

    @strawberry.field(
        description="Videos by weighted score (Σ weight · score; a criterion a video has no "
        "score on counts 0), best first, with keyset cursors that stay stable while scores "
        "move. Default weights: the main criterion only. Unsafe videos are hidden unless "
        "includeUnsafe."
    )
    async def rankings(
        self,
        info: strawberry.Info,
        weights: list[CriterionWeightInput] | None = None,
        filter: VideoFilter | None = None,
        include_unsafe: bool = False,
        first: int = 20,
        after: str | None = None,
    ) -> RankingConnection:
        pairs = [(w.criterion, w.weight) for w in weights] if weights else None
        page = await rankings.rankings(
            info.context, pairs, filter_dict(filter), include_unsafe, first, after
        )
        return RankingConnection.of(page)

    @strawberry.field(description="The signed-in user (null when signed out).")
    async def me(self, info: strawberry.Info) -> Me | None:
        viewer = info.context.viewer
        if viewer is None:
            return None
        user = await accounts.user_by_name(viewer.username)
        return Me(pk=user.id, username=user.username, is_admin=viewer.is_admin,
                  pretrust=user.pretrust)  # fmt: skip

    @strawberry.field(description="A contributor's public profile (public ratings only).")
    async def user(self, username: str) -> PublicUser | None:
        found = await accounts.users_by_name([username])
        return PublicUser.of(found[username]) if username in found else None

    @strawberry.field(
        description="The signed-in user's comparison of two videos, oriented as asked "
        "(scores negated when stored the other way round); null if none."
    )
    async def comparison(
        self, info: strawberry.Info, video_a: str, video_b: str
    ) -> Comparison | None:
        data = await comparisons.get(info.context, video_a, video_b)
        return Comparison.of(data) if data else None

    @strawberry.field(description="Pairs worth comparing next, for the signed-in user (1..20).")
    async def suggestions(self, info: strawberry.Info, first: int = 5) -> list[Suggestion]:
        rows = await comparisons.suggestions(info.context, first)
        return [
            Suggestion(
                video_a=Video.from_row(a), video_b=Video.from_row(b), uncertainty=u, reason=why
            )
            for a, b, u, why in rows
        ]

    @strawberry.field
    async def stats(self, info: strawberry.Info) -> Stats:
        return Stats(**await stats.stats(info.context))
