"""Error masking: unexpected exceptions become "Internal server error (request id
…)" with the traceback logged under that id; expected ones stay readable.

Readable: GraphQL syntax and validation errors (no original exception, e.g. depth,
token and alias limits, unknown fields), which get ``GRAPHQL_VALIDATION_FAILED``
unless a limit named its own code, and our expected errors (:class:`InvalidInput`,
app/errors.py), which get their ``extensions.code`` (and ``field``).

``ErrorCode`` is also the GraphQL enum of ``UserError.code``.
"""

from __future__ import annotations

import logging
import uuid

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from app.errors import ErrorCode as _ErrorCode
from app.resolvers.errors import EXPECTED, code_of

strawberry.enum(
    _ErrorCode,
    name="ErrorCode",
    description="Why a request failed, as a program can branch on it: "
    "`userErrors[].code` of a mutation and `errors[].extensions.code` otherwise use the "
    "same codes (README: Errors).",
)
ErrorCode = _ErrorCode  # strawberry.enum returns the class: an alias mypy accepts

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
