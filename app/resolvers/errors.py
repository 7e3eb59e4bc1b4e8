"""Shorthands for the expected failures resolvers raise (all :class:`InvalidInput`,
app/errors.py): queries show them as GraphQL errors with ``extensions.code``,
mutations as ``userErrors`` entries."""

from __future__ import annotations

from app.errors import ErrorCode, InvalidInput

SIGN_IN = "sign in first (Authorization: Bearer <token>)"


def unauthenticated(field: str = "") -> InvalidInput:
    return InvalidInput(field, SIGN_IN, ErrorCode.UNAUTHENTICATED)


def ApiError(  # the old class's name, kept for its raise sites
    message: str, code: ErrorCode | str = ErrorCode.BAD_REQUEST, field: str | None = None
) -> InvalidInput:
    """An :class:`InvalidInput` from the argument order of the old ``ApiError``."""
    return InvalidInput(field or "", message, code)


EXPECTED = (InvalidInput,)


def code_of(exc: BaseException) -> str:
    return exc.code.value if isinstance(exc, InvalidInput) else "INTERNAL_SERVER_ERROR"
