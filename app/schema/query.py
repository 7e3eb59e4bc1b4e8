"""The root Query type."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import relay

from app.criteria import CRITERIA
from app.db.validation import InvalidInput
from app.resolvers import accounts, comparisons, rankings, stats, videos
from app.resolvers.connections import Window
from app.schema.enums import LabelLanguage
from app.schema.inputs import CriterionWeightInput, VideoFilter, filter_dict
from app.schema.types import (
    After,
    Before,
    Comparison,
    CriterionType,
    First,
    Last,
    Me,
    PageInfo,
    PublicUser,
    RankingConnection,
    Rating,
    Stats,
    Suggestion,
    Video,
    VideoConnection,
    VideoEdge,
    VideoScore,
    label_language,
)


def no_store(info: strawberry.Info) -> None:
    """Keep this answer out of the whole-response cache (app/response_cache.py)."""
    info.context.request.scope.setdefault("state", {})["no_store"] = True


# The types a global id can name (their GraphQL names).
NODE_TYPES: dict[str, Any] = {
    "Video": Video,
    "Comparison": Comparison,
    "User": PublicUser,
    "Me": Me,
    "Rating": Rating,
    "VideoScore": VideoScore,
    "Suggestion": Suggestion,
}


def _global_id(id: str, field: str) -> relay.GlobalID:
    try:
        return relay.GlobalID.from_id(id)
    except ValueError:
        raise InvalidInput(field, "not a global id this API issued", "BAD_ID") from None


async def resolve_nodes(info: strawberry.Info, ids: list[str], field: str) -> list[Any]:
    """Objects by global id, in order; None where an id names nothing the viewer can
    see (an unknown type included: Relay wants null, not an error)."""
    gids = [_global_id(i, field) for i in ids]
    by_type: dict[str, list[str]] = {}
    for gid in gids:
        if gid.type_name in NODE_TYPES:
            by_type.setdefault(gid.type_name, []).append(gid.node_id)
    found: dict[tuple[str, str], Any] = {}
    for type_name, node_ids in by_type.items():
        unique = list(dict.fromkeys(node_ids))
        resolved = await NODE_TYPES[type_name].resolve_nodes(info=info, node_ids=unique)
        found.update(((type_name, i), r) for i, r in zip(unique, resolved, strict=True))
    return [found.get((g.type_name, g.node_id)) for g in gids]


MAX_NODES = 100


@strawberry.type
class Query:
    @strawberry.field(
        description="Any object by its global id (a comparison: your own, or another's "
        "whose two ratings are public); null when the id names nothing you can see."
    )
    async def node(
        self,
        info: strawberry.Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The ID of the object.")],
    ) -> relay.Node | None:
        # Not strawberry's relay.node(): it fails (an internal error) on a well-formed
        # id of an unknown or non-Node type, where Relay wants null.
        (found,) = await resolve_nodes(info, [id], "id")
        return found

    @strawberry.field(
        description="Objects by global id, in the order asked (at most 100); null for an id "
        "naming nothing you can see."
    )
    async def nodes(
        self,
        info: strawberry.Info,
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="Global ids (at most 100).")
        ],
    ) -> list[relay.Node | None]:
        if len(ids) > MAX_NODES:
            raise InvalidInput("ids", f"at most {MAX_NODES} ids", "TOO_MANY_IDS")
        return await resolve_nodes(info, list(ids), "ids")

    @strawberry.field(
        description="The criteria videos are compared on; the main one first. Labels in "
        "`lang`, else in the best language of the request's Accept-Language (English by "
        "default)."
    )
    def criteria(
        self,
        info: strawberry.Info,
        lang: LabelLanguage | None = None,  # type: ignore[valid-type]
    ) -> list[CriterionType]:
        language = label_language(info, lang)
        return [CriterionType.of(c, language) for c in CRITERIA]

    @strawberry.field(description="A video by its YouTube id, or null if Sunrank does not know it.")
    async def video(self, youtube_id: str) -> Video | None:
        found = await videos.by_youtube_ids([youtube_id])
        return Video.from_row(found[youtube_id]) if youtube_id in found else None

    @strawberry.field(description="Known videos, oldest first (1 ≤ first ≤ 100).")
    async def videos(
        self,
        filter: Annotated[
            VideoFilter | None, strawberry.argument(description="Only videos matching this.")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> VideoConnection:
        page = await videos.page(Window.of(first, after, last, before), filter_dict(filter))
        edges = [VideoEdge(cursor=c, node=Video.from_row(v)) for c, v in page.rows]
        return VideoConnection(
            edges=edges,
            page_info=PageInfo.of(edges, page.has_next, page.has_previous),
            total_count=page.total,
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
        first: First = None,
        after: After = None,
        exclude_compared: Annotated[
            bool,
            strawberry.argument(description="Leave out the videos I compared (signed in)."),
        ] = False,
        last: Last = None,
        before: Before = None,
    ) -> RankingConnection:
        pairs = [(w.criterion.value, w.weight) for w in weights] if weights else None
        page = await rankings.rankings(
            info.context, pairs, filter_dict(filter), include_unsafe, first, after,
            exclude_compared, last, before,
        )  # fmt: skip
        return RankingConnection.of(page)

    @strawberry.field(
        description="A random sample of recommendable (safe) videos matching `filter`, a new "
        "draw on every request (1 ≤ first ≤ 50): what Tournesol's browser extension shows."
    )
    async def random_recommendations(
        self,
        info: strawberry.Info,
        first: int = 10,
        filter: VideoFilter | None = None,
        exclude_compared: bool = False,
    ) -> list[Video]:
        no_store(info)
        rows = await rankings.random_recommendations(
            info.context, first, filter_dict(filter), exclude_compared
        )
        return [Video.from_row(r) for r in rows]

    @strawberry.field(description="The signed-in user (null when signed out).")
    async def me(self, info: strawberry.Info) -> Me | None:
        viewer = info.context.viewer
        if viewer is None:
            return None
        user = await accounts.user_by_name(viewer.username)
        return Me.of(user, viewer.is_admin)

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
        return [Suggestion.of(a, b, u, why) for a, b, u, why in rows]

    @strawberry.field
    async def stats(self, info: strawberry.Info) -> Stats:
        return Stats(**await stats.stats(info.context))
