"""The GraphQL schema: types, inputs, root operations and limits."""

from __future__ import annotations

import functools

import strawberry
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

from app.schema.query import Query

MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 20


@functools.cache
def build_schema() -> strawberry.Schema:
    """The schema, built once per process (strawberry's relay ``node`` field cannot be
    converted twice)."""
    return strawberry.Schema(
        query=Query,
        extensions=[
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            ParserCache,
            ValidationCache,
        ],
    )
