"""The API's one error model: every code a client can see, and the one exception
type that carries an expected failure.

- :class:`ErrorCode` lists every machine-readable code, wherever it appears:
  ``errors[].extensions.code`` of a query, subscription or HTTP error answer (the
  GraphQL enum ``ErrorCode``), the ``error`` messages of graphql-transport-ws, and
  ``userErrors[].code`` of a mutation payload. There, as Shopify does, each mutation
  has its own enum, ``<Mutation>ErrorCode``: the subset of these codes it can return,
  with the same names (app/schema/errors.py), so a client sees what it must handle
  and the same failure (``UNKNOWN_VIDEO``, ``UNAUTHENTICATED``…) still reads the
  same everywhere. Each mutation declares its codes next to it
  (``@payload(..., codes=...)``); tests/test_mutation_error_codes.py checks them
  against what its code can raise.
- :class:`InvalidInput` is the expected failure: bad input, not signed in, not
  allowed, a cursor too old. Queries let it become a GraphQL error with
  ``extensions.code`` (and ``field``); mutations turn it into a ``userErrors`` entry
  (app/schema/mutation.py); the importer and the CLI print it. Anything else that
  escapes a resolver is a bug: masked as ``INTERNAL_SERVER_ERROR`` with a request id
  (app/schema/errors.py).

This module imports nothing of the app, so the database layer and the CLI can raise
these without loading GraphQL.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a request failed, as a client can branch on it."""

    # -- the request as a whole (HTTP status, GraphQL document, limits) --
    BAD_REQUEST = "BAD_REQUEST"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    FORBIDDEN_ORIGIN = "FORBIDDEN_ORIGIN"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    TOO_MANY_OPERATIONS = "TOO_MANY_OPERATIONS"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
    TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
    QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
    TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
    TOO_MANY_DIRECTIVES = "TOO_MANY_DIRECTIVES"
    BAD_NUMBER = "BAD_NUMBER"
    BAD_STRING = "BAD_STRING"
    # Apollo's automatic persisted queries (app/http/persisted.py)
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    PERSISTED_QUERY_NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    # -- who is asking --
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_CREDENTIALS = "BAD_CREDENTIALS"
    DEACTIVATED = "DEACTIVATED"
    BAD_TOKEN = "BAD_TOKEN"
    EXPIRED_TOKEN = "EXPIRED_TOKEN"
    USED_TOKEN = "USED_TOKEN"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    TOO_MANY_REGISTRATIONS = "TOO_MANY_REGISTRATIONS"
    TOO_MANY_MAILS = "TOO_MANY_MAILS"
    # -- input values --
    INVALID = "INVALID"
    MISSING = "MISSING"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    EMPTY_RANGE = "EMPTY_RANGE"
    BAD_ID = "BAD_ID"
    TOO_MANY_IDS = "TOO_MANY_IDS"
    BAD_FIRST = "BAD_FIRST"
    BAD_COUNT = "BAD_COUNT"
    BAD_PAGINATION = "BAD_PAGINATION"
    STALE_CURSOR = "STALE_CURSOR"
    BAD_VIDEO_ID = "BAD_VIDEO_ID"
    BAD_USERNAME = "BAD_USERNAME"
    BAD_LANGUAGE = "BAD_LANGUAGE"
    BAD_SCORE = "BAD_SCORE"
    BAD_SCORE_MAX = "BAD_SCORE_MAX"
    SCORE_OUT_OF_RANGE = "SCORE_OUT_OF_RANGE"
    UNKNOWN_CRITERION = "UNKNOWN_CRITERION"
    DUPLICATE_CRITERION = "DUPLICATE_CRITERION"
    MAIN_CRITERION_REQUIRED = "MAIN_CRITERION_REQUIRED"
    NO_SCORES = "NO_SCORES"
    ALL_ZERO = "ALL_ZERO"
    SAME_VIDEO = "SAME_VIDEO"
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    BAD_EMAIL = "BAD_EMAIL"
    DISPOSABLE_EMAIL = "DISPOSABLE_EMAIL"
    BAD_DOMAIN = "BAD_DOMAIN"
    BAD_STATUS = "BAD_STATUS"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    PASSWORD_TOO_LONG = "PASSWORD_TOO_LONG"
    INVALID_SETTINGS = "INVALID_SETTINGS"
    # -- the state of things --
    UNKNOWN_VIDEO = "UNKNOWN_VIDEO"
    UNKNOWN_USER = "UNKNOWN_USER"
    UNKNOWN_COMPARISON = "UNKNOWN_COMPARISON"
    NOT_RATED = "NOT_RATED"
    NOT_MODERATED = "NOT_MODERATED"
    READ_ONLY = "READ_ONLY"
    CONFLICT = "CONFLICT"
    NOTHING_TO_DO = "NOTHING_TO_DO"
    USERNAME_TAKEN = "USERNAME_TAKEN"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    SAME_EMAIL = "SAME_EMAIL"
    NO_EMAIL = "NO_EMAIL"
    ALREADY_VERIFIED = "ALREADY_VERIFIED"
    SELF_VOUCH = "SELF_VOUCH"
    SELF_DEACTIVATION = "SELF_DEACTIVATION"


class InvalidInput(ValueError):
    """An expected failure: ``field`` (a path into the input, ``""`` for none), a
    message for people and an :class:`ErrorCode` for programs.

    ``code`` may be given as the enum or its name; an unknown name raises
    ``ValueError`` at once (tests/test_error_model.py checks every code the source
    raises is a member, so this never reaches a client).
    """

    def __init__(self, field: str, message: str, code: ErrorCode | str = ErrorCode.INVALID) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message
        self.code = ErrorCode(code)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def __repr__(self) -> str:
        return f"InvalidInput({self.field!r}, {self.message!r}, {self.code.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InvalidInput) and (self.field, self.message, self.code) == (
            other.field,
            other.message,
            other.code,
        )

    __hash__ = ValueError.__hash__

    def __reduce__(self) -> tuple[type[InvalidInput], tuple[str, str, str]]:
        return type(self), (self.field, self.message, self.code.value)

    @property
    def extensions(self) -> dict[str, str]:
        """``errors[].extensions`` of this failure in a GraphQL answer."""
        return {"code": self.code.value} | ({"field": self.field} if self.field else {})
