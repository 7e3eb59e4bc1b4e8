"""Refuse strings no database can store, before any resolver runs.

PostgreSQL rejects NUL (``\\x00``) in text and neither database driver can encode
a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON): let through, either one
surfaces as a masked internal error deep in a resolver, on one backend only. This
extension checks every string of an operation once, for HTTP and WebSocket alike,
right after validation: the document's string literals and the variables
(values and object keys, walked without recursion so any nesting depth is safe).
A hit is a GraphQL error with ``extensions.code`` ``BAD_STRING`` naming where it
was found; nothing is executed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, GraphQLError, StringValueNode, Visitor, visit
from strawberry.extensions import SchemaExtension

# NUL, and the surrogate code points a Python str can hold but UTF-8 cannot encode.
FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
CODE = "BAD_STRING"
NUL_ESCAPE = re.compile(r"\\u(?:0000|\{0+\})")  # \u0000, \u{0}, \u{000000}...


def describe(text: str) -> str:
    found = FORBIDDEN.search(text)
    assert found is not None
    char = found.group()
    what = (
        "a NUL character (\\u0000)" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"
    )
    return f"contains {what}, which no text field accepts"


class _StringLiterals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.bad: StringValueNode | None = None

    def enter_string_value(self, node: StringValueNode, *_: Any) -> Any:
        if FORBIDDEN.search(node.value):
            self.bad = node
            return self.BREAK
        return None


def bad_literal(document: DocumentNode, source: str | None) -> StringValueNode | None:
    """The first string literal holding a forbidden character, if any."""
    # The lexer refuses raw NUL and surrogates in the source, and escaped surrogates
    # too, so a literal can only hold a NUL written as an escape: without one in the
    # text (cheap to search), there is nothing to walk.
    if source is not None and not NUL_ESCAPE.search(source):
        return None
    visitor = _StringLiterals()
    visit(document, visitor)
    return visitor.bad


def bad_variable(variables: Any) -> tuple[str, str] | None:
    """The path (``$input.title``) and text of the first forbidden string in the
    variables, keys included. Linear in their size whatever their depth: each item
    records its parent, and only a hit's path is spelled out."""
    steps: list[tuple[int, str]] = [(-1, "$")]  # (parent step, ".key" or "[i]")
    stack: list[tuple[int, Any]] = [(0, variables)]
    while stack:
        step, value = stack.pop()
        if isinstance(value, str):
            if FORBIDDEN.search(value):
                return _path(steps, step), value
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and FORBIDDEN.search(key):
                    return _path(steps, step) + " (a key)", key
                steps.append((step, f".{key}"))
                stack.append((len(steps) - 1, item))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                steps.append((step, f"[{i}]"))
                stack.append((len(steps) - 1, item))
    return None


def _path(steps: list[tuple[int, str]], step: int) -> str:
    parts = []
    while step > 0:
        step, label = steps[step]
        parts.append(label)
    return "$" + "".join(reversed(parts)).removeprefix(".")


class RefuseUnstorableStrings(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        # Before the yield: strawberry reads the errors as the validation step ends,
        # before the hooks' second halves run. Listed after QueryDocuments, this
        # runs once the document is validated (a validation error comes first).
        self._check()
        yield

    def _check(self) -> None:
        ctx = self.execution_context
        if ctx.pre_execution_errors or ctx.graphql_document is None:
            return  # invalid already: the client sees those errors first
        error = None
        if (node := bad_literal(ctx.graphql_document, ctx.query)) is not None:
            error = GraphQLError(
                f"A string argument {describe(node.value)}.",
                nodes=[node],
                extensions={"code": CODE},
            )
        elif ctx.variables and (found := bad_variable(ctx.variables)) is not None:
            path, text = found
            path = path if len(path) <= 100 else path[:97] + "..."  # keys can be long
            error = GraphQLError(
                f"Variable {path} {describe(text)}.", extensions={"code": CODE, "field": path}
            )
        if error is not None:
            # A new list: the one there may be ValidationCache's cached result.
            ctx.pre_execution_errors = [error]
