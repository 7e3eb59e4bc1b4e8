"""Account mutations (app/accounts): sign-up with an email, verification, change
of email, password change and reset by mail. Merged into the root ``Mutation`` by
``app.schema.build_schema``."""

from __future__ import annotations

from enum import Enum

import strawberry

from app.accounts import (
    abuse,
    deactivation,
    deletion,
    domains,
    preferences,
    service,
    sessions,
)
from app.db.validation import InvalidInput
from app.resolvers.accounts import apply, client_of, signed_in, user_by_name
from app.schema.errors import ErrorCode
from app.schema.mutation import ADMIN, SIGNED_IN, USER, payload
from app.schema.preferences import SettingsType, UpdateSettingsInput
from app.schema.types import Me


@strawberry.input
class RegisterInput:
    username: str
    password: str
    email: str | None = strawberry.field(
        default=None,
        description="Where the verification link goes; needed to reset a forgotten password "
        "and to gain trust from a trusted email domain.",
    )
    language: str | None = strawberry.field(
        default=None, description="Language of the account's mail: `en` (default) or `fr`."
    )


@strawberry.input
class TokenInput:
    token: str = strawberry.field(description="The `token` parameter of the mailed link.")


@strawberry.input
class ChangeEmailInput:
    email: str
    password: str = strawberry.field(description="The current password.")
    language: str | None = strawberry.field(
        default=None, description="Also switch the account's mail language (`en` or `fr`)."
    )


@strawberry.input
class ChangePasswordInput:
    old_password: str
    new_password: str


@strawberry.input
class RequestPasswordResetInput:
    email: str


@strawberry.input
class ResetPasswordInput:
    token: str = strawberry.field(description="The `token` parameter of the mailed link.")
    new_password: str


@strawberry.type
class RegisterPayload:
    token: str | None = strawberry.field(
        default=None,
        description="A bearer token: signing up signs in. Send it as "
        "`Authorization: Bearer <token>`. Shown once.",
    )
    user: Me | None = None


@strawberry.type(description="What the email request did.")
class EmailPayload:
    email: str | None = strawberry.field(default=None, description="The address concerned.")


@strawberry.type
class VerifyEmailPayload:
    email: str | None = strawberry.field(default=None, description="The address now verified.")
    username: str | None = None


@strawberry.type
class ChangePasswordPayload:
    revoked_tokens: int = strawberry.field(
        default=0, description="Other sessions signed out (this one stays)."
    )


@strawberry.type(description="Whether the request was accepted.")
class DonePayload:
    ok: bool = strawberry.field(default=False, description="True when it was.")


def _me(user: object) -> Me:
    return Me(pk=user.id, username=user.username, is_admin=False, pretrust=user.pretrust)  # type: ignore[attr-defined]


@strawberry.type
class AccountMutations:  # the domain mutations follow in AccountDomainMutations
    @strawberry.mutation(
        description="Create an account and sign in (the payload carries a token). With an "
        "email, a verification link is mailed. Trust starts at 0."
    )
    @payload(
        RegisterPayload,
        codes=(
            ErrorCode.BAD_USERNAME,
            ErrorCode.USERNAME_TAKEN,
            ErrorCode.WEAK_PASSWORD,
            ErrorCode.PASSWORD_TOO_LONG,
            ErrorCode.BAD_EMAIL,
            ErrorCode.DISPOSABLE_EMAIL,
            ErrorCode.EMAIL_TAKEN,
            ErrorCode.BAD_LANGUAGE,
            ErrorCode.TOO_MANY_MAILS,
            ErrorCode.TOO_MANY_REGISTRATIONS,
        ),
    )
    async def register(self, info: strawberry.Info, input: RegisterInput) -> RegisterPayload:
        ctx = info.context
        await abuse.count_registration(ctx)
        user, token = await service.register(
            ctx.settings, input.username, input.password, input.email, input.language,
            client_of(ctx),
        )  # fmt: skip
        signed_in(ctx, user, token)
        return RegisterPayload(token=token, user=_me(user))

    @strawberry.mutation(description="Confirm an address with the token of its mailed link.")
    @payload(
        VerifyEmailPayload,
        codes=(
            ErrorCode.BAD_TOKEN,
            ErrorCode.EXPIRED_TOKEN,
            ErrorCode.USED_TOKEN,
            ErrorCode.EMAIL_TAKEN,
        ),
    )
    async def verify_email(self, info: strawberry.Info, input: TokenInput) -> VerifyEmailPayload:
        row, event = await service.verify_email(info.context.settings, input.token)
        await apply(info.context, event)
        user = await row.user
        return VerifyEmailPayload(email=row.email, username=user.username)

    @strawberry.mutation(description="Mail the verification link of my address again.")
    @payload(
        EmailPayload,
        codes=(
            *SIGNED_IN,
            ErrorCode.NO_EMAIL,
            ErrorCode.ALREADY_VERIFIED,
            ErrorCode.TOO_MANY_MAILS,
        ),
    )
    async def resend_verification_email(self, info: strawberry.Info) -> EmailPayload:
        ctx = info.context
        email = await service.resend_verification(ctx.settings, ctx.require_viewer())
        return EmailPayload(email=email)

    @strawberry.mutation(
        description="Change my address: a verification link goes to the new one, which "
        "replaces the current one once verified."
    )
    @payload(
        EmailPayload,
        codes=(
            *SIGNED_IN,
            ErrorCode.BAD_CREDENTIALS,
            ErrorCode.BAD_EMAIL,
            ErrorCode.DISPOSABLE_EMAIL,
            ErrorCode.EMAIL_TAKEN,
            ErrorCode.SAME_EMAIL,
            ErrorCode.BAD_LANGUAGE,
            ErrorCode.TOO_MANY_MAILS,
        ),
    )
    async def change_email(self, info: strawberry.Info, input: ChangeEmailInput) -> EmailPayload:
        ctx = info.context
        email = await service.change_email(
            ctx.settings, ctx.require_viewer(), input.email, input.password, input.language
        )
        return EmailPayload(email=email)

    @strawberry.mutation(
        description="Change my password (the old one required); my other sessions are signed out."
    )
    @payload(
        ChangePasswordPayload,
        codes=(
            *SIGNED_IN,
            ErrorCode.BAD_CREDENTIALS,
            ErrorCode.WEAK_PASSWORD,
            ErrorCode.PASSWORD_TOO_LONG,
        ),
    )
    async def change_password(
        self, info: strawberry.Info, input: ChangePasswordInput
    ) -> ChangePasswordPayload:
        ctx = info.context
        revoked = await service.change_password(
            ctx.settings, ctx.require_viewer(), input.old_password, input.new_password,
            ctx.token_cache,
        )  # fmt: skip
        return ChangePasswordPayload(revoked_tokens=revoked)

    @strawberry.mutation(
        description="Mail a password-reset link to the account holding this address. "
        "Answers the same whether an account holds it or not."
    )
    @payload(
        DonePayload,
        codes=(ErrorCode.BAD_EMAIL, ErrorCode.DISPOSABLE_EMAIL, ErrorCode.TOO_MANY_MAILS),
    )
    async def request_password_reset(
        self, info: strawberry.Info, input: RequestPasswordResetInput
    ) -> DonePayload:
        await service.request_password_reset(info.context.settings, input.email)
        return DonePayload(ok=True)

    @strawberry.mutation(
        description="Set a new password with the token of a reset link; every session "
        "is signed out (then `login`)."
    )
    @payload(
        DonePayload,
        codes=(
            ErrorCode.BAD_TOKEN,
            ErrorCode.EXPIRED_TOKEN,
            ErrorCode.USED_TOKEN,
            ErrorCode.WEAK_PASSWORD,
            ErrorCode.PASSWORD_TOO_LONG,
        ),
    )
    async def reset_password(self, info: strawberry.Info, input: ResetPasswordInput) -> DonePayload:
        ctx = info.context
        _, event = await service.reset_password(
            ctx.settings, input.token, input.new_password, ctx.token_cache
        )
        await apply(ctx, event)
        return DonePayload(ok=True)


@strawberry.enum(description="Review state of an email domain.")
class DomainStatus(Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PENDING = "pending"


@strawberry.type(name="EmailDomain", description="A mail domain and its review state.")
class EmailDomainType:
    domain: str
    status: DomainStatus
    verified_accounts: int = strawberry.field(
        description="Accounts with a verified address on this domain."
    )


@strawberry.input
class EmailDomainInput:
    domain: str = strawberry.field(description="`example.org` (no `@`, no subdomain wildcard).")
    status: DomainStatus = strawberry.field(
        description="ACCEPTED: a verified address on it earns pretrust "
        "(SUNRANK_EMAIL_DOMAIN_PRETRUST, 0.8); REJECTED or PENDING: nothing."
    )


@strawberry.type(description="The domain as stored.")
class EmailDomainPayload:
    domain: EmailDomainType | None = strawberry.field(
        default=None, description="The domain; null when refused."
    )
    changed_accounts: int = strawberry.field(
        default=0, description="Accounts whose pretrust changed (each through an event)."
    )


async def _domain_type(name: str) -> EmailDomainType:
    for row, n in await domains.listing():
        if row.domain == name:
            return EmailDomainType(
                domain=row.domain, status=DomainStatus(row.status), verified_accounts=n
            )
    raise LookupError(name)


@strawberry.type
class AccountDomainMutations:
    @strawberry.mutation(
        description="Admin: accept, reject or reset a mail domain; the pretrust of every "
        "account with a verified address on it follows at once."
    )
    @payload(EmailDomainPayload, codes=(*ADMIN, ErrorCode.BAD_DOMAIN, ErrorCode.BAD_STATUS))
    async def set_email_domain_status(
        self, info: strawberry.Info, input: EmailDomainInput
    ) -> EmailDomainPayload:
        ctx = info.context
        ctx.require_admin()
        name = domains.normalize(input.domain)
        events = await domains.set_status(ctx.settings, name, input.status.value)
        if events:
            await apply(ctx, events[-1])  # the learner applies the log up to it
        return EmailDomainPayload(domain=await _domain_type(name), changed_accounts=len(events))


@strawberry.type
class AccountQueries:
    @strawberry.field(description="Admin: mail domains (those of verified addresses appear "
                      "as PENDING), with how many verified accounts use each.")  # fmt: skip
    async def email_domains(
        self, info: strawberry.Info, status: DomainStatus | None = None
    ) -> list[EmailDomainType]:
        info.context.require_admin()
        rows = await domains.listing(status.value if status else None)
        return [
            EmailDomainType(domain=r.domain, status=DomainStatus(r.status), verified_accounts=n)
            for r, n in rows
        ]


@strawberry.input
class RevokeSessionInput:
    id: strawberry.ID


@strawberry.type
class RevokeSessionPayload:
    revoked: bool = False


@strawberry.type
class SessionMutations:
    @strawberry.mutation(description="Sign out one of my sessions (see `me.sessions`).")
    @payload(RevokeSessionPayload, codes=(*SIGNED_IN, ErrorCode.UNKNOWN_SESSION))
    async def revoke_session(
        self, info: strawberry.Info, input: RevokeSessionInput
    ) -> RevokeSessionPayload:
        ctx = info.context
        await sessions.revoke(ctx.require_viewer(), input.id, ctx.token_cache)
        return RevokeSessionPayload(revoked=True)


@strawberry.input
class DeleteAccountInput:
    password: str = strawberry.field(description="The current password.")


@strawberry.type
class DeleteAccountPayload:
    deleted: bool = False


@strawberry.type
class DeletionMutations:
    @strawberry.mutation(
        description="Delete my account and everything of it: comparisons, ratings, vouches, "
        "sessions, address. Its influence leaves the scores at once. The username stays "
        "reserved for SUNRANK_USERNAME_REUSE_DAYS."
    )
    @payload(DeleteAccountPayload, codes=(*SIGNED_IN, ErrorCode.BAD_CREDENTIALS))
    async def delete_account(
        self, info: strawberry.Info, input: DeleteAccountInput
    ) -> DeleteAccountPayload:
        ctx = info.context
        viewer = ctx.require_viewer()
        event = await deletion.delete_account(viewer, input.password)
        if ctx.token_cache is not None:
            ctx.token_cache.evict_user(viewer.id)
        await apply(ctx, event)
        return DeleteAccountPayload(deleted=True)


@strawberry.type
class UpdateSettingsPayload:
    settings: SettingsType | None = None


@strawberry.type
class SettingsMutations:
    @strawberry.mutation(description="Change some of my settings (the fields given).")
    @payload(UpdateSettingsPayload, codes=(*SIGNED_IN, ErrorCode.INVALID_SETTINGS))
    async def update_settings(
        self, info: strawberry.Info, input: UpdateSettingsInput
    ) -> UpdateSettingsPayload:
        viewer = info.context.require_viewer()
        prefs = await preferences.update(viewer.id, input.changes())
        return UpdateSettingsPayload(settings=SettingsType.of(prefs))


@strawberry.input
class SetAccountActiveInput:
    username: str
    active: bool
    reason: str | None = strawberry.field(default=None, description="Kept with the record.")


@strawberry.type
class SetAccountActivePayload:
    active: bool | None = None


@strawberry.type
class DeactivationMutations:
    @strawberry.mutation(
        description="Admin: deactivate an account (it cannot sign in, its sessions end, its "
        "influence leaves the scores at once; its data stays) or reactivate it."
    )
    @payload(
        SetAccountActivePayload,
        codes=(*ADMIN, *USER, ErrorCode.SELF_DEACTIVATION, ErrorCode.TOO_LONG),
    )
    async def set_account_active(
        self, info: strawberry.Info, input: SetAccountActiveInput
    ) -> SetAccountActivePayload:
        ctx = info.context
        admin = ctx.require_admin()
        user = await user_by_name(input.username)
        if user.id == admin.id and not input.active:
            raise InvalidInput("username", "you cannot deactivate yourself", "SELF_DEACTIVATION")
        event = await deactivation.set_active(user, input.active, admin.id, input.reason)
        if input.active:  # pretrust granted meanwhile (admin, email domain) counts now
            event = await domains.refresh(ctx.settings, user.id) or event
        if ctx.token_cache is not None and not input.active:
            ctx.token_cache.evict_user(user.id)
        await apply(ctx, event)
        return SetAccountActivePayload(active=input.active)
