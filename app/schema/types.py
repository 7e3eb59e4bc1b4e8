"""GraphQL object types. No database or TensorFlow here: resolvers do the work."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from app.criteria import CRITERIA, Criterion


@strawberry.type(name="Criterion", description="A quality criterion videos are compared on.")
class CriterionType:
    name: str
    label: str
    is_main: bool = strawberry.field(description="The criterion rankings use by default.")

    @classmethod
    def of(cls, criterion: Criterion) -> CriterionType:
        return cls(name=criterion.name, label=criterion.label, is_main=criterion.main)


ALL_CRITERIA = [CriterionType.of(c) for c in CRITERIA]


@strawberry.type(description="A YouTube video.")
class Video(relay.Node):
    # The global id encodes the YouTube id; NodeID fields are hidden from the schema,
    # hence the plain copy below.
    node_key: relay.NodeID[str]
    youtube_id: str
    title: str
    uploader: str
    language: str
    duration_seconds: int | None
    published_at: datetime | None

    @strawberry.field(description="The video's page on YouTube.")
    def url(self) -> str:
        return f"https://www.youtube.com/watch?v={self.youtube_id}"

    @strawberry.field
    def thumbnail_url(self) -> str:
        return f"https://i.ytimg.com/vi/{self.youtube_id}/mqdefault.jpg"

    @classmethod
    def from_row(cls, row: Any) -> Video:
        return cls(
            node_key=row.youtube_id,
            youtube_id=row.youtube_id,
            title=row.title,
            uploader=row.uploader,
            language=row.language,
            duration_seconds=row.duration_s,
            published_at=row.published_at,
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Video | None]:
        from app.resolvers import videos

        ids = list(node_ids)
        found = await videos.by_youtube_ids(ids)
        return [cls.from_row(found[i]) if i in found else None for i in ids]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class VideoEdge:
    cursor: str
    node: Video


@strawberry.type
class VideoConnection:
    edges: list[VideoEdge]
    page_info: PageInfo
    total_count: int
