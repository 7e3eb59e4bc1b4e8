"""Abuse controls of the account flows, on the ``limits`` library like the request
limits of app/http/ratelimit.py (counters in Redis when ``SUNRANK_CACHE_URL`` is
Redis, so every server process shares them; in memory otherwise).

- Failed sign-ins are counted per (account, address) and per address, never per
  account alone: a stranger guessing a password locks out *their* address, not the
  owner, who signs in from elsewhere. A refused attempt is not even checked (no
  password hash computed), and waits until the window frees a slot (backoff).
- Registrations per address per hour.
- Mail per account per hour: counted in the outbox itself (app/accounts/mailer.py).

Each limit is a setting, and each refusal a ``userErrors`` entry naming it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from limits import RateLimitItem, RateLimitItemPerHour
from limits.aio.strategies import MovingWindowRateLimiter

from app.config import Settings
from app.db import usernames
from app.db.validation import InvalidInput
from app.http.asgi import client_ip
from app.http.ratelimit import close_storage, counter_storage

log = logging.getLogger("sunrank.accounts")


class AccountLimits:
    def __init__(self, settings: Settings):
        self.per_account_ip = RateLimitItemPerHour(settings.login_failures_per_account_ip)
        self.per_ip = RateLimitItemPerHour(settings.login_failures_per_ip)
        self.registrations = RateLimitItemPerHour(settings.registrations_per_ip_per_hour)
        self.storage = counter_storage(settings, "accountlimits")
        # a moving window: a burst cannot straddle two fixed windows for twice the limit
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def wait(self, item: RateLimitItem, *keys: str) -> float:
        """Seconds before ``keys`` may try again (0: now). Fails open if Redis is away."""
        try:
            if await self.strategy.test(item, *keys):
                return 0.0
            stats = await self.strategy.get_window_stats(item, *keys)
        except Exception as exc:
            log.warning("account limits unavailable (%s): not limiting", exc)
            return 0.0
        return max(1.0, math.ceil(stats.reset_time - time.time()))

    async def hit(self, item: RateLimitItem, *keys: str) -> None:
        try:
            await self.strategy.hit(item, *keys)
        except Exception as exc:
            log.warning("account limits unavailable (%s): not counting", exc)

    async def close(self) -> None:
        await close_storage(self.storage)


def of(ctx: Any) -> AccountLimits:
    state = ctx.request.scope["app"].state
    limits = getattr(state, "account_limits", None)
    if limits is None:
        limits = state.account_limits = AccountLimits(ctx.settings)
    return limits


def _ip(ctx: Any) -> str:
    return client_ip(ctx.request.scope)


def _account(username: object) -> str:
    name = usernames.normalize(username) if isinstance(username, str) else ""
    return usernames.key(name)[:200] if usernames.problem(name) is None else "invalid"


async def check_login(ctx: Any, username: object) -> None:
    limits, ip = of(ctx), _ip(ctx)
    waits = (
        (await limits.wait(limits.per_account_ip, "login", _account(username), ip),
         "SUNRANK_LOGIN_FAILURES_PER_ACCOUNT_IP"),
        (await limits.wait(limits.per_ip, "login", ip), "SUNRANK_LOGIN_FAILURES_PER_IP"),
    )  # fmt: skip
    for seconds, setting in waits:
        if seconds:
            raise InvalidInput(
                "",
                f"too many failed sign-ins from this address ({setting} per hour): try again "
                f"in {seconds:.0f} s, or reset your password",
                "TOO_MANY_ATTEMPTS",
            )


async def failed_login(ctx: Any, username: object) -> None:
    limits, ip = of(ctx), _ip(ctx)
    await limits.hit(limits.per_account_ip, "login", _account(username), ip)
    await limits.hit(limits.per_ip, "login", ip)


async def count_registration(ctx: Any) -> None:
    """Count a sign-up attempt from the request's address; refuse past the limit."""
    limits, ip = of(ctx), _ip(ctx)
    seconds = await limits.wait(limits.registrations, "register", ip)
    if seconds:
        raise InvalidInput(
            "",
            "too many new accounts from this address (SUNRANK_REGISTRATIONS_PER_IP_PER_HOUR): "
            f"try again in {seconds:.0f} s",
            "TOO_MANY_REGISTRATIONS",
        )
    await limits.hit(limits.registrations, "register", ip)
