"""Parsing and validation of GraphQL documents, bounded for a public endpoint.

:class:`QueryDocuments` replaces strawberry's MaxTokensLimiter, ParserCache,
ValidationCache and depth/alias limiters, for HTTP and WebSocket operations alike:

1. a document longer than ``SUNRANK_MAX_QUERY_BYTES`` (UTF-8) is refused before it is
   parsed (``QUERY_TOO_LARGE``), then parsed with at most ``SUNRANK_MAX_QUERY_TOKENS``
   tokens;
2. the limits of app.schema.limits (depth, aliases, cost, directives) are checked
   before graphql-core's own rules, so that a document over them never reaches the
   rules whose work grows faster than the document (OverlappingFieldsCanBeMerged
   compares fields pairwise; its budget is lowered below for the same reason), and a
   document with an integer literal over 100 digits, which graphql-core would fail to
   read (Python's int() stops at 4,300 digits), is refused (``BAD_NUMBER``);
3. parsed documents and validation results are cached in LRUs bounded in entries and
   in (estimated) bytes, keyed by the query text, so a stream of distinct large
   queries cannot grow memory for good;
4. an operation whose cost depends on variables (``first: $n``) is costed again with
   the request's variables after validation, uncached (it is linear);
5. a document longer than :data:`OFFLOAD_ABOVE_CHARS` is parsed and validated on a
   worker thread: the work is the same (the GIL is held), but the event loop gets the
   interpreter back every few milliseconds, so /healthz and other requests are not
   held up behind the 50 to 100 ms that graphql-core spends on a 2,000-token document.

Errors found before execution go to strawberry as ``pre_execution_errors`` with a
stand-in document: an ``on_parse`` hook that raised would escape strawberry's
WebSocket handler as a task exception instead of an ``error`` message.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from typing import Generic, ParamSpec, TypeVar

import graphql.validation.rules.overlapping_fields_can_be_merged as overlapping_fields
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    MaxIntrospectionDepthRule,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    TokenKind,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from app.config import Settings
from app.schema.limits import Limits, check_limits, cost_error, operation_measure

# graphql-core's documented knob for OverlappingFieldsCanBeMergedRule (default 500,000
# units, ~100 ms here on 2,000 repeated fields). Realistic documents spend none to a
# few hundred units (GraphiQL's introspection query: 0); 20,000 caps the rule at a
# few milliseconds. Over it, validation answers "Validation aborted."
overlapping_fields.MAX_COMPLEXITY_BUDGET = 20_000

PARSE_CACHE_ENTRIES = 512
PARSE_CACHE_BYTES = 32 * 1024 * 1024
# A parsed document takes up to ~100 times its text in memory (measured: 11 KB of
# repeated fields → 1.2 MB of AST nodes; long string arguments far less).
AST_BYTES_PER_CHAR = 100
VALIDATION_CACHE_ENTRIES = 1024
VALIDATION_CACHE_BYTES = 4 * 1024 * 1024

MAX_INTEGER_DIGITS = 100

# Measured here: parsing and validating ~2 KB of dense GraphQL takes ~5 ms.
OFFLOAD_ABOVE_CHARS = 2048

DEFAULT_LIMITS = Limits.from_settings(Settings())

Validated = tuple[list[GraphQLError], bool]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = ParamSpec("P")
R = TypeVar("R")


async def _run(size: int, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``function(*args)``, on a worker thread when the document is large."""
    if size > OFFLOAD_ABOVE_CHARS:
        return await asyncio.to_thread(function, *args, **kwargs)
    return function(*args, **kwargs)


class BoundedLRU(Generic[K, V]):
    """An LRU dict bounded by entry count and by the sum of its entries' weights
    (estimated bytes). An entry heavier than a quarter of the budget is not kept."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, weight: int) -> None:
        if weight > self.max_bytes // 4:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._entries[key] = (value, weight)
        self.bytes += weight
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped


PARSED: BoundedLRU[tuple[str, int], DocumentNode] = BoundedLRU(
    PARSE_CACHE_ENTRIES, PARSE_CACHE_BYTES
)
# (query, limits, rules) → (errors, whether the cost depends on variables)
VALIDATED: BoundedLRU[tuple[str, Limits, tuple[type[ASTValidationRule], ...]], Validated] = (
    BoundedLRU(VALIDATION_CACHE_ENTRIES, VALIDATION_CACHE_BYTES)
)


async def parse_document(query: str, max_tokens: int) -> DocumentNode:
    """``query`` parsed, from the bounded cache, else parsed (on a worker thread when
    large) and cached; a syntax error raises GraphQLError. Also used by the response
    cache (app/response_cache.py), so that a document is parsed once per request."""
    key = (query, max_tokens)
    document = PARSED.get(key)
    if document is None:
        document = await _run(len(query), parse, query, max_tokens=max_tokens)
        PARSED.put(key, document, AST_BYTES_PER_CHAR * len(query) + 512)
    return document


def utf8_length_over(text: str, limit: int) -> int | None:
    """The UTF-8 length of ``text`` if it exceeds ``limit``, else None (without
    encoding texts that cannot exceed it)."""
    if len(text) * 4 <= limit:
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


def _stand_in(operation_name: str | None) -> DocumentNode:
    """A valid query document to hand to strawberry along with the errors that
    refused the real one (named as asked, so strawberry finds its operation)."""
    selection = FieldNode(name=NameNode(value="__typename"), arguments=(), directives=())
    operation = OperationDefinitionNode(
        operation=OperationType.QUERY,
        name=NameNode(value=operation_name) if operation_name else None,
        variable_definitions=(),
        directives=(),
        selection_set=SelectionSetNode(selections=(selection,)),
    )
    return DocumentNode(definitions=(operation,))


class QueryDocuments(SchemaExtension):
    """See the module docstring. Limits come from the request's settings."""

    def _limits(self) -> Limits:
        settings = getattr(self.execution_context.context, "settings", None)
        return Limits.from_settings(settings) if settings is not None else DEFAULT_LIMITS

    def _refuse(self, error: GraphQLError) -> None:
        ctx = self.execution_context
        ctx.graphql_document = _stand_in(ctx.operation_name)
        ctx.pre_execution_errors = [error]

    async def on_parse(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        if ctx.query and ctx.graphql_document is None:
            limits = self._limits()
            if (size := utf8_length_over(ctx.query, limits.max_bytes)) is not None:
                self._refuse(
                    GraphQLError(
                        f"The query is {size:,} bytes long, over the maximum of "
                        f"{limits.max_bytes:,} bytes (SUNRANK_MAX_QUERY_BYTES).",
                        extensions={
                            "code": "QUERY_TOO_LARGE",
                            "limit": limits.max_bytes,
                            "value": size,
                        },
                    )
                )
            else:
                await self._parse(ctx.query, limits.max_tokens)
        yield

    async def _parse(self, query: str, max_tokens: int) -> None:
        try:
            document = await parse_document(query, max_tokens)
        except GraphQLError as error:
            code = "TOO_MANY_TOKENS" if "tokens" in error.message else "GRAPHQL_PARSE_FAILED"
            error.extensions = {**(error.extensions or {}), "code": code}
            if code == "TOO_MANY_TOKENS":
                error.extensions["limit"] = max_tokens
            self._refuse(error)
            return
        self.execution_context.graphql_document = document

    async def on_validate(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        if ctx.pre_execution_errors is None and ctx.graphql_document is not None:
            ctx.pre_execution_errors = await self._validate(ctx.graphql_document)
        yield

    async def _validate(self, document: DocumentNode) -> list[GraphQLError]:
        ctx = self.execution_context
        schema = ctx.schema._schema
        limits = self._limits()
        rules = (*ctx.validation_rules, MaxIntrospectionDepthRule)
        key = (ctx.query or "", limits, rules)  # rules: classes built once, a stable key
        cached = VALIDATED.get(key)
        if cached is None:
            cached = await _run(len(key[0]), _check, schema, document, limits, rules)
            weight = len(key[0]) + 256 + sum(len(e.message) + 256 for e in cached[0])
            VALIDATED.put(key, cached, weight)
        errors, uses_variables = cached
        if errors or not uses_variables:
            return errors
        variables = ctx.variables if isinstance(ctx.variables, Mapping) else None
        measure = await _run(
            len(key[0]), operation_measure, schema, document, ctx.operation_name, variables
        )
        error = cost_error(measure, limits, schema) if measure is not None else None
        return [error] if error is not None else []


def _check(
    schema: GraphQLSchema,
    document: DocumentNode,
    limits: Limits,
    rules: tuple[type[ASTValidationRule], ...],
) -> tuple[list[GraphQLError], bool]:
    """Our limits first: a document over them never reaches graphql-core's rules."""
    if (digits := _longest_integer(document)) > MAX_INTEGER_DIGITS:
        # graphql-core reads Int literals with int(), which raises past 4,300 digits
        message = f"An integer in the document has {digits:,} digits; GraphQL's Int has 10."
        return [GraphQLError(message, extensions={"code": "BAD_NUMBER"})], False
    errors, uses_variables = check_limits(schema, document, limits)
    if not errors:
        errors = validate_document(schema, document, rules)
    return errors, uses_variables


def _longest_integer(document: DocumentNode) -> int:
    """The digits of the document's longest integer literal (from its tokens)."""
    longest = 0
    token = document.loc.start_token if document.loc else None
    while token is not None:
        if token.kind is TokenKind.INT:
            longest = max(longest, len(token.value or ""))
        token = token.next
    return longest


__all__ = ["BoundedLRU", "QueryDocuments", "parse_document"]
