"""The GraphQL schema: types, inputs, root operations and limits."""

from __future__ import annotations

import functools
import logging

import strawberry
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

from app.schema.errors import MaskUnexpectedErrors, is_unexpected
from app.schema.mutation import Mutation
from app.schema.query import Query
from app.schema.subscription import Subscription

MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 20


class SunrankSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Log only unexpected errors (MaskUnexpectedErrors logs them with their
        request id); bad queries and user errors are the client's business."""
        for error in errors:
            if is_unexpected(error):
                logging.getLogger("sunrank.api").debug("unexpected error: %s", error)


@functools.cache
def build_schema() -> strawberry.Schema:
    """The schema, built once per process (strawberry's relay ``node`` field cannot be
    converted twice)."""
    return SunrankSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            ParserCache,
            ValidationCache,
            MaskUnexpectedErrors,
        ],
    )


def sdl() -> str:
    """The schema in SDL, as committed in ``schema.graphql``."""
    return build_schema().as_str() + "\n"
