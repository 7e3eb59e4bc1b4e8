"""Error masking: unexpected exceptions become "Internal server error (request id
…)" with the traceback logged under that id; expected ones stay readable.

Readable: GraphQL syntax and validation errors (no original exception, e.g. depth,
token and alias limits, unknown fields), which get ``GRAPHQL_VALIDATION_FAILED``
unless a limit named its own code, and our expected errors (:class:`InvalidInput`,
app/errors.py), which get their ``extensions.code`` (and ``field``).

The error types of the schema: ``ErrorCode``, every code (what ``errors[].extensions.code``
holds); the ``UserError`` interface; and, made by :func:`user_error_type` from each
mutation's declaration (``@payload(..., codes=...)``, app/schema/mutation.py), its
``<Mutation>UserError`` whose ``code`` is a ``<Mutation>ErrorCode``: the subset of
``ErrorCode`` that mutation can return, with the same names and descriptions, as
Shopify's ``…UserErrorCode`` enums. tests/test_mutation_error_codes.py checks each
subset against what the mutation's code can raise.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from app.errors import ErrorCode as _ErrorCode
from app.resolvers.errors import EXPECTED, code_of
from app.schema.descriptions import ERROR_CODES

strawberry.enum(
    _ErrorCode,
    name="ErrorCode",
    description="Why a request failed, as a program can branch on it: every code of "
    "`errors[].extensions.code`; each mutation's `userErrors[].code` is an enum of the "
    "ones it can return (`<Mutation>ErrorCode`), with the same names (README: Errors).",
)
ErrorCode = _ErrorCode  # strawberry.enum returns the class: an alias mypy accepts

# The code a mutation answers if it raises one it did not declare (a bug, logged at
# ERROR): the generic one, as `InvalidInput` defaults to. Every mutation declares it.
FALLBACK = ErrorCode.INVALID


@strawberry.interface(
    description="An expected failure of a mutation: bad input, not signed in, not allowed. "
    "Each mutation's payload has its own kind, `<Mutation>UserError`, whose `code` lists "
    "what that mutation can answer."
)
class UserError:
    field: str | None = strawberry.field(
        description="The input field at fault, as a path (`scores[0].score`); null for none."
    )
    message: str = strawberry.field(description="What went wrong, for people.")


def user_error_type(mutation: str, codes: Iterable[ErrorCode | str]) -> Any:
    """``<Mutation>UserError implements UserError { field message code:
    <Mutation>ErrorCode! }`` for the GraphQL mutation named ``mutation``, whose enum
    holds ``codes`` and :data:`FALLBACK`, in ``ErrorCode``'s order and with its
    descriptions. The class has ``codes``, the members as ``ErrorCode``."""
    wanted = {ErrorCode(code) for code in codes} | {FALLBACK}
    members = [code for code in ErrorCode if code in wanted]
    prefix = mutation[:1].upper() + mutation[1:]
    make_enum: Any = enum.StrEnum  # the functional API, which mypy cannot follow
    code_enum = make_enum(f"{prefix}ErrorCode", [(code.name, code.value) for code in members])
    strawberry.enum(
        code_enum,
        name=f"{prefix}ErrorCode",
        description=f"Why `{mutation}` failed, for programs: the codes of `ErrorCode` it "
        "can answer.",
    )
    for value in code_enum.__strawberry_definition__.values:
        value.description = ERROR_CODES[value.name]
    namespace = {
        "__annotations__": {"code": code_enum},
        "__module__": __name__,
        "code": strawberry.field(
            description="What went wrong, for programs: the same code as a query's "
            "`errors[].extensions.code` would be."
        ),
    }
    kind: Any = strawberry.type(
        type(f"{prefix}UserError", (UserError,), namespace),
        name=f"{prefix}UserError",
        description=f"Why `{mutation}` did nothing.",
    )
    kind.codes = frozenset(members)
    kind.code_enum = code_enum
    return kind


log = logging.getLogger("sunrank.api")
INTERNAL = "Internal server error (request id {})"


def is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None:
        return False
    # strawberry wraps some errors once more
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    return not isinstance(original, (*EXPECTED, GraphQLError))


class MaskUnexpectedErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        # The id of the request log line and of the X-Request-ID header (app.ops).
        request = getattr(self.execution_context.context, "request", None)
        state = request.scope.get("state", {}) if request is not None else {}
        request_id = state.get("request_id") or uuid.uuid4().hex[:12]
        original = error.original_error
        log.error(
            "request %s: unexpected error at %s: %r",
            request_id, ".".join(map(str, error.path or [])), original,
            exc_info=(type(original), original, original.__traceback__) if original else None,
        )  # fmt: skip
        return GraphQLError(
            message=INTERNAL.format(request_id),
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        out = []
        for error in super()._process_errors(errors):
            original = error.original_error
            if (error.extensions or {}).get("code"):
                pass  # a limit or an earlier pass named it
            elif isinstance(original, EXPECTED):
                error.extensions = {**(error.extensions or {}), "code": code_of(original)}
                if getattr(original, "field", None):
                    error.extensions["field"] = original.field
            elif original is None and not error.path:
                # a document the schema refuses (unknown field, bad variable…)
                error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_VALIDATION_FAILED"}
            out.append(error)
        return out
