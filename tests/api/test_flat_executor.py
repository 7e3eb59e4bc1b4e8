"""app/schema/execution.py: the flat executor answers exactly as graphql-core does
(same data, same errors with the same paths, in the same order), on plain fields
and on everything it hands back to graphql-core."""

from __future__ import annotations

import asyncio
import enum

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.schema.execution import FlatExecutor, plans


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Leaf(Named):
    n: int
    x: float | None
    tags: list[str]
    maybe_tags: list[str | None] | None
    color: Color

    @strawberry.field
    async def slow(self) -> str:
        await asyncio.sleep(0)
        return f"slow {self.name}"

    @strawberry.field
    async def fails(self) -> str:
        await asyncio.sleep(0)
        raise ValueError(f"fails {self.name}")

    @strawberry.field
    def fails_nullable(self) -> str | None:
        raise ValueError(f"nullable fails {self.name}")


@strawberry.type
class Edge:
    cursor: str
    rank: int
    node: Leaf
    maybe_node: Leaf | None
    named: Named


@strawberry.type
class Page:
    edges: list[Edge]
    maybe_edges: list[Edge | None] | None
    total: int
    nested: list[list[int]]


@strawberry.type
class Broken:
    """Values a careless resolver could return: wrong for their declared types."""

    required: str
    bad_int: int
    bad_color: Color
    items: list[Leaf]
    not_a_list: list[int]


def leaf(i: int, **over) -> Leaf:
    values = dict(
        name=f"v{i}", n=i, x=i / 3 if i % 2 else None, tags=[f"t{i}", "u"],
        maybe_tags=None if i == 2 else ["a", None], color=Color.RED if i % 2 else Color.BLUE,
    )  # fmt: skip
    values.update(over)
    return Leaf(**values)


def page() -> Page:
    edges = [
        Edge(cursor=f"c{i}", rank=i, node=leaf(i), maybe_node=leaf(i) if i % 2 else None,
             named=leaf(i + 10))
        for i in range(5)
    ]  # fmt: skip
    return Page(edges=edges, maybe_edges=[edges[0], None, edges[1]], total=5, nested=[[1], [2, 3]])


@strawberry.type
class Query:
    @strawberry.field
    async def page(self) -> Page:
        await asyncio.sleep(0)
        return page()

    @strawberry.field
    def sync_page(self) -> Page:
        return page()

    @strawberry.field
    def broken(self, case: str) -> Broken | None:
        ok = [leaf(0)]
        b = Broken(required="r", bad_int=1, bad_color=Color.RED, items=ok, not_a_list=[1])
        if case == "null_required":
            b.required = None  # type: ignore[assignment]
        elif case == "bad_int":
            b.bad_int = "not an int"  # type: ignore[assignment]
        elif case == "huge_int":
            b.bad_int = 2**40
        elif case == "bad_color":
            b.bad_color = "green"  # type: ignore[assignment]
        elif case == "null_item":
            b.items = [leaf(0), None]  # type: ignore[list-item]
        elif case == "wrong_item":
            b.items = [leaf(0), Edge(cursor="c", rank=1, node=leaf(1), maybe_node=None,
                                     named=leaf(1))]  # type: ignore[list-item]  # fmt: skip
        elif case == "not_a_list":
            b.not_a_list = 5  # type: ignore[assignment]
        elif case == "generator":
            b.not_a_list = (i for i in range(3))  # type: ignore[assignment]
        elif case == "null_leaf_in_list":
            b.items = [leaf(0, tags=["a", None])]
        return b


SELECTION = """
fragment L on Leaf { name n x tags maybeTags color __typename }
query Q($skip: Boolean!) {
  %s {
    total nested
    edges {
      cursor rank
      r2: rank
      node { ...L slow }
      node { n name @skip(if: $skip) }
      maybeNode { name }
      named { name ... on Leaf { n color } __typename }
    }
    maybeEdges { rank node { name } }
  }
}
"""

FAILING = """
{ page { edges { rank node { name fails } } } }
"""
FAILING_NULLABLE = """
{ page { edges { rank node { name failsNullable } } maybeEdges { node { failsNullable } } } }
"""
BROKEN = '{ broken(case: "%s") { required badInt badColor items { name tags } notAList } }'


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    flat = strawberry.Schema(query=Query, execution_context_class=FlatExecutor)
    plain = strawberry.Schema(
        query=Query, execution_context_class=StrawberryGraphQLCoreExecutionContext
    )
    return flat, plain


def shape(result) -> tuple:
    errors = [(e.message, e.path, [(loc.line, loc.column) for loc in e.locations or []])
              for e in result.errors or []]  # fmt: skip
    return result.data, errors


QUERIES = [
    (SELECTION % "page", {"skip": False}),
    (SELECTION % "page", {"skip": True}),
    (SELECTION % "syncPage", {"skip": False}),
    (FAILING, None),
    (FAILING_NULLABLE, None),
    *[
        (BROKEN % case, None)
        for case in (
            "ok",
            "null_required",
            "bad_int",
            "huge_int",
            "bad_color",
            "null_item",
            "wrong_item",
            "not_a_list",
            "generator",
            "null_leaf_in_list",
        )
    ],
]


@pytest.mark.parametrize(("query", "variables"), QUERIES)
async def test_same_answer_as_graphql_core(query: str, variables: dict | None) -> None:
    flat, plain = schemas()
    got = await flat.execute(query, variable_values=variables)
    want = await plain.execute(query, variable_values=variables)
    assert shape(got) == shape(want)
    if "broken" not in query and "fails" not in query.lower():
        assert not want.errors


async def test_plain_fields_take_the_flat_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """graphql-core's execute_field runs for the fields with a resolver only."""
    general: list[str] = []
    original = StrawberryGraphQLCoreExecutionContext.execute_field

    def spy(self, parent_type, source, fields, path, position):
        general.append(f"{parent_type.name}.{path.key}")
        return original(self, parent_type, source, fields, path, position)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_field", spy)
    flat, _ = schemas()
    result = await flat.execute(SELECTION % "page", variable_values={"skip": False})
    assert not result.errors
    assert set(general) == {
        "Query.page",
        "Leaf.slow",
        "Page.nested",
        "Edge.named",
        "Leaf.__typename",
    }  # resolvers, a list of lists, an interface, introspection
    general.clear()
    result = await schemas()[1].execute(SELECTION % "page", variable_values={"skip": False})
    assert {"Edge.cursor", "Edge.r2", "Leaf.tags", "Page.edges"} <= set(general)  # the spy works


def test_only_attribute_fields_are_planned() -> None:
    flat, _ = schemas()
    leaf_type = flat._schema.get_type("Leaf")
    found = plans(leaf_type)  # type: ignore[arg-type]
    assert {name for name, plan in found.items() if plan is not None} == {
        "name",
        "n",
        "x",
        "tags",
        "maybeTags",
        "color",
    }  # resolvers (slow, fails) go through graphql-core
    page_plans = plans(flat._schema.get_type("Page"))  # type: ignore[arg-type]
    assert page_plans["nested"] is None  # a list of lists: graphql-core's path
    assert page_plans["edges"] is not None
    edge_plans = plans(flat._schema.get_type("Edge"))  # type: ignore[arg-type]
    assert edge_plans["named"] is None  # an interface: graphql-core's path


async def test_the_app_schema_uses_it() -> None:
    from app.schema import build_schema

    assert build_schema().execution_context_class is FlatExecutor
