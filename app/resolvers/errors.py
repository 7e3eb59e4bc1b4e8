"""Errors the API shows to clients as they are (never masked).

Queries raise :class:`ApiError` (or ``InvalidInput`` / ``PaginationError``), which
becomes a GraphQL error with ``extensions.code``; mutations turn the same
exceptions into ``userErrors`` entries instead.
"""

from __future__ import annotations

from app.db.validation import InvalidInput
from app.resolvers.pagination import PaginationError


class ApiError(Exception):
    def __init__(self, message: str, code: str = "BAD_REQUEST", field: str | None = None):
        super().__init__(message)
        self.message, self.code, self.field = message, code, field
        self.extensions = {"code": code} | ({"field": field} if field else {})


def unauthenticated(field: str = "") -> InvalidInput:
    return InvalidInput(field, "sign in first (Authorization: Bearer <token>)", "UNAUTHENTICATED")


def forbidden(field: str, message: str) -> InvalidInput:
    return InvalidInput(field, message, "FORBIDDEN")


EXPECTED = (ApiError, InvalidInput, PaginationError)


def code_of(exc: BaseException) -> str:
    if isinstance(exc, ApiError | InvalidInput):
        return exc.code
    if isinstance(exc, PaginationError):
        return "BAD_PAGINATION"
    return "INTERNAL_SERVER_ERROR"
