"""The GraphQL schema: types, inputs, root operations and limits."""

from __future__ import annotations

import functools
import logging

import strawberry
from graphql import FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types

from app.schema.accounts import (
    AccountDomainMutations,
    AccountMutations,
    AccountQueries,
    DeactivationMutations,
    DeletionMutations,
    SessionMutations,
    SettingsMutations,
)
from app.schema.descriptions import describe
from app.schema.documents import QueryDocuments
from app.schema.errors import ErrorCode, MaskUnexpectedErrors, is_unexpected
from app.schema.execution import FlatExecutor
from app.schema.input_guard import RefuseUnstorableStrings
from app.schema.invalidation import InvalidateOnMutation
from app.schema.mutation import Mutation
from app.schema.query import Query
from app.schema.subscription import Subscription


class RecordOperation(SchemaExtension):
    """Name the operation for the request log line and the metrics (app.ops).

    The metrics label is the operation type and its first root field ("query
    rankings"): a bounded set, unlike client-chosen operation names, which only go
    to the log line.
    """

    def on_execute(self):
        yield
        ctx = self.execution_context
        request = getattr(ctx.context, "request", None)
        if request is None or ctx.graphql_document is None:
            return
        kind = ctx.operation_type.value if ctx.operation_type else "graphql"
        fields = [
            selection.name.value
            for definition in ctx.graphql_document.definitions
            if isinstance(definition, OperationDefinitionNode)
            and (ctx.operation_name is None or definition.name is None
                 or definition.name.value == ctx.operation_name)
            for selection in definition.selection_set.selections
            if isinstance(selection, FieldNode)
        ]  # fmt: skip
        state = request.scope.setdefault("state", {})
        state["operation"] = f"{kind} {fields[0]}" if fields else kind
        state["operation_name"] = ctx.operation_name


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
    schema = SunrankSchema(
        query=merge_types("Query", (Query, AccountQueries)),
        mutation=merge_types(
            "Mutation",
            (
                Mutation,
                AccountMutations,
                AccountDomainMutations,
                SessionMutations,
                DeletionMutations,
                SettingsMutations,
                DeactivationMutations,
            ),
        ),
        subscription=Subscription,
        # plain fields completed without graphql-core's per-field machinery
        execution_context_class=FlatExecutor,
        # every code, for `errors[].extensions.code` (no field has this type: each
        # mutation's `userErrors` has its own subset, app/schema/errors.py)
        types=[ErrorCode],
        extensions=[
            # size, token, depth, alias and cost limits; bounded parse and
            # validation caches (app/schema/documents.py)
            QueryDocuments,
            RefuseUnstorableStrings,  # NUL and lone surrogates (app/schema/input_guard.py)
            MaskUnexpectedErrors,
            RecordOperation,
            InvalidateOnMutation,
        ],
    )
    describe(schema._schema)  # every element described (app/schema/descriptions.py)
    return schema


def sdl() -> str:
    """The schema in SDL, as committed in ``schema.graphql``."""
    return build_schema().as_str() + "\n"
