"""The root Mutation type: one ``input:`` argument each, and a payload carrying
``userErrors { field message code }`` for every expected failure (Shopify style).

Every input is validated before anything is written; a failure leaves the
database and the learner unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from strawberry import relay

from app.errors import InvalidInput
from app.resolvers import accounts, comparisons, metadata, moderation, videos
from app.schema.errors import ErrorCode
from app.schema.inputs import (
    AddVideoInput,
    CredentialsInput,
    DeleteComparisonInput,
    LogoutInput,
    ModerateVideoInput,
    RatingVisibilityInput,
    RefitInput,
    SetPretrustInput,
    SubmitComparisonInput,
    UsernameInput,
    VideoInput,
)
from app.schema.metadata import SetVideoMetadataInput
from app.schema.types import Comparison, Me, PublicUser, Suggestion, Video
from app.sources import queue as metadata_queue

P = TypeVar("P")


@strawberry.type(description="An expected failure: bad input, not signed in, not allowed.")
class UserError:
    field: str | None = strawberry.field(
        description="The input field at fault, as a path (`scores[0].score`); null for none."
    )
    message: str = strawberry.field(description="What went wrong, for people.")
    code: ErrorCode = strawberry.field(
        description="What went wrong, for programs: the same codes as a query's "
        "`errors[].extensions.code`."
    )


def _user_error(exc: InvalidInput) -> UserError:
    return UserError(field=exc.field or None, message=exc.message, code=exc.code)


def payload(cls: type[P]) -> Callable[[Callable[..., Awaitable[P]]], Callable[..., Awaitable[P]]]:
    """Run a mutation body; expected failures become ``cls(user_errors=[...])``."""

    def wrap(fn: Callable[..., Awaitable[P]]) -> Callable[..., Awaitable[P]]:
        @functools.wraps(fn)
        async def run(*args: Any, **kwargs: Any) -> P:
            try:
                return await fn(*args, **kwargs)
            except InvalidInput as exc:  # every expected failure (app/errors.py)
                return cls(user_errors=[_user_error(exc)])  # type: ignore[call-arg]

        return run

    return wrap


@strawberry.type
class LoginPayload:
    token: str | None = strawberry.field(
        default=None, description="Send it as `Authorization: Bearer <token>`. Shown once."
    )
    user: Me | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LogoutPayload:
    revoked_tokens: int = 0
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AddVideoPayload:
    video: Video | None = None
    created: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SetVideoMetadataPayload:
    video: Video | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SubmitComparisonPayload:
    comparison: Comparison | None = None
    video_a: Video | None = strawberry.field(
        default=None, description="With its scores refreshed by this comparison."
    )
    video_b: Video | None = strawberry.field(
        default=None, description="With its scores refreshed by this comparison."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)
    submitted: strawberry.Private[bool] = False

    @strawberry.field(
        description="The pair most worth comparing next, from the live uncertainties (null "
        "when there is none): the contributor loop in one round trip."
    )
    async def next_pair(self, info: strawberry.Info) -> Suggestion | None:
        # computed only when asked for: it reads the learner and the user's history
        if not self.submitted:
            return None
        following = await comparisons.suggestions(info.context, 1)
        return Suggestion.of(*following[0]) if following else None


@strawberry.type
class ModerateVideoPayload:
    video: Video | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteComparisonPayload:
    deleted: bool = False
    video_a: Video | None = None
    video_b: Video | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RatingVisibilityPayload:
    video: Video | None = None
    is_public: bool | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RateLaterPayload:
    video: Video | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UserPayload:
    user: PublicUser | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FitReport:
    iterations: int
    seconds: float
    grad_norm: float
    converged: bool


@strawberry.type
class RefitPayload:
    fit: FitReport | None = None
    client_mutation_id: str | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _me(user: Any, viewer_admin: bool) -> Me:
    return Me(pk=user.id, username=user.username, is_admin=viewer_admin, pretrust=user.pretrust)


@strawberry.type
class Mutation:  # account flows (register, email, passwords): app/schema/accounts.py
    @strawberry.mutation(description="Exchange a username and password for a bearer token.")
    @payload(LoginPayload)
    async def login(self, info: strawberry.Info, input: CredentialsInput) -> LoginPayload:
        from app.auth import is_admin

        user, token = await accounts.login(info.context, input.username, input.password)
        return LoginPayload(token=token, user=_me(user, is_admin(user, info.context.settings)))

    @strawberry.mutation(description="Revoke this request's token (or all of yours).")
    @payload(LogoutPayload)
    async def logout(
        self, info: strawberry.Info, input: LogoutInput | None = None
    ) -> LogoutPayload:
        n = await accounts.logout(info.context, bool(input and input.all_tokens))
        return LogoutPayload(revoked_tokens=n)

    @strawberry.mutation(
        description="Make a video known (idempotent). Its metadata is fetched from YouTube "
        "in the background: null until then."
    )
    @payload(AddVideoPayload)
    async def add_video(self, info: strawberry.Info, input: AddVideoInput) -> AddVideoPayload:
        info.context.require_viewer()
        video, created = await videos.add_video(
            input.youtube_id,
            {"title": input.title, "uploader": input.uploader, "language": input.language,
             "durationSeconds": input.duration_seconds, "publishedAt": input.published_at},
        )  # fmt: skip
        if created:
            metadata_queue.wake(info.context.request.scope["app"].state)
        return AddVideoPayload(video=Video.from_row(video), created=created)

    @strawberry.mutation(description="Admin: override a video's metadata, and lock it.")
    @payload(SetVideoMetadataPayload)
    async def set_video_metadata(
        self, info: strawberry.Info, input: SetVideoMetadataInput
    ) -> SetVideoMetadataPayload:
        video = await metadata.set_metadata(
            info.context, input.youtube_id, input.given(), input.lock, input.unlock
        )
        if input.unlock:  # due at once: fetch what YouTube owns again
            metadata_queue.wake(info.context.request.scope["app"].state)
        return SetVideoMetadataPayload(video=Video.from_row(video))

    @strawberry.mutation(
        description="Create or update your comparison of two videos on one or more criteria. "
        "The payload carries both videos with their scores refreshed by it."
    )
    @payload(SubmitComparisonPayload)
    async def submit_comparison(
        self, info: strawberry.Info, input: SubmitComparisonInput
    ) -> SubmitComparisonPayload:
        scores: list[tuple[str, int, int]] = [
            (s.criterion.value, s.score, s.score_max) for s in input.scores
        ]
        data, a, b = await comparisons.submit(
            info.context, input.video_a, input.video_b, scores, merge=input.merge
        )
        return SubmitComparisonPayload(
            comparison=Comparison.of(data),
            video_a=Video.from_row(a),
            video_b=Video.from_row(b),
            submitted=True,
        )

    @strawberry.mutation(
        description="Admin: mark a video unsafe to recommend (with a reason), or lift it; "
        "every change is logged."
    )
    @payload(ModerateVideoPayload)
    async def moderate_video(
        self, info: strawberry.Info, input: ModerateVideoInput
    ) -> ModerateVideoPayload:
        video = await moderation.moderate(info.context, input.youtube_id, input.unsafe,
                                          input.reason)  # fmt: skip
        return ModerateVideoPayload(video=Video.from_row(video))

    @strawberry.mutation(description="Delete one of your comparisons.")
    @payload(DeleteComparisonPayload)
    async def delete_comparison(
        self, info: strawberry.Info, input: DeleteComparisonInput
    ) -> DeleteComparisonPayload:
        pk = None
        if input.id is not None:
            pk = _comparison_pk(input.id)
        a, b = await comparisons.delete(info.context, input.video_a, input.video_b, pk)
        return DeleteComparisonPayload(
            deleted=True, video_a=Video.from_row(a), video_b=Video.from_row(b)
        )

    @strawberry.mutation(description="Make your rating of a video public or private.")
    @payload(RatingVisibilityPayload)
    async def set_rating_visibility(
        self, info: strawberry.Info, input: RatingVisibilityInput
    ) -> RatingVisibilityPayload:
        video = await comparisons.set_visibility(info.context, input.youtube_id, input.is_public)
        return RatingVisibilityPayload(video=Video.from_row(video), is_public=input.is_public)

    @strawberry.mutation
    @payload(RateLaterPayload)
    async def add_to_rate_later(self, info: strawberry.Info, input: VideoInput) -> RateLaterPayload:
        video = await comparisons.rate_later(info.context, input.youtube_id, True)
        return RateLaterPayload(video=Video.from_row(video))

    @strawberry.mutation
    @payload(RateLaterPayload)
    async def remove_from_rate_later(
        self, info: strawberry.Info, input: VideoInput
    ) -> RateLaterPayload:
        video = await comparisons.rate_later(info.context, input.youtube_id, False)
        return RateLaterPayload(video=Video.from_row(video))

    @strawberry.mutation(description="Vouch for another contributor (trust propagates).")
    @payload(UserPayload)
    async def vouch(self, info: strawberry.Info, input: UsernameInput) -> UserPayload:
        user = await accounts.set_vouch(info.context, input.username, True)
        return UserPayload(user=PublicUser.of(user))

    @strawberry.mutation(description="Withdraw your vouch for another contributor.")
    @payload(UserPayload)
    async def unvouch(self, info: strawberry.Info, input: UsernameInput) -> UserPayload:
        user = await accounts.set_vouch(info.context, input.username, False)
        return UserPayload(user=PublicUser.of(user))

    @strawberry.mutation(description="Admin: set a contributor's pretrust (0..1).")
    @payload(UserPayload)
    async def set_pretrust(self, info: strawberry.Info, input: SetPretrustInput) -> UserPayload:
        user = await accounts.set_pretrust(info.context, input.username, input.pretrust)
        return UserPayload(user=PublicUser.of(user))

    @strawberry.mutation(description="Admin: run a full warm-started refit now and wait for it.")
    @payload(RefitPayload)
    async def refit(self, info: strawberry.Info, input: RefitInput | None = None) -> RefitPayload:
        report = await accounts.refit(info.context)
        return RefitPayload(
            fit=FitReport(iterations=report.iterations, seconds=report.seconds,
                          grad_norm=report.grad_norm, converged=report.converged),
            client_mutation_id=input.client_mutation_id if input else None,
        )  # fmt: skip


def _comparison_pk(global_id: str) -> int:
    try:
        gid = relay.GlobalID.from_id(global_id)
    except ValueError:
        raise InvalidInput("id", "not a comparison id", "BAD_ID") from None
    if gid.type_name != "Comparison":
        raise InvalidInput("id", "not a comparison id", "BAD_ID")
    pk = comparisons.pk_of(gid.node_id)
    if pk is None:  # cannot exist: the same answer as any other missing comparison
        raise comparisons.not_found_by_id()
    return pk
