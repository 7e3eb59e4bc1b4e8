"""GraphQL object types. No database or TensorFlow here: resolvers do the work."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from app import i18n
from app.accounts import service as account_service
from app.criteria import LANGUAGES, Criterion, CriterionName
from app.resolvers import accounts, comparisons, moderation, videos
from app.resolvers.connections import Window
from app.schema.enums import (
    CriterionEnum,
    LabelLanguage,
    ScoreMax,
    SuggestionReason,
    UnsafeReason,
)
from app.schema.preferences import SettingsType, my_settings
from app.schema.sessions import Session, my_sessions
from app.sources.youtube import Availability

VideoAvailability = strawberry.enum(
    Availability, name="VideoAvailability", description="Can the video be watched?"
)


First = Annotated[
    int | None,
    strawberry.argument(
        description="Page size, from the start (1..100; 20 when neither first nor last)."
    ),
]
After = Annotated[
    str | None, strawberry.argument(description="Only edges after this cursor (`endCursor`).")
]
Last = Annotated[int | None, strawberry.argument(description="Page size, from the end (1..100).")]
Before = Annotated[
    str | None,
    strawberry.argument(description="Only edges before this cursor (`startCursor`)."),
]


def label_language(info: strawberry.Info, lang: Any | None) -> str:
    """``lang`` if given, else the request's Accept-Language (app/i18n.py)."""
    header = info.context.request.headers.get("accept-language")
    return i18n.choose(lang.value if lang is not None else None, header)


@strawberry.type
class LocalizedLabel:
    language: LabelLanguage  # type: ignore[valid-type]
    label: str


@strawberry.type(name="Criterion", description="A quality criterion videos are compared on.")
class CriterionType:
    name: CriterionEnum  # type: ignore[valid-type]
    is_main: bool = strawberry.field(
        description="The main criterion: rankings use it by default, and a new comparison "
        "must score it."
    )
    criterion: strawberry.Private[Criterion]
    language: strawberry.Private[str | None] = None

    @strawberry.field(
        description="In `lang`, else the language the query asked for (`criteria(lang:)`), "
        "else the best of Accept-Language; English by default."
    )
    def label(self, info: strawberry.Info, lang: LabelLanguage | None = None) -> str:  # type: ignore[valid-type]
        if lang is None and self.language is not None:
            return self.criterion.label_in(self.language)
        return self.criterion.label_in(label_language(info, lang))

    @strawberry.field(description="The label in every language Sunrank has.")
    def labels(self) -> list[LocalizedLabel]:
        return [
            LocalizedLabel(language=lang, label=self.criterion.label_in(lang))  # type: ignore[arg-type]
            for lang in LANGUAGES
        ]

    @classmethod
    def of(cls, criterion: Criterion, language: str | None = None) -> CriterionType:
        return cls(
            name=CriterionName(criterion.name),
            is_main=criterion.main,
            criterion=criterion,
            language=language,
        )


@strawberry.type(description="A video's global score on one criterion, live from the learner.")
class VideoScore(relay.Node):
    node_key: relay.NodeID[str]  # "<youtubeId>:<criterion>"
    criterion: CriterionEnum  # type: ignore[valid-type]
    score: float = strawberry.field(description="Display scale, -100..100.")
    uncertainty: float = strawberry.field(description="Half-width on the display scale.")
    n_contributors: int = strawberry.field(description="Contributors who rated the video.")
    n_comparisons: int = strawberry.field(description="Comparisons of the video, by anyone.")

    @classmethod
    def of(cls, youtube_id: str, view: Any) -> VideoScore:
        return cls(
            node_key=f"{youtube_id}:{view.criterion}",
            criterion=CriterionName(view.criterion),
            score=view.score,
            uncertainty=view.uncertainty,
            n_contributors=view.n_contributors,
            n_comparisons=view.n_comparisons,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # one def for Node's overloads
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[VideoScore | None]:
        ids = [i.rpartition(":") for i in node_ids]
        found = await videos.by_youtube_ids([y for y, _, _ in ids])
        out: list[VideoScore | None] = []
        for youtube_id, _, criterion in ids:
            row = found.get(youtube_id)
            view = info.context.learner.video_scores(row.id).get(criterion) if row else None
            out.append(cls.of(youtube_id, view) if view else None)
        return out


@strawberry.type(description="A contributor's personal score of a video on one criterion.")
class PersonalScore:
    criterion: CriterionEnum  # type: ignore[valid-type]
    score: float = strawberry.field(description="Display scale, -100..100.")
    uncertainty: float


@strawberry.type(description="A YouTube video.")
class Video(relay.Node):
    # The global id encodes the YouTube id; NodeID fields are hidden from the schema,
    # hence the plain copy below.
    node_key: relay.NodeID[str]
    pk: strawberry.Private[int]
    youtube_id: str
    # Metadata from YouTube (null: not fetched yet, or YouTube does not say).
    title: str | None
    uploader: str | None = strawberry.field(description="The channel's name.")
    description: str | None
    tags: list[str] | None
    language: str | None = strawberry.field(description="ISO 639-1, declared or detected.")
    duration_seconds: int | None
    published_at: datetime | None
    availability: VideoAvailability | None = strawberry.field(  # type: ignore[valid-type]
        description="Null until first checked; DELETED and PRIVATE are left out of rankings."
    )
    metadata_fetched_at: datetime | None

    @strawberry.field(description="The video's page on YouTube.")
    def url(self) -> str:
        return f"https://www.youtube.com/watch?v={self.youtube_id}"

    @strawberry.field
    def thumbnail_url(self) -> str:
        return f"https://i.ytimg.com/vi/{self.youtube_id}/mqdefault.jpg"

    @strawberry.field(
        description="Global scores, live (all scored criteria, or those asked for, in order)."
    )
    def scores(
        self,
        info: strawberry.Info,
        criteria: list[CriterionEnum] | None = None,  # type: ignore[valid-type]
    ) -> list[VideoScore]:
        names = [c.value for c in criteria] if criteria is not None else None
        views = videos.scores(info.context.learner, self.pk, names)
        return [VideoScore.of(self.youtube_id, v) for v in views]

    @strawberry.field(description="The score on the main criterion (null when unrated).")
    def tournesol_score(self, info: strawberry.Info) -> float | None:
        return videos.tournesol_score(info.context.learner, self.pk)

    @strawberry.field(
        description="Safe to recommend: no `unsafeReasons` (main score > 20, raters' trust "
        "summing to ≥ 1.5, watchable, not moderated)."
    )
    async def safe(self, info: strawberry.Info) -> bool:
        return not await self._unsafe_reasons(info)

    @strawberry.field(description="Why the video is not recommended; empty when it is safe.")
    async def unsafe_reasons(self, info: strawberry.Info) -> list[UnsafeReason]:
        return [UnsafeReason(r) for r in await self._unsafe_reasons(info)]

    async def _unsafe_reasons(self, info: strawberry.Info) -> list[str]:
        availability = self.availability.value if self.availability else None
        return await moderation.unsafe_reasons(info.context, self.pk, availability)

    @strawberry.field(
        description="The signed-in user's personal scores of this video (null when signed out)."
    )
    async def my_scores(
        self,
        info: strawberry.Info,
        criteria: list[CriterionEnum] | None = None,  # type: ignore[valid-type]
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
            title=row.title or None,  # "" in the database: unknown, hence null
            uploader=row.uploader or None,
            description=row.description or None,
            tags=row.tags or None,
            language=row.language or None,
            duration_seconds=row.duration_s,
            published_at=row.published_at,
            availability=Availability(row.availability) if row.availability else None,
            metadata_fetched_at=row.metadata_fetched_at,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Video:
        published, fetched = d["published_at"], d.get("metadata_fetched_at")
        return cls(
            node_key=d["youtube_id"],
            pk=d["pk"],
            youtube_id=d["youtube_id"],
            title=d["title"] or None,
            uploader=d["uploader"] or None,
            description=d.get("description") or None,
            tags=d.get("tags") or None,
            language=d["language"] or None,
            duration_seconds=d["duration_s"],
            published_at=datetime.fromisoformat(published) if published else None,
            availability=Availability(d["availability"]) if d.get("availability") else None,
            metadata_fetched_at=datetime.fromisoformat(fetched) if fetched else None,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # one def for Node's overloads
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Video | None]:
        ids = list(node_ids)
        found = await videos.by_youtube_ids(ids)
        return [cls.from_row(found[i]) if i in found else None for i in ids]


@strawberry.type(description="Where a page stands in its connection (Relay).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More edges follow this page.")
    has_previous_page: bool = strawberry.field(description="Edges precede this page.")
    start_cursor: str | None = strawberry.field(
        description="The first edge's cursor (for `before`); null on an empty page."
    )
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor (for `after`); null on an empty page."
    )

    @classmethod
    def of(cls, edges: list, more: bool, previous: bool = False) -> PageInfo:
        return cls(
            has_next_page=more,
            has_previous_page=previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )


@strawberry.type(description="A video in a list.")
class VideoEdge:
    cursor: str = strawberry.field(description="Opaque: pass to `after` or `before`.")
    node: Video = strawberry.field(description="The video.")


@strawberry.type(description="A page of videos.")
class VideoConnection:
    edges: list[VideoEdge] = strawberry.field(description="This page's videos.")
    page_info: PageInfo = strawberry.field(description="Where this page stands.")
    total_count: int = strawberry.field(description="Videos in the whole list, all pages.")


@strawberry.type(description="One video's place in a ranking.")
class RankingEdge:
    cursor: str
    rank: int = strawberry.field(description="1 for the top video.")
    score: float = strawberry.field(description="Σ weight · score over the weighted criteria.")
    node: Video


@strawberry.type
class CriterionWeight:
    criterion: CriterionEnum  # type: ignore[valid-type]
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
            page_info=PageInfo.of(edges, page["has_next_page"], page["has_previous_page"]),
            total_count=page["total_count"],
            weights=[CriterionWeight(criterion=c, weight=w) for c, w in page["weights"]],
            score_version=page["version"],
        )


@strawberry.type
class ComparisonScore:
    criterion: CriterionEnum  # type: ignore[valid-type]
    score: int = strawberry.field(description="Negative prefers videoA, positive videoB.")
    score_max: ScoreMax = strawberry.field(description="The scale of `score`.")


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
            scores=[
                ComparisonScore(criterion=CriterionName(k), score=s, score_max=ScoreMax(m))
                for k, s, m in c.scores
            ],
            created_at=c.created_at,
            updated_at=c.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # one def for Node's overloads
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Comparison | None]:
        pks = [comparisons.pk_of(i) for i in node_ids]
        found = await comparisons.visible_by_pks(info.context, [pk for pk in pks if pk is not None])
        return [cls.of(found[pk]) if pk in found else None for pk in pks]


@strawberry.type
class ComparisonEdge:
    cursor: str
    node: Comparison


@strawberry.type(description="A page of comparisons.")
class ComparisonConnection:
    edges: list[ComparisonEdge] = strawberry.field(description="This page's comparisons.")
    page_info: PageInfo = strawberry.field(description="Where this page stands.")
    total_count: int = strawberry.field(description="Comparisons in the whole list.")

    @classmethod
    def of(cls, page: Any) -> ComparisonConnection:
        edges = [ComparisonEdge(cursor=cur, node=Comparison.of(c)) for cur, c in page.rows]
        return cls(
            edges=edges,
            page_info=PageInfo.of(edges, page.has_next, page.has_previous),
            total_count=page.total,
        )


@strawberry.type(description="A contributor's rating of a video: their personal scores.")
class Rating(relay.Node):
    node_key: relay.NodeID[str]  # "<username>:<youtubeId>"
    video: Video = strawberry.field(description="The rated video.")
    is_public: bool = strawberry.field(description="Shown on the contributor's public profile.")
    scores: list[PersonalScore] = strawberry.field(description="Personal scores per criterion.")

    @classmethod
    def of(cls, username: str, r: Any) -> Rating:
        return cls(
            node_key=f"{username}:{r.video.youtube_id}",
            video=Video.from_row(r.video),
            is_public=r.is_public,
            scores=r.scores,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # one def for Node's overloads
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Rating | None]:
        out: list[Rating | None] = []
        for node_id in node_ids:
            username, _, youtube_id = node_id.rpartition(":")
            found = await comparisons.rating(info.context, username, youtube_id)
            out.append(cls.of(username, found) if found else None)
        return out


@strawberry.type
class RatingEdge:
    cursor: str
    node: Rating


@strawberry.type(description="A page of ratings.")
class RatingConnection:
    edges: list[RatingEdge] = strawberry.field(description="This page's ratings.")
    page_info: PageInfo = strawberry.field(description="Where this page stands.")
    total_count: int = strawberry.field(description="Ratings in the whole list.")

    @classmethod
    def of(cls, username: str, page: Any) -> RatingConnection:
        edges = [RatingEdge(cursor=cur, node=Rating.of(username, r)) for cur, r in page.rows]
        return cls(
            edges=edges,
            page_info=PageInfo.of(edges, page.has_next, page.has_previous),
            total_count=page.total,
        )


@strawberry.type(description="A video in the rate-later list.")
class RateLaterEdge:
    cursor: str = strawberry.field(description="Opaque: pass to `after` or `before`.")
    node: Video = strawberry.field(description="The video.")
    added_at: datetime = strawberry.field(description="When it was added to the list.")


@strawberry.type(description="A page of the rate-later list.")
class RateLaterConnection:
    edges: list[RateLaterEdge] = strawberry.field(description="This page's videos.")
    page_info: PageInfo = strawberry.field(description="Where this page stands.")
    total_count: int = strawberry.field(description="Videos in the whole list.")


@strawberry.type(name="User", description="A contributor's public profile.")
class PublicUser(relay.Node):
    node_key: relay.NodeID[str]
    pk: strawberry.Private[int]
    username: str

    @strawberry.field(description="Trust (0..1) from pretrust and vouches.")
    async def trust(self, info: strawberry.Info) -> float:
        return await info.context.learner.trust(self.pk)

    @strawberry.field(description="Public ratings only, by video.")
    async def ratings(
        self,
        info: strawberry.Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> RatingConnection:
        window = Window.of(first, after, last, before)
        page = await comparisons.ratings(info.context, self.pk, window, public_only=True)
        return RatingConnection.of(self.username, page)

    @strawberry.field(description="Comparisons whose two ratings are public, oldest first.")
    async def comparisons(
        self,
        info: strawberry.Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> ComparisonConnection:
        window = Window.of(first, after, last, before)
        return ComparisonConnection.of(await comparisons.page(self.pk, window, public_only=True))

    @classmethod
    def of(cls, user: Any) -> PublicUser:
        return cls(node_key=user.username, pk=user.id, username=user.username)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # one def for Node's overloads
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PublicUser | None]:
        ids = list(node_ids)
        found = await accounts.users_by_name(ids)
        return [cls.of(found[i]) if i in found else None for i in ids]


@strawberry.type(description="The signed-in user, with everything of theirs.")
class Me(relay.Node):
    pk: strawberry.Private[int]
    username: str = strawberry.field(description="My username.")
    is_admin: bool = strawberry.field(description="Whether I am an administrator.")
    pretrust: float = strawberry.field(description="Trust granted before any vouch (0..1).")

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # one def for Node's overloads
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Me | None]:
        viewer = info.context.viewer
        out: list[Me | None] = []
        for node_id in node_ids:
            if viewer is None or node_id != viewer.username:
                out.append(None)  # only the viewer is ever `Me`
                continue
            user = await accounts.user_by_name(viewer.username)
            out.append(cls.of(user, viewer.is_admin))
        return out

    @classmethod
    def resolve_id(cls, root: Me, *, info: strawberry.Info) -> str:
        # the username (built by several modules: no NodeID field to fill)
        return root.username

    @classmethod
    def of(cls, user: Any, is_admin: bool) -> Me:
        return cls(
            pk=user.id,
            username=user.username,
            is_admin=is_admin,
            pretrust=user.pretrust,
        )

    @strawberry.field(description="My trust (0..1) from pretrust and vouches.")
    async def trust(self, info: strawberry.Info) -> float:
        return await info.context.learner.trust(self.pk)

    @strawberry.field(description="My comparisons, oldest first.")
    async def comparisons(
        self,
        info: strawberry.Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> ComparisonConnection:
        window = Window.of(first, after, last, before)
        return ComparisonConnection.of(await comparisons.page(self.pk, window, public_only=False))

    @strawberry.field(description="My personal scores per video, public and private.")
    async def ratings(
        self,
        info: strawberry.Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> RatingConnection:
        window = Window.of(first, after, last, before)
        page = await comparisons.ratings(info.context, self.pk, window, public_only=False)
        return RatingConnection.of(self.username, page)

    @strawberry.field(
        description="My videos ranked by my own live (personal) scores on `criterion`, best "
        "first; keyset cursors."
    )
    async def ranking(
        self,
        info: strawberry.Info,
        criterion: Annotated[
            CriterionEnum,  # type: ignore[valid-type]
            strawberry.argument(description="The criterion to rank on."),
        ] = CriterionName.largely_recommended,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> RatingConnection:
        window = Window.of(first, after, last, before)
        page = await comparisons.personal_ranking(info.context, criterion.value, window)
        return RatingConnection.of(self.username, page)

    @strawberry.field(description="Videos I put aside to compare later, oldest first.")
    async def rate_later(
        self,
        info: strawberry.Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> RateLaterConnection:
        window = Window.of(first, after, last, before)
        page = await comparisons.rate_later_page(self.pk, window)
        edges = [
            RateLaterEdge(cursor=c, node=Video.from_row(v), added_at=t) for c, v, t in page.rows
        ]
        return RateLaterConnection(
            edges=edges,
            page_info=PageInfo.of(edges, page.has_next, page.has_previous),
            total_count=page.total,
        )

    @strawberry.field(description="My email address (null: none yet).")
    async def email(self) -> str | None:
        row = await account_service.email_of(self.pk)
        return row.email if row else None

    @strawberry.field(description="Whether my address is verified.")
    async def email_verified(self) -> bool:
        row = await account_service.email_of(self.pk)
        return bool(row and row.verified_at)

    @strawberry.field(description="A new address waiting for its verification link.")
    async def pending_email(self) -> str | None:
        return await account_service.pending_email(self.pk)

    @strawberry.field(description="My settings.")
    async def settings(self, info: strawberry.Info) -> SettingsType:
        return await my_settings(info)

    @strawberry.field(description="My signed-in clients (bearer tokens), newest first.")
    async def sessions(self, info: strawberry.Info) -> list[Session]:
        return await my_sessions(info)

    @strawberry.field(description="Usernames I vouch for.")
    async def vouches_given(self) -> list[str]:
        return (await accounts.vouches(self.pk))[0]

    @strawberry.field(description="Usernames vouching for me.")
    async def vouches_received(self) -> list[str]:
        return (await accounts.vouches(self.pk))[1]


@strawberry.type(description="A pair worth comparing next.")
class Suggestion(relay.Node):
    node_key: relay.NodeID[str]  # "<youtubeId A>:<youtubeId B>"
    video_a: Video = strawberry.field(description="One video of the pair.")
    video_b: Video = strawberry.field(description="The other video.")
    uncertainty: float = strawberry.field(description="Sum of the two videos' uncertainties.")
    reason: SuggestionReason = strawberry.field(description="Why this pair is suggested.")

    @classmethod
    def of(cls, a: Any, b: Any, uncertainty: float, reason: str) -> Suggestion:
        return cls(
            node_key=f"{a.youtube_id}:{b.youtube_id}",
            video_a=Video.from_row(a),
            video_b=Video.from_row(b),
            uncertainty=uncertainty,
            reason=SuggestionReason(reason),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # one def for Node's overloads
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Suggestion | None]:
        out: list[Suggestion | None] = []
        for node_id in node_ids:
            a, _, b = node_id.partition(":")
            found = await comparisons.suggestion(info.context, a, b)
            out.append(cls.of(*found) if found else None)
        return out


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
