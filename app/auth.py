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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cachetools import TTLCache
from tortoise.exceptions import IntegrityError

from app.config import Settings
from app.db import usernames, validation
from app.db.models import AccountDeactivation, ApiToken, User
from app.db.validation import InvalidInput

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_BYTES = 32
MAX_CLIENT = 200  # characters of a session's User-Agent kept
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
    username = validation.username(username)
    check_password(password)
    key = usernames.key(username)
    if (holder := await User.filter(username_key=key).first()) is not None:
        raise taken(username, holder.username)
    password_hash = await hash_password(password)
    try:
        return await User.create(
            username=username, password_hash=password_hash, is_admin=is_admin, pretrust=0.0
        )
    except IntegrityError:  # lost a race with another registration
        holder = await User.filter(username_key=key).first()
        raise taken(username, holder.username if holder else username) from None


def taken(wanted: str, holder: str) -> InvalidInput:
    if wanted == holder:
        return InvalidInput("username", f"the username {wanted!r} is taken", "USERNAME_TAKEN")
    # Says which existing name it is confused with: both are public anyway.
    return InvalidInput(
        "username",
        f"the username {wanted!r} is too similar to the existing {holder!r} "
        "(same letters up to case, width or look-alike characters)",
        "USERNAME_TAKEN",
    )


async def find_user(username: object) -> User | None:
    """The user a typed name designates: the exact stored name (after NFKC and
    trimming), else the one name it cannot be told apart from (case, look-alikes)."""
    if not isinstance(username, str):
        return None
    name = usernames.normalize(username)
    if usernames.problem(name) is not None:
        return None
    user = await User.get_or_none(username=name)
    return user or await User.get_or_none(username_key=usernames.key(name))


async def login(username: str, password: str, client: str | None = None) -> tuple[User, str]:
    """Check the credentials; return the user and a new bearer token (a session,
    labelled with the ``client`` that asked: its User-Agent)."""
    user = await find_user(username)
    ok = await verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        raise InvalidInput("password", "unknown username or wrong password", "BAD_CREDENTIALS")
    if await AccountDeactivation.exists(user_id=user.id):
        raise InvalidInput("", "this account was deactivated by an administrator", "DEACTIVATED")
    return user, await issue_token(user.id, client)


async def issue_token(user_id: int, client: str | None = None) -> str:
    """A new bearer token (a session) for the user; only its hash is stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    label = client[:MAX_CLIENT] if client else None
    await ApiToken.create(
        user_id=user_id, token_sha256=sha256(token), client=label, last_used_at=datetime.now(UTC)
    )
    return token


class TokenCache:
    """A short-lived memo of token hash → user, to spare one query per request.

    Bounded (``size`` entries, least recently used evicted first, so a flood of
    tokens cannot flush everyone else's) and each entry lives ``ttl`` seconds:
    ``logout`` and revocations evict here at once; another process serving the same
    database notices a revoked or expired token within ``TOKEN_CACHE_SECONDS``.
    """

    def __init__(self, ttl: float = TOKEN_CACHE_SECONDS, size: int = 10_000):
        self._items: TTLCache[str, Viewer] = TTLCache(maxsize=size, ttl=ttl)

    def get(self, digest: str) -> Viewer | None:
        return self._items.get(digest)

    def put(self, digest: str, viewer: Viewer) -> None:
        self._items[digest] = viewer

    def signed_in(self, user: User, token: str, settings: Settings) -> None:
        """A token just issued: its first requests need not look it up."""
        digest = sha256(token)
        self.put(digest, viewer_of(user, settings, digest))

    def evict(self, digest: str) -> None:
        self._items.pop(digest, None)

    def evict_user(self, user_id: int) -> None:
        for digest in [d for d, v in self._items.items() if v.id == user_id]:
            self._items.pop(digest, None)


class BadToken(Exception):
    """The request carries a bearer token that is unknown or revoked."""


async def authenticate(token: str, settings: Settings, cache: TokenCache | None = None) -> Viewer:
    digest = sha256(token)
    if cache is not None and (viewer := cache.get(digest)) is not None:
        return viewer
    now = datetime.now(UTC)
    row = await ApiToken.get_or_none(
        token_sha256=digest, revoked=False, created_at__gt=now - settings.session_lifetime
    ).select_related("user")
    if row is None:
        raise BadToken()
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
