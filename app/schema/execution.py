"""A flatter graphql-core executor for plain fields (the rankings hot path).

graphql-core completes every field the same way: a ``GraphQLResolveInfo`` and a
``Path`` built, strawberry's resolver wrapper called, then ``complete_value``
dispatching on the type, recursively. For a *plain* field (strawberry's default
resolver, i.e. an attribute of a dataclass, no arguments, no extensions) almost all
of that is unused, and a 20-edge ranking page has ~100 of them: it was ~30 % of a
cold ``rankings`` request.

:class:`FlatExecutor` reads such a field's attribute and completes it in place when
its type is a scalar or enum, an object type, or a list of those, and falls back to
graphql-core's own path (``execute_field``) for everything else and for every case
where something is off, *before* any side effect: an attribute that raises, a null
for a non-null type, a value the scalar cannot serialize, an awaitable, an object
failing ``is_type_of``, ``@defer``/``@stream``, a field middleware. The fallback then
produces exactly graphql-core's answer and error. Errors raised while completing
the sub-selections of an object (fields of the object that are not plain) are
handled as graphql-core does: :meth:`handle_field_error` at the item, then at the
field. The result is the same data and the same errors, in the same order.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from graphql import (
    GraphQLObjectType,
    GraphQLOutputType,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

DEFINITION = "strawberry-definition"  # strawberry's back reference on a GraphQLField
GENERIC = object()  # "complete this one the general way"

LEAF, OBJECT = 1, 2
# never awaitable, and what leaf values usually are
PRIMITIVE = frozenset({str, int, float, bool})


class Plan:
    """How to complete one plain field of one object type."""

    __slots__ = (
        "attr", "get", "item", "item_kind", "item_non_null", "item_type", "list", "non_null", "type"
    )  # fmt: skip

    def __init__(self, get: Callable[[Any, str], Any], attr: str, type_: Any):
        self.get, self.attr, self.type = get, attr, type_
        self.non_null = is_non_null_type(type_)
        inner: Any = type_.of_type if self.non_null else type_
        self.list = is_list_type(inner)
        # the item's type as the schema has it (non-null or not), and without non-null
        item: Any = inner.of_type if self.list else inner
        self.item = item
        self.item_non_null = is_non_null_type(item)
        self.item_type: Any = item.of_type if self.item_non_null else item
        kind = 0  # lists of lists, interfaces, unions: the general way
        if is_leaf_type(self.item_type):
            kind = LEAF
        elif is_object_type(self.item_type):
            kind = OBJECT
        self.item_kind = kind


_plans: weakref.WeakKeyDictionary[GraphQLObjectType, dict[str, Plan | None]] = (
    weakref.WeakKeyDictionary()
)


def plans(parent_type: GraphQLObjectType) -> dict[str, Plan | None]:
    """The plan of every field of ``parent_type`` (None: not plain), computed once."""
    found = _plans.get(parent_type)
    if found is None:
        found = {name: _plan(field) for name, field in parent_type.fields.items()}
        _plans[parent_type] = found
    return found


def _plan(field: Any) -> Plan | None:
    definition = (field.extensions or {}).get(DEFINITION)
    resolve = field.resolve
    if (
        definition is None
        or field.args
        or not getattr(resolve, "_is_default", False)  # strawberry's basic-field resolver
        or getattr(definition, "base_resolver", True) is not None
        or getattr(definition, "extensions", True)
        or not callable(getattr(definition, "default_resolver", None))
    ):
        return None
    plan = Plan(definition.default_resolver, definition.python_name, field.type)
    return plan if plan.item_kind else None


class FlatExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor with plain fields completed in place (module doc)."""

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        manager = self.middleware_manager
        if position_context is not None or (manager is not None and manager.middlewares):
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, plan, leaf in self._steps(
                parent_type, grouped_field_set
            ):
                result = GENERIC
                if leaf:  # a scalar or an enum, the value a plain Python one: no awaitable
                    try:
                        value = plan.get(source_value, plan.attr)
                        if type(value) in PRIMITIVE:
                            result = plan.item_type.coerce_output_value(value)
                            if result is not None and result is not Undefined:
                                results[response_name] = result
                                continue
                    except Exception:
                        pass  # the general path raises it again, located
                    result = GENERIC
                if plan is not None:
                    result = self._plain_field(
                        plan, parent_type, source_value, field_details_list, path, response_name
                    )
                if result is GENERIC:
                    result = self.execute_field(
                        parent_type,
                        source_value,
                        field_details_list,
                        Path(path, response_name, parent_type.name),
                        position_context,
                    )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[f] for f in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def _steps(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[tuple]:
        """(response name, field details, plan or None, plain scalar or enum) for each
        field of a grouped field set, computed once per set: graphql-core memoizes
        the sets of a list's items, so the 20 edges of a page share one."""
        memo = self.__dict__.setdefault("_flat_steps", {})
        found = memo.get(id(grouped_field_set))
        if found is not None and found[0] is grouped_field_set:
            return found[1]
        field_plans = plans(parent_type)
        steps = []
        for response_name, field_details_list in grouped_field_set.items():
            plan = field_plans.get(field_details_list[0].node.name.value)
            leaf = plan is not None and not plan.list and plan.item_kind == LEAF
            steps.append((response_name, field_details_list, plan, leaf))
        memo[id(grouped_field_set)] = (grouped_field_set, steps)  # kept alive: id not reused
        return steps

    # ------------------------------------------------------------------ plain fields
    def _check(self, plan: Plan, value: Any, field_details_list: Any) -> Any:
        """``value`` completed if it is a leaf; for an object, the collected
        sub-fields; GENERIC when the general path must decide. No side effect."""
        if plan.item_kind == LEAF:
            if self.is_awaitable(value):
                return GENERIC
            try:
                coerced = plan.item_type.coerce_output_value(value)
            except Exception:
                return GENERIC
            return GENERIC if coerced is None or coerced is Undefined else coerced
        object_type: GraphQLObjectType = plan.item_type
        if self.is_awaitable(value):
            return GENERIC
        if object_type.is_type_of is not None:
            try:
                if object_type.is_type_of(value, None) is not True:  # type: ignore[arg-type]
                    return GENERIC
            except Exception:
                return GENERIC
        grouped, defer_usages, *_ = self.collect_subfields(object_type, field_details_list)
        return GENERIC if defer_usages else grouped

    def _plain_field(
        self,
        plan: Plan,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        parent_path: Path | None,
        response_name: str,
    ) -> Any:
        try:
            value = plan.get(source, plan.attr)
        except Exception:
            return GENERIC
        if value is None:
            return GENERIC if plan.non_null else None
        if not plan.list:
            checked = self._check(plan, value, field_details_list)
            if checked is GENERIC or plan.item_kind == LEAF:
                return checked
            path = Path(parent_path, response_name, parent_type.name)
            return self._guard(
                plan.type,
                lambda: self.execute_fields(plan.item_type, value, path, checked, None),
                field_details_list,
                path,
            )
        if type(value) not in (list, tuple) or any(
            d.node.directives for d in field_details_list
        ):  # @stream, or an iterable the general path knows how to read
            return GENERIC
        checks: list[Any] = []
        for item in value:
            if item is None:
                if plan.item_non_null:
                    return GENERIC
                checks.append(None)
                continue
            checked = self._check(plan, item, field_details_list)
            if checked is GENERIC:
                return GENERIC
            checks.append(checked)
        if plan.item_kind == LEAF:
            return checks
        path = Path(parent_path, response_name, parent_type.name)
        return self._guard(
            plan.type,
            lambda: self._objects(plan, value, checks, field_details_list, path),
            field_details_list,
            path,
        )

    def _guard(
        self,
        return_type: GraphQLOutputType,
        complete: Callable[[], Any],
        field_details_list: Any,
        path: Path,
    ) -> Any:
        """``complete()``, with graphql-core's field-level error handling (as in
        ``execute_field``): a null when the type allows it, else the error raised."""
        try:
            completed = complete()
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if not self.is_awaitable(completed):
            return completed

        async def await_completed(completed: Awaitable[Any]) -> Any:
            try:
                return await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, return_type, field_details_list, path)
                return None

        return await_completed(completed)

    def _objects(
        self, plan: Plan, items: Any, checks: list[Any], field_details_list: Any, path: Path
    ) -> Any:
        """A list of objects completed (as ``complete_iterable_value`` and
        ``complete_list_item_value``), their sub-fields collected beforehand."""
        object_type: GraphQLObjectType = plan.item_type
        item_type: GraphQLOutputType = plan.item
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        for index, (item, grouped) in enumerate(zip(items, checks, strict=True)):
            if item is None:
                completed.append(None)
                continue
            item_path = path.add_key(index, None)
            try:
                value = self.execute_fields(object_type, item, item_path, grouped, None)
            except Exception as raw_error:
                self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                completed.append(None)
                continue
            if self.is_awaitable(value):
                completed.append(self._await_item(value, item_type, field_details_list, item_path))
                awaitable_indices.append(index)
            else:
                completed.append(value)
        if not awaitable_indices:
            return completed

        async def get_completed() -> list[Any]:
            awaited = await gather_with_cancel(*(completed[i] for i in awaitable_indices))
            for i, value in zip(awaitable_indices, awaited, strict=True):
                completed[i] = value
            return completed

        return get_completed()

    async def _await_item(
        self,
        value: Awaitable[Any],
        item_type: GraphQLOutputType,
        field_details_list: Any,
        path: Path,
    ) -> Any:
        try:
            return await value
        except Exception as raw_error:
            self.handle_field_error(raw_error, item_type, field_details_list, path)
            return None


__all__ = ["FlatExecutor"]
