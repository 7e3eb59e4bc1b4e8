"""Query limits: depth, aliases, estimated cost and directives of every operation.

One walk over the document, in time proportional to its length: each fragment
definition is measured once (fragments in dependency order, each from the memoised
measures of the fragments it spreads), and a spread costs a lookup. The walk follows
no cycle: a spread of a fragment still being measured (a cycle, which graphql-core's
NoFragmentCyclesRule reports) counts as empty. Nesting inside one definition is
bounded by the parser (200 levels), so the walk's recursion is too. Numbers saturate
at :data:`SATURATED` so that a fragment explosion stays a small integer.

What is measured, per operation (a fragment counts each time it is spread):

- **depth**: the number of nested selection sets (``{ stats { users } }`` is 1);
  introspection fields (``__schema``, ``__type``) are left out, as strawberry's
  depth limiter did, because graphql-core's MaxIntrospectionDepthRule bounds them;
- **aliases**: fields with an alias;
- **cost**, an estimate of the number of values in the result (in the spirit of
  GitHub's node limit): every field is 1 per time it appears in the result. A field
  with a ``first`` argument returning a list yields ``first`` items; a connection
  (a ``first`` argument on a non-list field) yields ``first`` items in its ``edges``
  and ``nodes``. ``first`` is the literal, else the request's variable value, else
  the variable's default, else the argument's default in the schema. Other lists
  count :data:`DEFAULT_LIST_SIZE` items (this schema's plain lists hold one item per
  criterion), introspection lists the average size they have in this schema.
  Everything nested multiplies.

Variables are only known at execution: the validation rule (cached with the
document) counts a ``first`` given by a variable as 1, its least useful value, and
records that the cost depends on variables; :func:`operation_cost` then costs the
operation about to run with the request's variables (app.schema.documents).

Introspection: an operation that selects only ``__schema``/``__type``/``__typename``
may cost up to :func:`introspection_allowance` (twice the fullest standard
introspection query of this schema) when that is above ``max_cost``: a client must
always be able to read the schema (GraphiQL does at start), whatever its size, and
the schema is finite, so the allowance still bounds repeated aliased copies.

Directives are counted per document, as written (floods of ``@skip`` are refused
before graphql-core's rules report each duplicate).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    BREAK,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
    get_introspection_query,
    get_named_type,
    is_input_object_type,
    is_interface_type,
    is_list_type,
    is_non_null_type,
    parse,
    value_from_ast_untyped,
)
from graphql.language import Node

SATURATED = 10**15
DEFAULT_LIST_SIZE = 10
DEFAULT_PAGE_SIZE = 20  # a `first` argument without a default in the schema
PAGED_LISTS = frozenset(("edges", "nodes"))  # the Relay connection's item lists
INTROSPECTION_ROOTS = frozenset(("__schema", "__type", "__typename"))


@dataclass(frozen=True)
class Limits:
    """The limits every operation must respect (settings in app.config, defaults
    there; the directive cap is not a setting: two per field is all this schema uses)."""

    max_depth: int
    max_aliases: int
    max_cost: int
    max_tokens: int
    max_bytes: int
    max_directives: int = 50

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return _limits_from_settings(settings)


@functools.cache
def _limits_from_settings(settings: Any) -> Limits:
    return Limits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_cost=settings.max_query_cost,
        max_tokens=settings.max_query_tokens,
        max_bytes=settings.max_query_bytes,
    )


def _sat(value: int) -> int:
    return min(value, SATURATED)


@dataclass(slots=True)
class Measure:
    """Of one selection set (or fragment, or operation).

    ``cost`` counts the values outside the enclosing connection's item lists;
    ``per_item`` the values of its ``edges``/``nodes`` for one item of the page.
    """

    depth: int = 0
    aliases: int = 0
    cost: int = 0
    per_item: int = 0
    uses_variables: bool = False

    def total(self, page: int) -> int:
        return _sat(self.cost + page * self.per_item)


EMPTY = Measure()


@dataclass(frozen=True)
class OperationMeasure:
    node: OperationDefinitionNode
    depth: int
    aliases: int
    cost: int
    uses_variables: bool
    introspection_only: bool = False

    @property
    def name(self) -> str:
        return self.node.name.value if self.node.name else "anonymous"


class _Walker:
    """Measures the definitions of one document; see the module docstring.

    ``variables`` None: validation (a ``first`` from a variable counts 1); else the
    values of the operation about to run, defaults applied.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[str, Measure] = {}
        self.directives = 0
        self.introspection = _introspection_sizes(schema)

    def measure_fragments(self) -> None:
        for name in _dependency_order(self.fragments):
            fragment = self.fragments[name]
            type_ = self.schema.get_type(fragment.type_condition.name.value)
            self.directives += len(fragment.directives or ())
            self.memo[name] = self.selection_set(fragment.selection_set, type_)

    def operation(self, operation: OperationDefinitionNode) -> OperationMeasure:
        root = self.schema.get_root_type(operation.operation)
        self.directives += len(operation.directives or ())
        for definition in operation.variable_definitions or ():
            self.directives += len(definition.directives or ())
        m = self.selection_set(operation.selection_set, root)
        introspection_only = all(
            isinstance(s, FieldNode) and s.name.value in INTROSPECTION_ROOTS
            for s in operation.selection_set.selections
        )
        return OperationMeasure(
            operation, m.depth, m.aliases, m.total(DEFAULT_LIST_SIZE), m.uses_variables,
            introspection_only,
        )  # fmt: skip

    def selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None
    ) -> Measure:
        parts = []
        for selection in selection_set.selections:
            self.directives += len(selection.directives or ())
            if isinstance(selection, FieldNode):
                parts.append(self.field(selection, parent))
            elif isinstance(selection, FragmentSpreadNode):
                parts.append(self.memo.get(selection.name.value, EMPTY))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                type_ = self.schema.get_type(condition.name.value) if condition else parent
                parts.append(self.selection_set(selection.selection_set, type_))
        return Measure(
            max((p.depth for p in parts), default=0),
            _sat(sum(p.aliases for p in parts)),
            _sat(sum(p.cost for p in parts)),
            _sat(sum(p.per_item for p in parts)),
            any(p.uses_variables for p in parts),
        )

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> Measure:
        name = node.name.value
        aliases = 1 if node.alias else 0
        fields = getattr(parent, "fields", None)
        definition = fields.get(name) if fields and not is_input_object_type(parent) else None
        if name == "__typename":
            return Measure(aliases=aliases, cost=1)
        if name in ("__schema", "__type"):  # depth left to MaxIntrospectionDepthRule
            type_ = self.schema.get_type("__Schema" if name == "__schema" else "__Type")
            inner = self._children(node, type_)
            return Measure(0, _sat(aliases + inner.aliases), _sat(1 + inner.total(1)), 0,
                           inner.uses_variables)  # fmt: skip
        type_ = definition.type if definition else None
        inner = self._children(node, get_named_type(type_) if type_ else None)
        depth = 1 + inner.depth if node.selection_set else 0
        aliases = _sat(aliases + inner.aliases)
        uses_variables = inner.uses_variables
        is_list = type_ is not None and is_list_type(
            type_.of_type if is_non_null_type(type_) else type_
        )
        page: int | None = None
        if definition is not None and "first" in definition.args:
            page, from_variable = self._first(node, definition.args["first"].default_value)
            uses_variables = uses_variables or from_variable
        if page is not None and not is_list:  # a connection: its edges hold the page
            return Measure(depth, aliases, _sat(1 + inner.total(page)), 0, uses_variables)
        if not is_list:
            return Measure(depth, aliases, _sat(1 + inner.total(DEFAULT_LIST_SIZE)), 0,
                           uses_variables)  # fmt: skip
        item = _sat(1 + inner.total(DEFAULT_LIST_SIZE))
        if page is not None:
            return Measure(depth, aliases, _sat(page * item), 0, uses_variables)
        if name in PAGED_LISTS and parent is not None and not parent.name.startswith("__"):
            return Measure(depth, aliases, 0, item, uses_variables)
        size = self.introspection.get((parent.name, name), DEFAULT_LIST_SIZE) if parent else 1
        return Measure(depth, aliases, _sat(size * item), 0, uses_variables)

    def _children(self, node: FieldNode, type_: GraphQLNamedType | None) -> Measure:
        return (
            EMPTY if node.selection_set is None else self.selection_set(node.selection_set, type_)
        )

    def _first(self, node: FieldNode, default: Any) -> tuple[int, bool]:
        """The page size a field's ``first`` argument asks for, and whether it came
        from a variable."""
        fallback = default if isinstance(default, int) else DEFAULT_PAGE_SIZE
        argument = next((a for a in node.arguments or () if a.name.value == "first"), None)
        if argument is None:
            return fallback, False
        value = argument.value
        if isinstance(value, IntValueNode):  # no int() of thousands of digits
            return _page(int(value.value) if len(value.value) <= 18 else SATURATED), False
        if isinstance(value, VariableNode):
            if self.variables is None:
                return 1, True
            given = self.variables.get(value.name.value, fallback)
            return (_page(given) if isinstance(given, int) else fallback), True
        return fallback, False


def _page(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return DEFAULT_PAGE_SIZE
    return max(0, min(value, SATURATED))


def _dependency_order(fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Fragment names, each after the fragments it spreads (iterative DFS: chains as
    long as the token limit allows never reach the recursion limit). A spread back
    to a fragment in progress (a cycle) is not followed."""
    spreads = {name: list(_spreads(fragment)) for name, fragment in fragments.items()}
    order: list[str] = []
    seen: set[str] = set()
    for root in fragments:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(spreads[root]))]
        while stack:
            name, pending = stack[-1]
            following = next(pending, None)
            if following is None:
                stack.pop()
                order.append(name)
            elif following in fragments and following not in seen:
                seen.add(following)
                stack.append((following, iter(spreads[following])))
    return order


def _spreads(node: Node) -> Iterator[str]:
    """Names of the fragments spread anywhere in a definition's selections."""
    stack: list[SelectionSetNode] = [node.selection_set]  # type: ignore[attr-defined]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif (
                isinstance(selection, FieldNode | InlineFragmentNode)
                and selection.selection_set is not None
            ):
                stack.append(selection.selection_set)


@functools.cache
def _introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """Sizes of the introspection lists in this schema: ``__Schema.types`` and
    ``directives`` exactly, the others on average over all types (or fields, or
    directives), so that ``types { fields }`` counts this schema's fields."""
    types = list(schema.type_map.values())
    fields = [f for t in types for f in (getattr(t, "fields", None) or {}).values()]

    def per(items: list[Any], count: Any) -> int:
        return max(1, math.ceil(sum(count(i) for i in items) / len(items))) if items else 1

    def listed(attribute: str, applies: Any = lambda t: True) -> Any:
        return lambda t: len(getattr(t, attribute, None) or ()) if applies(t) else 0

    def possible(t: Any) -> int:
        return len(schema.get_possible_types(t)) if is_interface_type(t) else 0

    directives = list(schema.directives)
    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): len(directives),
        ("__Type", "fields"): per(types, listed("fields", lambda t: not is_input_object_type(t))),
        ("__Type", "inputFields"): per(types, listed("fields", is_input_object_type)),
        ("__Type", "interfaces"): per(types, listed("interfaces")),
        ("__Type", "possibleTypes"): per(types, possible),
        ("__Type", "enumValues"): per(types, listed("values")),
        ("__Field", "args"): per(fields, listed("args")),
        ("__Directive", "args"): per(directives, listed("args")),
        ("__Directive", "locations"): per(directives, listed("locations")),
    }  # fmt: skip


def measure_document(
    schema: GraphQLSchema, document: DocumentNode
) -> tuple[list[OperationMeasure], int]:
    """Every operation's measure, ``first`` from variables counted as 1; and the
    number of directives in the document."""
    walker = _Walker(schema, document)
    walker.measure_fragments()
    operations = [
        walker.operation(d) for d in document.definitions if isinstance(d, OperationDefinitionNode)
    ]
    return operations, walker.directives


def operation_measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> OperationMeasure | None:
    """The measure of the operation a request runs, with its variables (defaults
    from the operation's definitions); None when there is no such operation
    (execution reports that)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    operation = operations[0]
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if definition.default_value is not None:
            default = value_from_ast_untyped(definition.default_value)
            values[definition.variable.name.value] = default
    values.update(variables or {})
    walker = _Walker(schema, document, values)
    walker.measure_fragments()
    return walker.operation(operation)


def _shown(value: int) -> str:
    return f"more than {SATURATED:,}" if value >= SATURATED else f"{value:,}"


def _error(node: Node | None, message: str, code: str, limit: int, value: int) -> GraphQLError:
    return GraphQLError(
        message,
        [node] if node is not None else None,
        extensions={"code": code, "limit": limit, "value": min(value, SATURATED)},
    )


@functools.cache
def introspection_allowance(schema: GraphQLSchema) -> int:
    """The cost an introspection-only operation may reach in this schema: twice
    that of the fullest standard introspection query (every option on)."""
    query = get_introspection_query(
        descriptions=True, specified_by_url=True, directive_is_repeatable=True,
        schema_description=True, input_value_deprecation=True, one_of=True,
    )  # fmt: skip
    operations, _ = measure_document(schema, parse(query))
    return 2 * max(m.cost for m in operations)


def cost_error(
    measure: OperationMeasure, limits: Limits, schema: GraphQLSchema
) -> GraphQLError | None:
    limit = limits.max_cost
    if measure.introspection_only:
        limit = max(limit, introspection_allowance(schema))
    if measure.cost <= limit:
        return None
    return _error(
        measure.node,
        f"Operation '{measure.name}' has an estimated cost of {_shown(measure.cost)} "
        f"(values in its result), over the maximum cost of {limit:,} "
        "(SUNRANK_MAX_QUERY_COST): ask for "
        "smaller pages (`first`), fewer fields or fewer aliases.",
        "QUERY_TOO_COSTLY", limit, measure.cost,
    )  # fmt: skip


def check_limits(
    schema: GraphQLSchema, document: DocumentNode, limits: Limits
) -> tuple[list[GraphQLError], bool]:
    """The errors of a document over the limits (one per limit and operation), and
    whether an operation's cost depends on variables (to check again with them)."""
    operations, directives = measure_document(schema, document)
    errors = []
    if directives > limits.max_directives:
        errors.append(_error(
            None,
            f"The document has {directives:,} directives, over the maximum of "
            f"{limits.max_directives} directives.",
            "TOO_MANY_DIRECTIVES", limits.max_directives, directives,
        ))  # fmt: skip
    for m in operations:
        if m.depth > limits.max_depth:
            errors.append(_error(
                m.node,
                f"Operation '{m.name}' has depth {m.depth}, over the maximum depth of "
                f"{limits.max_depth} (SUNRANK_MAX_QUERY_DEPTH; nested selection sets).",
                "QUERY_TOO_DEEP", limits.max_depth, m.depth,
            ))  # fmt: skip
        if m.aliases > limits.max_aliases:
            errors.append(_error(
                m.node,
                f"Operation '{m.name}' uses {_shown(m.aliases)} aliases, over the maximum "
                f"of {limits.max_aliases} aliases (SUNRANK_MAX_QUERY_ALIASES).",
                "TOO_MANY_ALIASES", limits.max_aliases, m.aliases,
            ))  # fmt: skip
        if error := cost_error(m, limits, schema):
            errors.append(error)
    return errors, any(m.uses_variables for m in operations)


@functools.cache
def limits_rule(limits: Limits) -> type[ValidationRule]:
    """A graphql-core validation rule enforcing ``limits``; one class per value, so
    that a validation cache keyed on the rules keeps hitting."""

    class QueryLimitsRule(ValidationRule):
        def enter_document(self, node: DocumentNode, *_args: Any) -> Any:
            for error in check_limits(self.context.schema, node, limits)[0]:
                self.report_error(error)
            return BREAK  # the whole document is measured: nothing left to visit

    return QueryLimitsRule
