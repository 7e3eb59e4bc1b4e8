"""Strategies and checks for the GraphQL fuzz test (tests/api/test_fuzz.py).

Documents come from hypothesis-graphql (valid ones, and ones with a single schema
violation), with our own strategies for every scalar so that arguments mix values
the server knows (YouTube ids, usernames, criteria and global ids of the sample
dataset) with hostile ones (NUL bytes, lone surrogates, look-alike letters, huge
and non-finite numbers, long strings, forged cursors and ids, extreme dates).
A document's literal arguments can be moved into variables, some of which are
then swapped for arbitrary JSON (wrong types, NaN, deep lists). Raw bodies cover
what no GraphQL document can: non-JSON, JSON of the wrong shape, invalid UTF-8,
odd content types and methods.
"""

from __future__ import annotations

import base64
import csv
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

import graphql
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from app.criteria import CRITERION_NAMES
from app.schema import sdl
from tests.conftest import SAMPLE

# ---------------------------------------------------------------------------------
# Values the server knows: a valid value reaches deeper code than random text.


def _sample_column(file: str, column: str) -> list[str]:
    with (SAMPLE / file).open(newline="") as handle:
        return sorted({row[column] for row in csv.DictReader(handle)})


YOUTUBE_IDS = _sample_column("comparisons.csv", "video_a")[:20]
USERNAMES = _sample_column("users.csv", "public_username")
CURSOR_KINDS = ("rank", "video", "comparison", "rating", "later")


def global_id(type_name: str, key: object) -> str:
    """A relay global id as strawberry encodes it: base64("Type:key")."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def cursor(*parts: object) -> str:
    """A keyset cursor as app/resolvers/pagination.py encodes it."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


# ---------------------------------------------------------------------------------
# Hostile values


HUGE_INTS = (2**31, -(2**31) - 1, 2**53 + 1, 10**30, -(10**30), 10**400)
ODD_TEXT = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",  # a lone surrogate: valid in JSON ("\\ud800"), not encodable as UTF-8
    "x\udfffy",
    "\u202eevil",
    "\ufeff",
    "\u200b",
    "e\u0301" * 500,
    "аdmin",  # Cyrillic а
    "ａｄｍｉｎ",  # fullwidth
    "Admin",
    "admin ",
    "𝕒𝕕𝕞𝕚𝕟",
    "%",
    "_",
    "%_%\\",
    "' OR 1=1 --",
    "\\",
    "\n\r\t",
    "null",
    "NaN",
    "1e400",
    "x" * 100_000,
    "é" * 20_000,
    "😀" * 1000,
)
ODD_DATES = (
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00",
    "9999-12-31",
    "2024-01-01T00:00:00",
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00+05:30",
    "2024-06-30T23:59:59.999999-09:00",
    "2024-02-30T00:00:00",
    "2024-13-01",
    "+002024-01-01",
    "20240101T000000",
    "2024-01-01T24:00:00",
    "now",
    "",
    "\x00",
)


def _json_scalars() -> st.SearchStrategy[Any]:
    return (
        st.none()
        | st.booleans()
        | st.integers()
        | st.sampled_from(HUGE_INTS)
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=20)
        | st.sampled_from(ODD_TEXT[:12])
    )


def hostile_json() -> st.SearchStrategy[Any]:
    """Any JSON value, including NaN/Infinity (Python's json accepts them), huge
    integers, lone surrogates, and nested lists and objects."""
    deep = st.integers(min_value=1, max_value=200).map(_nested_list)
    return deep | st.recursive(
        _json_scalars(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )


def _nested_list(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def _cursor_strings() -> st.SearchStrategy[str]:
    keys = st.lists(_json_scalars() | st.lists(st.integers(), max_size=2), max_size=3)
    forged = st.tuples(st.sampled_from(CURSOR_KINDS), keys).map(lambda t: cursor(t[0], *t[1]))
    junk = st.sampled_from(("", "=", "====", "!!", "bm90IGpzb24", "WyJ2aWRlbyJd", "W10="))
    return forged | junk | st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())


def _id_strings() -> st.SearchStrategy[str]:
    valid = (
        st.sampled_from(YOUTUBE_IDS).map(lambda v: global_id("Video", v))
        | st.integers(1, 3000).map(lambda n: global_id("Comparison", n))
        | st.sampled_from(USERNAMES).map(lambda u: global_id("User", u))
    )
    forged = st.tuples(
        st.sampled_from(("Video", "Comparison", "User", "Me", "Unknown", "Query", "", "node")),
        st.sampled_from(("1", "-1", "²", "٣", "0x10", "1e3", " 1", "", "\x00", str(10**30)))
        | st.text(max_size=12),
    ).map(lambda t: global_id(*t))
    raw = st.sampled_from(("1", "²", "Video:1", ":", "", "%%%", "\x00"))
    undecodable = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())
    return valid | forged | raw | undecodable


def _strings() -> st.SearchStrategy[str]:
    known = st.sampled_from(
        (*YOUTUBE_IDS, *USERNAMES, *CRITERION_NAMES, "en", "fr", "root_admin", "aidjango")
    )
    return st.one_of(
        known,
        known,  # twice as likely: valid values reach deeper code
        st.sampled_from(ODD_TEXT),
        st.text(st.characters(codec=None), max_size=30),
        _cursor_strings(),
        _id_strings(),
        st.sampled_from(ODD_DATES),
    )


def _ints() -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from((0, 1, -1, 2, 10, 11, -11, 20, 21, 100, 101, 2**31 - 1, -(2**31))),
        st.integers(min_value=-(2**31), max_value=2**31 - 1),
        st.sampled_from(HUGE_INTS),  # out of GraphQL's Int range: a validation error
    )


def _float_literals() -> st.SearchStrategy[str]:
    # GraphQL literals have no NaN; 1e400 parses to infinity.
    specials = st.sampled_from(("1e400", "-1e400", "1e-400", "-0.0", "1e308", "0.5", "100.0"))
    finite = st.floats(allow_nan=False, allow_infinity=False).map(repr)
    return specials | finite


def _iso(moment: datetime) -> graphql.StringValueNode:
    return nodes.String(moment.isoformat())


def scalar_values() -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """hypothesis-graphql ``custom_scalars``: every scalar of the schema, built-ins
    included (they are looked up by name before the library's own strategies)."""
    return {
        "String": _strings().map(nodes.String),
        "ID": _id_strings().map(nodes.String) | _ints().map(nodes.Int),
        # past Python's 4,300-digit int() limit: only a literal can carry it
        "Int": _ints().map(nodes.Int) | st.just(graphql.IntValueNode(value="9" * 5000)),
        "Float": _float_literals().map(lambda v: graphql.FloatValueNode(value=v))
        | _ints().map(nodes.Int),
        "DateTime": _dates(),
    }


def _youtube_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(YOUTUBE_IDS),
        st.text(st.characters(codec=None), min_size=11, max_size=11),  # the right length
        st.sampled_from(("dQw4w9WgXcQ", "²²²²²²²²²²²", "a" * 10, "a" * 12, "a\x00" * 5 + "a")),
        st.sampled_from(ODD_TEXT),
    )


def _dates() -> st.SearchStrategy[graphql.ValueNode]:
    return (
        st.sampled_from(ODD_DATES).map(nodes.String)
        | st.datetimes(timezones=st.none() | st.timezones()).map(_iso)
        | _ints().map(nodes.Int)
    )


def _list_of(items: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[graphql.ValueNode]:
    return st.lists(items.map(nodes.String), max_size=max_size).map(nodes.List)


# Values aimed at one argument or input field, by name: a cursor in `after`, an id in
# `id`, a date in `publishedAfter`... (scalar strategies only know the type).
AIMED_VALUES: dict[str, Callable[[], st.SearchStrategy[graphql.ValueNode]]] = {
    "after": lambda: _cursor_strings().map(nodes.String),
    "id": lambda: _id_strings().map(nodes.String),
    "youtubeId": lambda: _youtube_ids().map(nodes.String),
    "videoA": lambda: _youtube_ids().map(nodes.String),
    "videoB": lambda: _youtube_ids().map(nodes.String),
    "youtubeIds": lambda: _list_of(_youtube_ids(), 150),
    "criteria": lambda: _list_of(st.sampled_from(CRITERION_NAMES) | _strings(), 30),
    "criterion": lambda: (st.sampled_from(CRITERION_NAMES) | _strings()).map(nodes.String),
    "username": lambda: (st.sampled_from(USERNAMES) | _strings()).map(nodes.String),
    "publishedAt": _dates,
    "publishedAfter": _dates,
    "publishedBefore": _dates,
    "first": lambda: _ints().map(nodes.Int),
    "search": lambda: _strings().map(nodes.String),
}


@cache
def _aimed(name: str) -> st.SearchStrategy[graphql.ValueNode]:
    return AIMED_VALUES[name]()


def aim_arguments(document: graphql.DocumentNode, draw: st.DrawFn) -> graphql.DocumentNode:
    """Replace about half the values of the arguments and input fields named in
    AIMED_VALUES with values aimed at them."""

    def aimed(node: Any) -> Any:
        name = node.name.value
        if name in AIMED_VALUES and draw(st.booleans()):
            return replace(node, value=draw(_aimed(name)))
        return None

    class Aim(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
            return aimed(node)

        def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> Any:
            return aimed(node)

    return graphql.visit(document, Aim())


# ---------------------------------------------------------------------------------
# Documents


@cache
def schema() -> graphql.GraphQLSchema:
    return graphql.build_schema(sdl())


@cache
def _subscription_root_schema() -> graphql.GraphQLSchema:
    # hypothesis-graphql generates queries and mutations only: present the
    # Subscription type as a query root, and relabel the generated operation.
    full = schema()
    assert full.subscription_type is not None
    return graphql.GraphQLSchema(query=full.subscription_type, types=list(full.type_map.values()))


def _as_kind(kind: graphql.OperationType) -> Callable[[graphql.DocumentNode], graphql.DocumentNode]:
    def relabel(document: graphql.DocumentNode) -> graphql.DocumentNode:
        (operation,) = document.definitions
        return replace(document, definitions=(replace(operation, operation=kind),))

    return relabel


def _identity(document: graphql.DocumentNode) -> graphql.DocumentNode:
    return document


def _has_required_argument(field_: graphql.GraphQLField) -> bool:
    return any(map(graphql.is_required_argument, field_.args.values()))


@cache
def documents(kind: str, mode: Mode) -> st.SearchStrategy[graphql.DocumentNode]:
    """Documents of one operation type. Mutations have a single root field, so that
    its ``userErrors`` speak for the whole request."""
    full = schema()
    custom = scalar_values()
    if kind == "query":
        return queries(full, custom_scalars=custom, print_ast=_identity, mode=mode)
    if kind == "subscription":
        return queries(
            _subscription_root_schema(), custom_scalars=custom, mode=mode,
            print_ast=_as_kind(graphql.OperationType.SUBSCRIPTION),
        )  # fmt: skip
    assert kind == "mutation" and full.mutation_type is not None
    names = sorted(full.mutation_type.fields)
    if mode is Mode.NEGATIVE:  # the library violates required arguments
        names = [n for n in names if _has_required_argument(full.mutation_type.fields[n])]
    return st.one_of(
        *(
            mutations(full, fields=[name], custom_scalars=custom, print_ast=_identity, mode=mode)
            for name in names
        )
    )


def root_fields(document: graphql.DocumentNode) -> list[str]:
    (operation,) = document.definitions
    assert isinstance(operation, graphql.OperationDefinitionNode)
    return [
        s.name.value for s in operation.selection_set.selections if isinstance(s, graphql.FieldNode)
    ]


def lift_arguments(document: graphql.DocumentNode) -> tuple[graphql.DocumentNode, dict[str, Any]]:
    """Move every root-level argument literal into a variable of the argument's
    type: the same request, sent the way real clients send it."""
    full = schema()
    (operation,) = document.definitions
    assert isinstance(operation, graphql.OperationDefinitionNode)
    root = full.get_root_type(operation.operation)
    if operation.operation is graphql.OperationType.SUBSCRIPTION:
        root = full.subscription_type
    assert root is not None
    definitions: list[graphql.VariableDefinitionNode] = []
    variables: dict[str, Any] = {}
    selections = []
    for selection in operation.selection_set.selections:
        if not isinstance(selection, graphql.FieldNode) or selection.name.value not in root.fields:
            selections.append(selection)
            continue
        field_ = root.fields[selection.name.value]
        arguments = []
        for argument in selection.arguments:
            schema_argument = field_.args.get(argument.name.value)
            if schema_argument is None:  # an unknown argument (negative mode): keep it
                arguments.append(argument)
                continue
            variable = graphql.VariableNode(name=graphql.NameNode(value=f"v{len(definitions)}"))
            definitions.append(
                graphql.VariableDefinitionNode(
                    variable=variable,
                    type=graphql.parse_type(str(schema_argument.type)),
                    directives=(),
                )
            )
            # (an integer literal too long for int() becomes NaN: hostile too)
            variables[variable.name.value] = graphql.value_from_ast_untyped(argument.value)
            arguments.append(replace(argument, value=variable))
        selections.append(replace(selection, arguments=tuple(arguments)))
    operation = replace(
        operation,
        variable_definitions=tuple(definitions),
        selection_set=replace(operation.selection_set, selections=tuple(selections)),
    )
    document = replace(document, definitions=(operation,))
    return document, variables


# ---------------------------------------------------------------------------------
# Raw HTTP requests


@dataclass(frozen=True)
class RawRequest:
    method: str
    content: bytes = b""
    content_type: str | None = "application/json"
    params: dict[str, str] = field(default_factory=dict)
    headers: tuple[tuple[str, bytes], ...] = ()  # over the signed-in identity's

    def __repr__(self) -> str:  # close to a curl command
        ctype = f" -H 'content-type: {self.content_type}'" if self.content_type else ""
        headers = "".join(f" -H {name}:{value!r}" for name, value in self.headers)
        body = f" --data-binary {self.content!r}" if self.content else ""
        query = f" params={self.params!r}" if self.params else ""
        return f"curl -X {self.method}{ctype}{headers}{body} /graphql{query}"


ODD_HEADERS = st.sampled_from(
    (
        ("authorization", b"Bearer"),
        ("authorization", b"Bearer  x"),
        ("authorization", b"Bearer " + b"x" * 10_000),
        ("authorization", b"Bearer \xff\xfe"),
        ("authorization", b"Bearer a b"),
        ("authorization", b"bearer abc"),
        ("authorization", b"Basic YTpi"),
        ("x-request-id", b"\xff" * 20),
        ("x-request-id", b"a" * 10_000),
        ("x-request-id", b"../../etc/passwd"),
        ("x-forwarded-for", b"not-an-ip, \xff"),
        ("content-encoding", b"gzip"),  # the body is not gzip
        ("accept", b"text/html"),
        ("accept", b"application/graphql-response+json"),
        ("accept-charset", b"utf-32"),
    )
)


def dumps(value: Any) -> bytes:
    """JSON as Python writes it: NaN and Infinity allowed, lone surrogates escaped."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def deep_variables(depth: int) -> bytes:
    # Deeper than json.dumps can write; the server's parser must still cope. At least
    # 5,000 levels: hypothesis raises the recursion limit by 2,000 while it runs a test
    # (the server runs in this process), and the outcome must not depend on that.
    return (
        b'{"query": "query($x: [String!]) { criteria { name } }", "variables": {"x": '
        + b"[" * depth
        + b"]" * depth
        + b"}}"
    )


def raw_requests() -> st.SearchStrategy[RawRequest]:
    query = st.sampled_from(
        (
            "{ criteria { name } }",
            "{ stats { users } }",
            "mutation { logout { revokedTokens } }",
            'subscription { scoresUpdated(youtubeIds: ["x"]) { youtubeId } }',
            "{",
            "",
            "query A { stats { users } } query B { criteria { name } }",
            # would change the database if a GET could run a mutation
            'mutation { addToRateLater(input: {youtubeId: "VIDEO"}) { video { url } } }'.replace(
                "VIDEO", YOUTUBE_IDS[0]
            ),
            'mutation { vouch(input: {username: "USER"}) { user { trust } } }'.replace(
                "USER", USERNAMES[1]
            ),
        )
    )
    wrong_shapes = st.one_of(
        hostile_json(),
        st.fixed_dictionaries(
            {"query": hostile_json() | query},
            optional={
                "variables": hostile_json(),
                "operationName": hostile_json() | st.sampled_from(("A", "B", "C")),
                "extensions": hostile_json(),
            },
        ),
        st.lists(st.fixed_dictionaries({"query": query}), max_size=3),  # batches
    ).map(dumps)
    not_json = st.one_of(
        st.binary(max_size=64),
        st.sampled_from(
            (
                b"",
                b"{",
                b"nul",
                b'"hello"',
                b"null",
                b"[]",
                b"\xff\xfe",
                b'{"query": "\xff"}',
                b'{"query": "{ criteria { name } }", "variables": {"x": "\xc3\x28"}}',
                b'\xef\xbb\xbf{"query": "{ stats { users } }"}',
                b'{"query": 1e999}',
            )
        ),
        st.integers(min_value=5_000, max_value=200_000).map(deep_variables),
    )
    content_types = st.sampled_from(
        (
            "application/json",
            "application/json; charset=latin-1",
            "application/graphql",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "application/graphql-response+json",
            None,
        )
    )
    headers = st.lists(ODD_HEADERS, max_size=2, unique_by=lambda h: h[0]).map(tuple)
    posts = st.builds(
        RawRequest, st.just("POST"), wrong_shapes | not_json, content_types, headers=headers
    )
    gets = st.builds(
        RawRequest,
        st.just("GET"),
        content_type=st.none(),
        params=st.fixed_dictionaries(
            {"query": query | st.text(max_size=30)},
            optional={"variables": st.text(max_size=30) | hostile_json().map(json.dumps)},
        ),
        headers=headers,
    )
    others = st.builds(
        RawRequest, st.sampled_from(("PUT", "DELETE", "PATCH", "OPTIONS")), headers=headers
    )
    return posts | gets | others


# ---------------------------------------------------------------------------------
# Properties


TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/')


def response_problems(status: int, text: str) -> list[str]:
    """What is wrong with an answer, whatever the request: a 5xx, a traceback, a
    masked internal error, an error without a message."""
    problems = []
    if status >= 500:
        problems.append(f"status {status}")
    if any(marker in text for marker in TRACEBACK_MARKERS):
        problems.append("a traceback in the response")
    try:
        body = json.loads(text)
    except ValueError:
        return problems
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            problems.append(f"an error without a message: {error!r}")
            continue
        code = (error.get("extensions") or {}).get("code")
        if code == "INTERNAL_SERVER_ERROR" or error["message"].startswith("Internal server error"):
            problems.append(f"internal error: {error['message']}")
        elif not error["message"].strip():
            problems.append(f"an empty error message: {error!r}")
        if "stacktrace" in (error.get("extensions") or {}):
            problems.append("a stack trace in the error")
    return problems


def rejected(status: int, body: Any) -> bool:
    """Refused as a whole: an HTTP error, an error before execution (no path) or in
    a root field itself, or ``userErrors`` in a root field's payload. An error deeper
    down (a bad ``after:`` in a mutation payload's selection) comes after the root
    field has done its work, which then rightly stays done."""
    if status >= 400 or not isinstance(body, dict):
        return True
    for error in body.get("errors") or []:
        if not isinstance(error, dict) or len(error.get("path") or []) <= 1:
            return True
    data = body.get("data")
    payloads = data.values() if isinstance(data, dict) else []
    return any(isinstance(p, dict) and p.get("userErrors") for p in payloads)


# Written in the background, not by the request: trust by the learner, last use of
# a token on every authenticated request.
VOLATILE_COLUMNS = {"trust", "last_used_at"}


async def fingerprint(db_url: str, tables: tuple[str, ...]) -> dict[str, Any]:
    """A digest per table of every row the API writes (the event log included),
    without the columns background work moves."""
    if db_url.startswith("sqlite://"):
        return _sqlite_fingerprint(db_url.removeprefix("sqlite://"), tables)
    import asyncpg

    volatile = " ".join(f"- '{column}'" for column in sorted(VOLATILE_COLUMNS))
    sql = " UNION ALL ".join(
        f"SELECT '{table}', md5(coalesce(string_agg((to_jsonb(t) {volatile})::text, ','"
        f" ORDER BY t.id), '')) FROM \"{table}\" t"
        for table in tables
    )
    conn = await asyncpg.connect(db_url.replace("postgres://", "postgresql://"))
    try:
        return {table: digest for table, digest in await conn.fetch(sql)}
    finally:
        await conn.close()


def _sqlite_fingerprint(path: str, tables: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}" ORDER BY id')
            names = [d[0] for d in rows.description]
            keep = [i for i, n in enumerate(names) if n not in VOLATILE_COLUMNS]
            out[table] = hash(tuple(tuple(row[i] for i in keep) for row in rows))
    return out


# ---------------------------------------------------------------------------------
# Raw WebSocket frames (graphql-transport-ws)

WS_MESSAGE_TYPES = (
    "connection_init", "subscribe", "complete", "ping", "pong", "next", "error",
    "connection_ack", "start", "stop", "connection_terminate", "",
)  # fmt: skip


def ws_frames() -> st.SearchStrategy[list[str | bytes]]:
    """A session's frames after the handshake: protocol messages with odd ids and
    payloads, messages of the other protocol (graphql-ws), non-JSON and binary."""
    payload = hostile_json() | st.fixed_dictionaries(
        {"query": st.sampled_from(("{ stats { users } }", "{", "subscription { x }"))},
        optional={"variables": hostile_json(), "operationName": hostile_json()},
    )
    message = st.fixed_dictionaries(
        {"type": st.sampled_from(WS_MESSAGE_TYPES) | hostile_json()},
        optional={"id": st.sampled_from(("1", "", "x" * 10_000)) | hostile_json(),
                  "payload": payload},
    ).map(lambda m: dumps(m).decode())  # fmt: skip
    other = st.one_of(
        hostile_json().map(lambda v: dumps(v).decode()),
        st.text(max_size=40),
        st.binary(max_size=40),
    )
    return st.lists(message | other, min_size=1, max_size=5)
