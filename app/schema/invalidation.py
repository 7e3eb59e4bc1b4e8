"""After a mutation, over HTTP or WebSocket alike, move the cache's data revision
(:meth:`app.cache.Cache.data_changed`) so that no cached answer made before it is
served again, on this process or any other sharing the cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType


class InvalidateOnMutation(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        yield
        ctx = self.execution_context
        if ctx.graphql_document is None:
            return
        try:
            kind = ctx.operation_type
        except Exception:  # no such operation: strawberry reports it, nothing ran
            return
        if kind is OperationType.MUTATION:
            cache = getattr(ctx.context, "cache", None)
            if cache is not None:
                await cache.data_changed()
