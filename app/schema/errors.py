"""Error masking: unexpected exceptions become "Internal server error (request id
…)" with the traceback logged under that id; expected ones stay readable.

Readable: GraphQL syntax and validation errors (no original exception, e.g. depth,
token and alias limits, unknown fields), and our expected errors (``ApiError``,
``InvalidInput``, ``PaginationError``), which also get ``extensions.code``.
"""

from __future__ import annotations

import logging
import uuid

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from app.resolvers.errors import EXPECTED, code_of

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
            if isinstance(original, EXPECTED) and not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": code_of(original)}
                if getattr(original, "field", None):
                    error.extensions["field"] = original.field
            out.append(error)
        return out
