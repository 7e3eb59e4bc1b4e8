"""Account flows: sign-up with an email, verification, change of email, password
change and reset by mail. Every failure is an :class:`InvalidInput` raised before
anything is written (a weak new password does not spend a reset link).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from tortoise.exceptions import IntegrityError

from app import auth
from app.accounts import deletion, domains, emails, mailer, templates, tokens
from app.config import Settings
from app.db.models import ApiToken, EmailToken, Event, User, UserEmail
from app.db.validation import InvalidInput

log = logging.getLogger("sunrank.accounts")
VERIFY_PATH = "/account/verify-email"
RESET_PATH = "/account/reset-password"


def link(settings: Settings, path: str, token: str | None = None) -> str:
    query = f"?{urlencode({'token': token})}" if token else ""
    return f"{settings.public_url.rstrip('/')}{path}{query}"


def check_language(value: object, field: str = "language") -> str:
    if value is None:
        return "en"
    if not isinstance(value, str) or value.lower() not in templates.LANGUAGES:
        raise InvalidInput(
            field, f"supported languages: {', '.join(templates.LANGUAGES)}", "BAD_LANGUAGE"
        )
    return value.lower()


def email_taken(field: str = "email") -> InvalidInput:
    return InvalidInput(field, "this email address belongs to another account", "EMAIL_TAKEN")


async def ensure_free(address: str, user_id: int | None, field: str = "email") -> None:
    holder = await UserEmail.get_or_none(email=address)
    if holder is not None and holder.user_id != user_id:  # type: ignore[attr-defined]
        raise email_taken(field)


async def register(
    settings: Settings,
    username: str,
    password: str,
    email: str | None,
    language: str | None,
    client: str | None = None,
) -> tuple[User, str]:
    """A new account, signed in (its bearer token); with an email, a verification
    mail is queued."""
    lang = check_language(language)
    address = emails.normalize(email) if email is not None else None
    if address is not None:
        await ensure_free(address, None)
    await deletion.check_reusable(username, settings.username_reuse_days)
    user = await auth.create_user(username, password)
    if address is not None:
        try:
            await UserEmail.create(user_id=user.id, email=address, language=lang)
        except IntegrityError:  # lost a race for the address: no half-made account
            await user.delete()
            raise email_taken() from None
        await send_verification(settings, user, address, lang)
    token = await auth.issue_token(user.id, client)
    return user, token


async def send_verification(settings: Settings, user: User, address: str, lang: str) -> None:
    await mailer.check_quota(settings, user.id)  # before a token the mail could not carry
    await tokens.void(user.id, tokens.VERIFY)
    hours = settings.email_verify_hours
    token = await tokens.issue(user.id, tokens.VERIFY, timedelta(hours=hours), email=address)
    mail = templates.render(
        "verify", lang, username=user.username, email=address,
        link=link(settings, VERIFY_PATH, token), hours=f"{hours:g}",
    )  # fmt: skip
    await mailer.queue(settings, address, mail.subject, mail.body, user.id)


async def verify_email(settings: Settings, token: str) -> tuple[UserEmail, Event | None]:
    """Confirm the address a verification link was sent to (a first address or a
    change of address); the pretrust its domain earns (or no longer earns) follows,
    as an event for the caller to hand to the learner."""
    row = await tokens.spend(token, tokens.VERIFY)
    address = row.email or ""
    now = datetime.now(UTC)
    current = await UserEmail.get_or_none(user_id=row.user_id)  # type: ignore[attr-defined]
    try:
        if current is None:
            current = await UserEmail.create(
                user_id=row.user_id,  # type: ignore[attr-defined]
                email=address,
                verified_at=now,
            )
        else:
            current.email, current.verified_at = address, now
            await current.save(update_fields=["email", "verified_at", "updated_at"])
    except IntegrityError:  # verified by another account since the mail was sent
        raise email_taken("token") from None
    await domains.note_domain(address)
    return current, await domains.refresh(settings, current.user_id)  # type: ignore[attr-defined]


async def resend_verification(settings: Settings, viewer: auth.Viewer) -> str:
    current = await UserEmail.get_or_none(user_id=viewer.id)
    if current is None:
        raise InvalidInput("", "this account has no email address: add one first", "NO_EMAIL")
    if current.verified_at is not None:
        raise InvalidInput("", "this email address is verified already", "ALREADY_VERIFIED")
    user = await User.get(id=viewer.id)
    await send_verification(settings, user, current.email, current.language)
    return current.email


async def change_email(
    settings: Settings, viewer: auth.Viewer, email: str, password: str, language: str | None
) -> str:
    """Send a verification link to a new address; the current one stays until the new
    one is verified. Returns the pending address."""
    address = emails.normalize(email)
    user = await User.get(id=viewer.id)
    if not await auth.verify_password(user.password_hash, password):
        raise InvalidInput("password", "wrong password", "BAD_CREDENTIALS")
    current = await UserEmail.get_or_none(user_id=viewer.id)
    if current is not None and current.email == address and current.verified_at is not None:
        raise InvalidInput("email", "this is your verified address already", "SAME_EMAIL")
    await ensure_free(address, viewer.id)
    lang = check_language(language) if language is not None else None
    if current is not None and lang is not None and lang != current.language:
        current.language = lang
        await current.save(update_fields=["language", "updated_at"])
    lang = lang or (current.language if current else "en")
    await send_verification(settings, user, address, lang)
    return address


async def change_password(
    settings: Settings,
    viewer: auth.Viewer,
    old_password: str,
    new_password: str,
    cache: auth.TokenCache | None,
) -> int:
    """Set a new password (the old one required); every other session is signed
    out. Returns how many tokens were revoked."""
    user = await User.get(id=viewer.id)
    if not await auth.verify_password(user.password_hash, old_password):
        raise InvalidInput("oldPassword", "wrong password", "BAD_CREDENTIALS")
    auth.check_password(new_password, "newPassword")
    await User.filter(id=user.id).update(password_hash=await auth.hash_password(new_password))
    revoked = await revoke_sessions(user.id, cache, keep=viewer.token_sha256)
    await notify(settings, user, "password_changed", link=link(settings, RESET_PATH))
    return revoked


async def request_password_reset(settings: Settings, email: str) -> None:
    """Mail a reset link to the account holding ``email``. Answers the same whether
    or not an account holds it (no way to learn who has an account), so nothing it
    refuses silently (unknown address, mail quota) is reported to the caller."""
    address = emails.normalize(email)
    holder = await UserEmail.get_or_none(email=address).select_related("user")
    if holder is None:
        log.info("password reset asked for an address no account holds")
        return
    user = holder.user
    try:
        await mailer.check_quota(settings, user.id)
    except InvalidInput:
        log.warning("password reset for user %s not sent: mail quota reached", user.id)
        return
    await tokens.void(user.id, tokens.RESET)
    minutes = settings.password_reset_minutes
    token = await tokens.issue(user.id, tokens.RESET, timedelta(minutes=minutes), email=address)
    mail = templates.render(
        "reset", holder.language, username=user.username,
        link=link(settings, RESET_PATH, token), minutes=f"{minutes:g}",
    )  # fmt: skip
    await mailer.queue(settings, address, mail.subject, mail.body, user.id)


async def reset_password(
    settings: Settings, token: str, new_password: str, cache: auth.TokenCache | None
) -> tuple[User, Event | None]:
    """Set a new password from a reset link; every session is signed out. The link
    also proves the address it was sent to."""
    auth.check_password(new_password, "newPassword")
    row = await tokens.spend(token, tokens.RESET)
    user_id: int = row.user_id  # type: ignore[attr-defined]
    await User.filter(id=user_id).update(password_hash=await auth.hash_password(new_password))
    await revoke_sessions(user_id, cache)
    proved = await UserEmail.filter(user_id=user_id, email=row.email, verified_at=None).update(
        verified_at=datetime.now(UTC)
    )
    event = await domains.refresh(settings, user_id) if proved else None
    return await User.get(id=user_id), event


async def revoke_sessions(
    user_id: int, cache: auth.TokenCache | None, keep: str | None = None
) -> int:
    query = ApiToken.filter(user_id=user_id, revoked=False)
    if keep:
        query = query.exclude(token_sha256=keep)
    revoked = await query.update(revoked=True)
    if cache is not None:
        cache.evict_user(user_id)
    return revoked


async def notify(settings: Settings, user: User, kind: str, **values: object) -> None:
    """A notice to the account's address, if it has one (best effort: a full quota
    skips it, the change it reports stands)."""
    current = await UserEmail.get_or_none(user_id=user.id)
    if current is None:
        return
    mail = templates.render(kind, current.language, username=user.username, **values)
    try:
        await mailer.queue(settings, current.email, mail.subject, mail.body, user.id)
    except InvalidInput:
        log.warning("notice %s for user %s not sent: mail quota reached", kind, user.id)


async def email_of(user_id: int) -> UserEmail | None:
    return await UserEmail.get_or_none(user_id=user_id)


async def pending_email(user_id: int) -> str | None:
    """The address a verification link is out for, if it is not the current one."""
    row = (
        await EmailToken.filter(
            user_id=user_id, purpose=tokens.VERIFY, used_at=None,
            expires_at__gt=datetime.now(UTC),
        ).order_by("-id").first()
    )  # fmt: skip
    if row is None:
        return None
    current = await UserEmail.get_or_none(user_id=user_id)
    return None if current is not None and current.email == row.email else row.email
