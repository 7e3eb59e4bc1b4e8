"""GraphQL object types. No database or TensorFlow here: resolvers do the work."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from app.criteria import CRITERIA, Criterion
from app.resolvers import accounts, comparisons, videos


@strawberry.type(name="Criterion", description="A quality criterion videos are compared on.")
class CriterionType:
    name: str
    label: str
    is_main: bool = strawberry.field(description="The criterion rankings use by default.")

    @classmethod
    def of(cls, criterion: Criterion) -> CriterionType:
        return cls(name=criterion.name, label=criterion.label, is_main=criterion.main)


ALL_CRITERIA = [CriterionType.of(c) for c in CRITERIA]


@strawberry.type(description="A video's global score on one criterion, live from the learner.")
class VideoScore:
    criterion: str
    score: float = strawberry.field(description="Display scale, -100..100.")
    uncertainty: float = strawberry.field(description="Half-width on the display scale.")
    n_contributors: int
    n_comparisons: int


@strawberry.type(description="A contributor's personal score of a video on one criterion.")
class PersonalScore:
    criterion: str
    score: float = strawberry.field(description="Display scale, -100..100.")
    uncertainty: float


@strawberry.type(description="A YouTube video.")
class Video(relay.Node):
    # The global id encodes the YouTube id; NodeID fields are hidden from the schema,
    # hence the plain copy below.
    node_key: relay.NodeID[str]
    pk: strawberry.Private[int]
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

    @strawberry.field(
        description="Global scores, live (all scored criteria, or those asked for, in order)."
    )
    def scores(self, info: strawberry.Info, criteria: list[str] | None = None) -> list[VideoScore]:
        return videos.scores(info.context.learner, self.pk, criteria)  # type: ignore[return-value]

    @strawberry.field(description="The score on the main criterion (null when unrated).")
    def tournesol_score(self, info: strawberry.Info) -> float | None:
        return videos.tournesol_score(info.context.learner, self.pk)

    @strawberry.field(
        description="Safe to recommend: main score > 20 and raters' trust summing to ≥ 1.5."
    )
    def safe(self, info: strawberry.Info) -> bool:
        return videos.is_safe(info.context.learner, self.pk)

    @strawberry.field(
        description="The signed-in user's personal scores of this video (null when signed out)."
    )
    async def my_scores(
        self, info: strawberry.Info, criteria: list[str] | None = None
    ) -> list[PersonalScore] | None:
        if info.context.viewer is None:
            return None
        rows = (await info.context.my_scores()).get(self.pk, [])
        return [r for r in rows if criteria is None or r.criterion in criteria]

    @classmethod
    def from_row(cls, row: Any) -> Video:
        return cls(
            node_key=row.youtube_id,
            pk=row.id,
            youtube_id=row.youtube_id,
            title=row.title,
            uploader=row.uploader,
            language=row.language,
            duration_seconds=row.duration_s,
            published_at=row.published_at,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Video:
        published = d["published_at"]
        return cls(
            node_key=d["youtube_id"],
            pk=d["pk"],
            youtube_id=d["youtube_id"],
            title=d["title"],
            uploader=d["uploader"],
            language=d["language"],
            duration_seconds=d["duration_s"],
            published_at=datetime.fromisoformat(published) if published else None,
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Video | None]:
        ids = list(node_ids)
        found = await videos.by_youtube_ids(ids)
        return [cls.from_row(found[i]) if i in found else None for i in ids]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None

    @classmethod
    def of(cls, edges: list, more: bool) -> PageInfo:
        return cls(has_next_page=more, end_cursor=edges[-1].cursor if edges else None)


@strawberry.type
class VideoEdge:
    cursor: str
    node: Video


@strawberry.type
class VideoConnection:
    edges: list[VideoEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type(description="One video's place in a ranking.")
class RankingEdge:
    cursor: str
    rank: int = strawberry.field(description="1 for the top video.")
    score: float = strawberry.field(description="Σ weight · score over the weighted criteria.")
    node: Video


@strawberry.type
class CriterionWeight:
    criterion: str
    weight: float


@strawberry.type
class RankingConnection:
    edges: list[RankingEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Videos in this ranking, all pages.")
    weights: list[CriterionWeight] = strawberry.field(description="The weights applied.")
    score_version: int = strawberry.field(description="The learner's score version used.")

    @classmethod
    def of(cls, page: dict[str, Any]) -> RankingConnection:
        edges = [
            RankingEdge(
                cursor=e["cursor"],
                rank=e["rank"],
                score=e["score"],
                node=Video.from_dict(e["video"]),
            )
            for e in page["edges"]
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.of(edges, page["has_next_page"]),
            total_count=page["total_count"],
            weights=[CriterionWeight(criterion=c, weight=w) for c, w in page["weights"]],
            score_version=page["version"],
        )


@strawberry.type
class ComparisonScore:
    criterion: str
    score: int = strawberry.field(description="Negative prefers videoA, positive videoB.")
    score_max: int


@strawberry.type(description="One contributor's comparison of two videos (visible to its author).")
class Comparison(relay.Node):
    node_key: relay.NodeID[str]
    video_a: Video
    video_b: Video
    scores: list[ComparisonScore]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: comparisons.ComparisonData) -> Comparison:
        return cls(
            node_key=str(c.pk),
            video_a=Video.from_row(c.video_a),
            video_b=Video.from_row(c.video_b),
            scores=[ComparisonScore(criterion=k, score=s, score_max=m) for k, s, m in c.scores],
            created_at=c.created_at,
            updated_at=c.updated_at,
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Comparison | None]:
        ids = list(node_ids)
        pks = [int(i) for i in ids if i.isdigit()]
        found = await comparisons.by_pks(info.context, pks)
        return [cls.of(found[int(i)]) if i.isdigit() and int(i) in found else None for i in ids]


@strawberry.type
class ComparisonEdge:
    cursor: str
    node: Comparison


@strawberry.type
class ComparisonConnection:
    edges: list[ComparisonEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, rows: list, more: bool) -> ComparisonConnection:
        edges = [ComparisonEdge(cursor=cur, node=Comparison.of(c)) for cur, c in rows]
        return cls(edges=edges, page_info=PageInfo.of(edges, more))


@strawberry.type(description="A contributor's rating of a video: their personal scores.")
class Rating:
    video: Video
    is_public: bool
    scores: list[PersonalScore]


@strawberry.type
class RatingEdge:
    cursor: str
    node: Rating


@strawberry.type
class RatingConnection:
    edges: list[RatingEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, rows: list, more: bool) -> RatingConnection:
        edges = [
            RatingEdge(
                cursor=cur,
                node=Rating(
                    video=Video.from_row(r.video),
                    is_public=r.is_public,
                    scores=r.scores,  # type: ignore[arg-type]
                ),
            )
            for cur, r in rows
        ]
        return cls(edges=edges, page_info=PageInfo.of(edges, more))


@strawberry.type
class RateLaterEdge:
    cursor: str
    node: Video
    added_at: datetime


@strawberry.type
class RateLaterConnection:
    edges: list[RateLaterEdge]
    page_info: PageInfo


@strawberry.type(name="User", description="A contributor's public profile.")
class PublicUser(relay.Node):
    node_key: relay.NodeID[str]
    pk: strawberry.Private[int]
    username: str

    @strawberry.field(description="Trust (0..1) from pretrust and vouches.")
    async def trust(self, info: strawberry.Info) -> float:
        return await info.context.learner.trust(self.pk)

    @strawberry.field(description="Public ratings only.")
    async def ratings(
        self, info: strawberry.Info, first: int = 20, after: str | None = None
    ) -> RatingConnection:
        rows, more = await comparisons.ratings(
            info.context, self.pk, first, after, public_only=True
        )
        return RatingConnection.of(rows, more)

    @strawberry.field(description="Comparisons whose two ratings are public.")
    async def comparisons(
        self, info: strawberry.Info, first: int = 20, after: str | None = None
    ) -> ComparisonConnection:
        rows, more = await comparisons.page(self.pk, first, after, public_only=True)
        return ComparisonConnection.of(rows, more)

    @classmethod
    def of(cls, user: Any) -> PublicUser:
        return cls(node_key=user.username, pk=user.id, username=user.username)

    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PublicUser | None]:
        ids = list(node_ids)
        found = await accounts.users_by_name(ids)
        return [cls.of(found[i]) if i in found else None for i in ids]


@strawberry.type(description="The signed-in user, with everything of theirs.")
class Me:
    pk: strawberry.Private[int]
    username: str
    is_admin: bool
    pretrust: float

    @strawberry.field
    async def trust(self, info: strawberry.Info) -> float:
        return await info.context.learner.trust(self.pk)

    @strawberry.field(description="My comparisons, oldest first.")
    async def comparisons(
        self, info: strawberry.Info, first: int = 20, after: str | None = None
    ) -> ComparisonConnection:
        rows, more = await comparisons.page(self.pk, first, after, public_only=False)
        return ComparisonConnection.of(rows, more)

    @strawberry.field(description="My personal scores per video, public and private.")
    async def ratings(
        self, info: strawberry.Info, first: int = 20, after: str | None = None
    ) -> RatingConnection:
        rows, more = await comparisons.ratings(
            info.context, self.pk, first, after, public_only=False
        )
        return RatingConnection.of(rows, more)

    @strawberry.field
    async def rate_later(
        self, info: strawberry.Info, first: int = 20, after: str | None = None
    ) -> RateLaterConnection:
        rows, more = await comparisons.rate_later_page(self.pk, first, after)
        edges = [RateLaterEdge(cursor=c, node=Video.from_row(v), added_at=t) for c, v, t in rows]
        return RateLaterConnection(edges=edges, page_info=PageInfo.of(edges, more))

    @strawberry.field(description="Usernames I vouch for.")
    async def vouches_given(self) -> list[str]:
        return (await accounts.vouches(self.pk))[0]

    @strawberry.field(description="Usernames vouching for me.")
    async def vouches_received(self) -> list[str]:
        return (await accounts.vouches(self.pk))[1]


@strawberry.type(description="A pair worth comparing next.")
class Suggestion:
    video_a: Video
    video_b: Video
    uncertainty: float = strawberry.field(description="Sum of the two videos' uncertainties.")
    reason: str


@strawberry.type
class Stats:
    contributors: int = strawberry.field(description="Users with at least one comparison.")
    users: int
    comparisons: int
    videos: int
    scored_videos: int
    score_version: int


@strawberry.type(description="New scores of one video.")
class ScoresUpdate:
    youtube_id: str
    score_version: int
    initial: bool = strawberry.field(description="True for the snapshot sent on subscribing.")
    scores: list[VideoScore]
