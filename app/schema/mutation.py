"""The root Mutation type: one ``input:`` argument each, and a payload carrying
``userErrors { field message code }`` for every expected failure (Shopify style).

Every input is validated before anything is written; a failure leaves the
database and the learner unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.utils.str_converters import to_camel_case

from app.errors import InvalidInput
from app.resolvers import accounts, comparisons, metadata, moderation, videos
from app.schema.errors import FALLBACK, ErrorCode, user_error_type
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
log = logging.getLogger("sunrank.api")


# Every mutation can answer these (besides its own codes, declared next to it).
COMMON: tuple[ErrorCode, ...] = (FALLBACK,)
# Shorthands for the declarations below.
SIGNED_IN = (ErrorCode.UNAUTHENTICATED,)
ADMIN = (ErrorCode.UNAUTHENTICATED, ErrorCode.FORBIDDEN)
VIDEO = (ErrorCode.BAD_VIDEO_ID, ErrorCode.UNKNOWN_VIDEO)
USER = (ErrorCode.UNKNOWN_USER,)

# GraphQL mutation name -> its `<Mutation>UserError` class (tests read it).
USER_ERRORS: dict[str, Any] = {}


def payload(
    cls: type[P], *, codes: Iterable[ErrorCode | str]
) -> Callable[[Callable[..., Awaitable[P]]], Callable[..., Awaitable[P]]]:
    """Make a resolver a mutation answering ``<Mutation>Payload``: the fields of
    ``cls`` and ``userErrors: [<Mutation>UserError!]!``, whose ``code`` enum holds
    ``codes`` (every code the mutation can raise: tests/test_mutation_error_codes.py
    checks them) and :data:`COMMON`. Run the body; its expected failures
    (:class:`InvalidInput`) become ``userErrors``, the rest of the payload null.

    ``cls`` is a strawberry type without ``user_errors``: the answer is made of its
    fields, so several mutations can share it and each still gets its own type.
    """

    def wrap(fn: Callable[..., Awaitable[P]]) -> Callable[..., Awaitable[P]]:
        name = to_camel_case(fn.__name__)
        prefix = name[:1].upper() + name[1:]
        kind = user_error_type(name, (*COMMON, *codes))
        answer = _payload_type(cls, f"{prefix}Payload", kind)
        USER_ERRORS[name] = kind
        fields = [f.name for f in dataclasses.fields(answer) if f.init and f.name != "user_errors"]

        def user_error(exc: InvalidInput) -> Any:
            code = exc.code
            if code not in kind.codes:  # declared incompletely: a bug, not the client's
                log.error(
                    "mutation %s raised %s, which its payload does not declare "
                    "(app/schema: @payload(codes=...)); answered %s: %r",
                    name, code.value, FALLBACK.value, exc,
                )  # fmt: skip
                code = FALLBACK
            return kind(field=exc.field or None, message=exc.message, code=kind.code_enum(code))

        @functools.wraps(fn)
        async def run(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await fn(*args, **kwargs)
            except InvalidInput as exc:  # every expected failure (app/errors.py)
                return answer(user_errors=[user_error(exc)])
            return answer(**{f: getattr(result, f) for f in fields})

        # strawberry reads the mutation's type from the signature
        run.__signature__ = inspect.signature(fn).replace(  # type: ignore[attr-defined]
            return_annotation=answer
        )
        run.__annotations__ = {**fn.__annotations__, "return": answer}
        return run

    return wrap


def _payload_type(cls: type, name: str, kind: Any) -> Any:
    """``name``: ``cls`` with ``userErrors: [kind!]!``."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    namespace = {
        "__annotations__": {"user_errors": list[kind]},
        "__module__": cls.__module__,
        "user_errors": strawberry.field(default_factory=list),
    }
    return strawberry.type(
        type(name, (cls,), namespace),
        name=name,
        description=definition.description,
    )


@strawberry.type
class LoginPayload:
    token: str | None = strawberry.field(
        default=None, description="Send it as `Authorization: Bearer <token>`. Shown once."
    )
    user: Me | None = None


@strawberry.type
class LogoutPayload:
    revoked_tokens: int = 0


@strawberry.type
class AddVideoPayload:
    video: Video | None = None
    created: bool = False


@strawberry.type
class SetVideoMetadataPayload:
    video: Video | None = None


@strawberry.type
class SubmitComparisonPayload:
    comparison: Comparison | None = None
    video_a: Video | None = strawberry.field(
        default=None, description="With its scores refreshed by this comparison."
    )
    video_b: Video | None = strawberry.field(
        default=None, description="With its scores refreshed by this comparison."
    )
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


@strawberry.type
class DeleteComparisonPayload:
    deleted: bool = False
    video_a: Video | None = None
    video_b: Video | None = None


@strawberry.type(description="The rating's new visibility.")
class RatingVisibilityPayload:
    video: Video | None = strawberry.field(default=None, description="The rated video.")
    is_public: bool | None = strawberry.field(
        default=None, description="Whether the rating is now public."
    )


@strawberry.type(description="The video added to or removed from the rate-later list.")
class RateLaterPayload:
    video: Video | None = strawberry.field(default=None, description="The video.")


@strawberry.type(description="The contributor concerned.")
class UserPayload:
    user: PublicUser | None = strawberry.field(
        default=None, description="The contributor; null when refused."
    )


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


def _me(user: Any, viewer_admin: bool) -> Me:
    return Me(pk=user.id, username=user.username, is_admin=viewer_admin, pretrust=user.pretrust)


@strawberry.type
class Mutation:  # account flows (register, email, passwords): app/schema/accounts.py
    @strawberry.mutation(description="Exchange a username and password for a bearer token.")
    @payload(
        LoginPayload,
        codes=(ErrorCode.BAD_CREDENTIALS, ErrorCode.DEACTIVATED, ErrorCode.TOO_MANY_ATTEMPTS),
    )
    async def login(self, info: strawberry.Info, input: CredentialsInput) -> LoginPayload:
        from app.auth import is_admin

        user, token = await accounts.login(info.context, input.username, input.password)
        return LoginPayload(token=token, user=_me(user, is_admin(user, info.context.settings)))

    @strawberry.mutation(description="Revoke this request's token (or all of yours).")
    @payload(LogoutPayload, codes=SIGNED_IN)
    async def logout(
        self, info: strawberry.Info, input: LogoutInput | None = None
    ) -> LogoutPayload:
        n = await accounts.logout(info.context, bool(input and input.all_tokens))
        return LogoutPayload(revoked_tokens=n)

    @strawberry.mutation(
        description="Make a video known (idempotent). Its metadata is fetched from YouTube "
        "in the background: null until then."
    )
    @payload(AddVideoPayload, codes=(*SIGNED_IN, ErrorCode.BAD_VIDEO_ID, ErrorCode.READ_ONLY))
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
    @payload(
        SetVideoMetadataPayload,
        codes=(
            *ADMIN,
            *VIDEO,
            ErrorCode.BAD_LANGUAGE,
            ErrorCode.CONFLICT,
            ErrorCode.NOTHING_TO_DO,
            ErrorCode.OUT_OF_RANGE,
            ErrorCode.TOO_LONG,
            ErrorCode.UNKNOWN_FIELD,
        ),
    )
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
    @payload(
        SubmitComparisonPayload,
        codes=(
            *SIGNED_IN,
            ErrorCode.BAD_VIDEO_ID,
            ErrorCode.SAME_VIDEO,
            ErrorCode.NO_SCORES,
            ErrorCode.UNKNOWN_CRITERION,
            ErrorCode.DUPLICATE_CRITERION,
            ErrorCode.MAIN_CRITERION_REQUIRED,
            ErrorCode.BAD_SCORE,
            ErrorCode.BAD_SCORE_MAX,
            ErrorCode.SCORE_OUT_OF_RANGE,
        ),
    )
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
    @payload(
        ModerateVideoPayload,
        codes=(*ADMIN, *VIDEO, ErrorCode.MISSING, ErrorCode.TOO_LONG, ErrorCode.NOT_MODERATED),
    )
    async def moderate_video(
        self, info: strawberry.Info, input: ModerateVideoInput
    ) -> ModerateVideoPayload:
        video = await moderation.moderate(info.context, input.youtube_id, input.unsafe,
                                          input.reason)  # fmt: skip
        return ModerateVideoPayload(video=Video.from_row(video))

    @strawberry.mutation(description="Delete one of your comparisons.")
    @payload(
        DeleteComparisonPayload,
        codes=(
            *SIGNED_IN,
            *VIDEO,
            ErrorCode.BAD_ID,
            ErrorCode.MISSING,
            ErrorCode.SAME_VIDEO,
            ErrorCode.UNKNOWN_COMPARISON,
        ),
    )
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
    @payload(RatingVisibilityPayload, codes=(*SIGNED_IN, *VIDEO, ErrorCode.NOT_RATED))
    async def set_rating_visibility(
        self, info: strawberry.Info, input: RatingVisibilityInput
    ) -> RatingVisibilityPayload:
        video = await comparisons.set_visibility(info.context, input.youtube_id, input.is_public)
        return RatingVisibilityPayload(video=Video.from_row(video), is_public=input.is_public)

    @strawberry.mutation
    @payload(RateLaterPayload, codes=(*SIGNED_IN, *VIDEO))
    async def add_to_rate_later(self, info: strawberry.Info, input: VideoInput) -> RateLaterPayload:
        video = await comparisons.rate_later(info.context, input.youtube_id, True)
        return RateLaterPayload(video=Video.from_row(video))

    @strawberry.mutation
    @payload(RateLaterPayload, codes=(*SIGNED_IN, *VIDEO))
    async def remove_from_rate_later(
        self, info: strawberry.Info, input: VideoInput
    ) -> RateLaterPayload:
        video = await comparisons.rate_later(info.context, input.youtube_id, False)
        return RateLaterPayload(video=Video.from_row(video))

    @strawberry.mutation(description="Vouch for another contributor (trust propagates).")
    @payload(UserPayload, codes=(*SIGNED_IN, *USER, ErrorCode.SELF_VOUCH))
    async def vouch(self, info: strawberry.Info, input: UsernameInput) -> UserPayload:
        user = await accounts.set_vouch(info.context, input.username, True)
        return UserPayload(user=PublicUser.of(user))

    @strawberry.mutation(description="Withdraw your vouch for another contributor.")
    @payload(UserPayload, codes=(*SIGNED_IN, *USER, ErrorCode.SELF_VOUCH))
    async def unvouch(self, info: strawberry.Info, input: UsernameInput) -> UserPayload:
        user = await accounts.set_vouch(info.context, input.username, False)
        return UserPayload(user=PublicUser.of(user))

    @strawberry.mutation(description="Admin: set a contributor's pretrust (0..1).")
    @payload(UserPayload, codes=(*ADMIN, *USER, ErrorCode.OUT_OF_RANGE))
    async def set_pretrust(self, info: strawberry.Info, input: SetPretrustInput) -> UserPayload:
        user = await accounts.set_pretrust(info.context, input.username, input.pretrust)
        return UserPayload(user=PublicUser.of(user))

    @strawberry.mutation(description="Admin: run a full warm-started refit now and wait for it.")
    @payload(RefitPayload, codes=ADMIN)
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
