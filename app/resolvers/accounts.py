"""Accounts and trust: register / login / logout, profiles, vouches, pretrust,
refit. Every learner-relevant change goes through ``app.db.writes`` (event in the
same transaction), then ``learner.apply`` once it has committed."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from app import auth
from app.accounts import abuse, domains
from app.db import usernames, validation, writes
from app.db.models import Event, User, Vouch
from app.db.validation import InvalidInput


async def apply(ctx: Any, event: Event | None) -> None:
    """Hand a committed event to the learner (shielded: a client that hangs up
    does not cancel it; the housekeeping loop would catch up anyway)."""
    if event is not None:
        await asyncio.shield(ctx.learner.apply(event))


async def register(ctx: Any, username: str, password: str) -> User:
    return await auth.create_user(username, password)


async def login(ctx: Any, username: str, password: str) -> tuple[User, str]:
    await abuse.check_login(ctx, username)  # refused attempts are not even checked
    try:
        user, token = await auth.login(username, password, client_of(ctx))
    except InvalidInput:
        await abuse.failed_login(ctx, username)
        raise
    signed_in(ctx, user, token)
    return user, token


def signed_in(ctx: Any, user: User, token: str) -> None:
    """A token just issued (login, register): this process's token cache knows it, so
    its first requests neither read nor write its row."""
    if ctx.token_cache is not None:
        ctx.token_cache.signed_in(user, token, ctx.settings)


def client_of(ctx: Any) -> str | None:
    """The User-Agent of the request, to label the session it opens."""
    return ctx.request.headers.get("user-agent") if ctx.request is not None else None


async def logout(ctx: Any, all_tokens: bool) -> int:
    viewer = ctx.require_viewer()
    return await auth.logout(viewer, all_tokens=all_tokens, cache=ctx.token_cache)


async def user_by_name(username: str, field: str = "username") -> User:
    user = await auth.find_user(username)
    if user is None:
        raise InvalidInput(field, f"no user named {username!r}", "UNKNOWN_USER")
    return user


async def users_by_name(names: list[str]) -> dict[str, User]:
    """Users by name as given (each looked up NFKC-normalised and trimmed)."""
    stored = {name: usernames.normalize(name) for name in names}
    # names no account can hold (a NUL decoded from a node id, say) are not looked up
    stored = {name: s for name, s in stored.items() if usernames.problem(s) is None}
    found = {u.username: u for u in await User.filter(username__in=set(stored.values()))}
    return {name: found[s] for name, s in stored.items() if s in found}


async def set_vouch(ctx: Any, username: str, active: bool) -> User:
    viewer = ctx.require_viewer()
    vouchee = await user_by_name(username)
    if vouchee.id == viewer.id:
        raise InvalidInput("username", "you cannot vouch for yourself", "SELF_VOUCH")
    await apply(ctx, await writes.set_vouch(viewer.id, vouchee.id, active))
    return vouchee


async def set_pretrust(ctx: Any, username: str, pretrust: float) -> User:
    ctx.require_admin()
    user = await user_by_name(username)
    value = validation.unit_interval(pretrust, "pretrust")
    # combined with a trusted email domain's grant: the larger counts
    await apply(ctx, await domains.set_admin_pretrust(ctx.settings, user.id, value))
    await user.refresh_from_db()
    return user


async def refit(ctx: Any) -> Any:
    ctx.require_admin()
    return await ctx.learner.refit()


async def vouches(user_id: int) -> tuple[list[str], list[str]]:
    given = await Vouch.filter(voucher_id=user_id).values_list("vouchee__username", flat=True)
    received = await Vouch.filter(vouchee_id=user_id).values_list("voucher__username", flat=True)
    # tortoise types values_list(flat=True) as tuples: they are lists of names
    return sorted(cast(list[str], given)), sorted(cast(list[str], received))
