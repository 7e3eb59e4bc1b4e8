"""Accounts: password hashing, bearer tokens, admin rights.

Passwords are hashed with Argon2id (argon2-cffi) on a worker thread: a hash costs
tens of milliseconds of CPU and must not stall the event loop. Bearer tokens are
random 256-bit strings handed out once by ``login``; only their SHA-256 is stored
(``ApiToken.token_sha256``), so a database leak does not leak usable tokens.

A user is an admin when ``User.is_admin`` is set or their username is listed in
``SUNRANK_ADMIN_USERNAMES``.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from tortoise.exceptions import IntegrityError

from app.config import Settings
from app.db import validation
from app.db.models import ApiToken, User
from app.db.validation import InvalidInput

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_BYTES = 32
LAST_USED_RESOLUTION = timedelta(minutes=1)  # at most one write per token per minute
TOKEN_CACHE_SECONDS = 10.0  # in-process memo of token → user (logout clears it here)

_hasher = PasswordHasher()
# A valid hash of a random password: verifying against it when the username is
# unknown makes "no such user" and "wrong password" take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of a request (a plain snapshot, safe to share)."""

    id: int
    username: str
    is_admin: bool
    token_sha256: str | None = None


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def check_password(password: str, field: str = "password") -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(
            field, f"a password has at least {MIN_PASSWORD} characters", "WEAK_PASSWORD"
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(
            field, f"a password has at most {MAX_PASSWORD} characters", "PASSWORD_TOO_LONG"
        )
    return password


def is_admin(user: User, settings: Settings) -> bool:
    return bool(user.is_admin) or user.username in settings.admin_usernames


def viewer_of(user: User, settings: Settings, token_sha256: str | None = None) -> Viewer:
    return Viewer(user.id, user.username, is_admin(user, settings), token_sha256)


async def create_user(
    username: str, password: str, *, is_admin: bool = False, pretrust: float = 0.0
) -> User:
    """A new account. Raises :class:`InvalidInput` (taken, bad username or password).

    A non-zero ``pretrust`` goes through the write path (with its event) in the
    caller: see ``sunrank create-user``.
    """
    validation.username(username)
    check_password(password)
    if await User.exists(username=username):
        raise InvalidInput("username", f"the username {username!r} is taken", "USERNAME_TAKEN")
    password_hash = await hash_password(password)
    try:
        return await User.create(
            username=username, password_hash=password_hash, is_admin=is_admin, pretrust=0.0
        )
    except IntegrityError:  # lost a race with another registration
        raise InvalidInput(
            "username", f"the username {username!r} is taken", "USERNAME_TAKEN"
        ) from None


async def login(username: str, password: str) -> tuple[User, str]:
    """Check the credentials; return the user and a new bearer token."""
    user = await User.get_or_none(username=username) if isinstance(username, str) else None
    ok = await verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        raise InvalidInput("password", "unknown username or wrong password", "BAD_CREDENTIALS")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await ApiToken.create(user_id=user.id, token_sha256=sha256(token))
    return user, token


class TokenCache:
    """A short-lived memo of token hash → user, to spare one query per request.

    ``logout`` evicts its token here at once; another process serving the same
    database notices a revoked token within ``TOKEN_CACHE_SECONDS``.
    """

    def __init__(self, ttl: float = TOKEN_CACHE_SECONDS, size: int = 10_000):
        self.ttl, self.size = ttl, size
        self._items: dict[str, tuple[float, Viewer]] = {}

    def get(self, digest: str) -> Viewer | None:
        item = self._items.get(digest)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, digest: str, viewer: Viewer) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[digest] = (time.monotonic() + self.ttl, viewer)

    def evict(self, digest: str) -> None:
        self._items.pop(digest, None)

    def evict_user(self, user_id: int) -> None:
        for digest in [d for d, (_, v) in self._items.items() if v.id == user_id]:
            self._items.pop(digest, None)


class BadToken(Exception):
    """The request carries a bearer token that is unknown or revoked."""


async def authenticate(token: str, settings: Settings, cache: TokenCache | None = None) -> Viewer:
    digest = sha256(token)
    if cache is not None and (viewer := cache.get(digest)) is not None:
        return viewer
    row = await ApiToken.get_or_none(token_sha256=digest, revoked=False).select_related("user")
    if row is None:
        raise BadToken()
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        await ApiToken.filter(id=row.id).update(last_used_at=now)
    viewer = viewer_of(row.user, settings, digest)
    if cache is not None:
        cache.put(digest, viewer)
    return viewer


async def logout(viewer: Viewer, *, all_tokens: bool = False, cache: TokenCache | None = None):
    """Revoke the request's token (or every token of the user); returns how many."""
    query = ApiToken.filter(user_id=viewer.id, revoked=False)
    if not all_tokens:
        query = query.filter(token_sha256=viewer.token_sha256 or "")
    revoked = await query.update(revoked=True)
    if cache is not None:
        if all_tokens:
            cache.evict_user(viewer.id)
        elif viewer.token_sha256:
            cache.evict(viewer.token_sha256)
    return revoked
