"""The root Query type."""

from __future__ import annotations

import strawberry
from strawberry import relay

from app.resolvers import videos
from app.schema.types import (
    ALL_CRITERIA,
    CriterionType,
    PageInfo,
    Video,
    VideoConnection,
    VideoEdge,
)


@strawberry.type
class Query:
    node: relay.Node | None = relay.node(description="Any object by its global id.")

    @strawberry.field(description="The criteria videos are compared on; the main one first.")
    def criteria(self) -> list[CriterionType]:
        return ALL_CRITERIA

    @strawberry.field(description="A video by its YouTube id, or null if Sunrank does not know it.")
    async def video(self, youtube_id: str) -> Video | None:
        found = await videos.by_youtube_ids([youtube_id])
        return Video.from_row(found[youtube_id]) if youtube_id in found else None

    @strawberry.field(description="All known videos, oldest first (1 ≤ first ≤ 100).")
    async def videos(self, first: int = 20, after: str | None = None) -> VideoConnection:
        rows, more = await videos.page(first, after)
        edges = [VideoEdge(cursor=c, node=Video.from_row(v)) for c, v in rows]
        return VideoConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
            total_count=await videos.count(),
        )
