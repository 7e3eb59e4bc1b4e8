"""GraphQL document limits (app/schema/limits.py, app/schema/documents.py): the
measures on documents, then over real HTTP and WebSocket on both backends.

No timed assertions: documents that froze the server before (a fragment explosion)
are sent under ``asyncio.wait_for``, which fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
import websockets
from graphql import get_introspection_query, parse, validate

from app.config import ConfigError, load_settings
from app.schema import build_schema, documents
from app.schema.documents import BoundedLRU
from app.schema.limits import (
    SATURATED,
    Limits,
    check_limits,
    limits_rule,
    measure_document,
    operation_measure,
)
from tests.api.conftest import ADMIN

WAIT = 60  # seconds before a request counts as hung
in_server_loop = pytest.mark.asyncio(loop_scope="session")  # the loop of the `api` server
DEFAULTS = Limits.from_settings(load_settings({}))
SCORES = "edges { node { youtubeId scores { criterion score uncertainty } } }"


def explosion(levels: int) -> str:
    """Each fragment spreads the next twice: 2^levels fields if expanded."""
    return (
        "query { ...F0 } "
        + " ".join(
            f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} criteria {{ name }} }}"
            for i in range(levels)
        )
        + f" fragment F{levels} on Query {{ stats {{ users }} }}"
    )


def measures(query: str) -> list[tuple[int, int, int]]:
    operations, _ = measure_document(build_schema()._schema, parse(query))
    return [(m.depth, m.aliases, m.cost) for m in operations]


def codes(body: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


# --------------------------------------------------------------------------- documents
def test_the_cost_model_on_documents():
    # a scalar is 1; a plain list is 10 items (one per criterion)
    assert measures("{ stats { users } }") == [(1, 0, 2)]
    assert measures("{ criteria { name } }") == [(1, 0, 20)]
    # a connection yields `first` items in its edges; pageInfo is not multiplied
    assert measures("{ rankings(first: 3) { edges { node { youtubeId } } } }") == [(3, 0, 10)]
    assert measures(
        "{ rankings(first: 3) { totalCount pageInfo { hasNextPage } edges { rank } } }"
    ) == [(2, 0, 1 + 1 + 2 + 3 * 2)]
    # no `first`: the schema's default page size (20); a list with `first` (5 items)
    assert measures("{ rankings { edges { rank } } }") == [(2, 0, 1 + 20 * 2)]
    assert measures("{ suggestions(first: 5) { reason } }") == [(1, 0, 5 * 2)]
    # nesting multiplies: 100 items × (edge + node + youtubeId + 10 × 4 scores)
    assert measures(f"{{ rankings(first: 100) {{ {SCORES} }} }}") == [(4, 0, 1 + 100 * 43)]
    # a fragment counts each time it is spread, aliases included
    assert measures(
        "{ ...S ...S } fragment S on Query { a: stats { users } b: stats { videos } }"
    ) == [(1, 4, 8)]


def test_the_lead_example_is_rejected_by_cost_and_a_large_page_is_not():
    twenty = " ".join(f"a{i}: rankings(first: 100) {{ {SCORES} }}" for i in range(20))
    errors, _ = check_limits(build_schema()._schema, parse(f"{{ {twenty} }}"), DEFAULTS)
    assert [e.extensions["code"] for e in errors] == ["QUERY_TOO_COSTLY"]
    assert f"{DEFAULTS.max_cost:,}" in errors[0].message and "86,020" in errors[0].message
    one = f"{{ rankings(first: 100) {{ totalCount {SCORES} }} }}"
    assert check_limits(build_schema()._schema, parse(one), DEFAULTS) == ([], False)


def test_graphiql_introspection_fits_every_limit():
    query = get_introspection_query(descriptions=True, input_value_deprecation=True)
    assert len(query.encode()) <= DEFAULTS.max_bytes
    document = parse(query, max_tokens=DEFAULTS.max_tokens)
    assert check_limits(build_schema()._schema, document, DEFAULTS) == ([], False)


def test_introspection_allowance_grows_with_the_schema_but_still_bounds_copies():
    """The schema must always be readable (its full introspection may cost more
    than SUNRANK_MAX_QUERY_COST as the schema grows), but aliased copies of it, or
    data fields beside it, get no such allowance."""
    schema = build_schema()._schema
    full = get_introspection_query(descriptions=True, input_value_deprecation=True)
    body = full[full.index("__schema") : full.index("fragment")].strip()[:-1]
    fragments = full[full.index("fragment") :]
    tight = Limits(**{**DEFAULTS.__dict__, "max_cost": 1_000})
    assert check_limits(schema, parse(full), tight) == ([], False)
    copies = "query Q {" + " ".join(f"s{i}: {body}" for i in range(3)) + "}" + fragments
    errors, _ = check_limits(schema, parse(copies), tight)
    assert [e.extensions["code"] for e in errors] == ["QUERY_TOO_COSTLY"]
    mixed = "query Q {" + body + " rankings(first: 1) { totalCount } }" + fragments
    errors, _ = check_limits(schema, parse(mixed), tight)
    assert [e.extensions["code"] for e in errors] == ["QUERY_TOO_COSTLY"]


def test_fragment_explosion_saturates_instead_of_expanding():
    _, _, cost = measures(explosion(30))[0]
    assert cost == SATURATED or cost > 2**30
    errors, _ = check_limits(build_schema()._schema, parse(explosion(30)), DEFAULTS)
    assert [e.extensions["code"] for e in errors] == ["QUERY_TOO_COSTLY"]
    # aliases explode too, and saturate
    aliased = explosion(60).replace("criteria {", "c: criteria {")
    _, aliases, cost = measures(aliased)[0]
    assert aliases == SATURATED and cost == SATURATED


def test_cycles_and_long_chains_terminate():
    cycle = "{ ...A } fragment A on Query { ...B stats { users } } fragment B on Query { ...A }"
    assert measures(cycle) == [(1, 0, 2)]
    # longer than the recursion limit: the fragments are ordered without recursion
    n = sys.getrecursionlimit() + 100
    chain = "{ ...F0 } " + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(n))
    chain += f" fragment F{n} on Query {{ stats {{ users }} }}"
    assert measures(chain) == [(1, 0, 2)]


def test_depth_aliases_directives_and_unknown_fields():
    schema = build_schema()._schema
    deep = parse("{ a " + "{ b " * 11 + "}" * 12)  # unknown fields still have a depth
    errors, _ = check_limits(schema, deep, DEFAULTS)
    assert [e.extensions["code"] for e in errors] == ["QUERY_TOO_DEEP"]
    assert errors[0].extensions == {"code": "QUERY_TOO_DEEP", "limit": 10, "value": 11}
    aliases = parse("{ " + " ".join(f"a{i}: stats {{ users }}" for i in range(21)) + " }")
    errors, _ = check_limits(schema, aliases, DEFAULTS)
    assert [e.extensions["code"] for e in errors] == ["TOO_MANY_ALIASES"]
    flood = parse("{ stats " + "@skip(if: false) " * 51 + "{ users } }")
    errors, _ = check_limits(schema, flood, DEFAULTS)
    assert [e.extensions["code"] for e in errors] == ["TOO_MANY_DIRECTIVES"]
    # introspection is left out of the depth (MaxIntrospectionDepthRule bounds it)
    nested = '{ __type(name: "Video") { ' + "ofType { " * 12 + "name" + " }" * 12 + " } }"
    assert check_limits(schema, parse(nested), DEFAULTS) == ([], False)


def test_variables_cost_at_least_one_until_the_request_gives_them():
    schema = build_schema()._schema
    query = (
        "query($n: Int!, $m: Int = 7) { a: rankings(first: $n) { edges { rank } } "
        "b: rankings(first: $m) { edges { rank } } }"
    )
    document = parse(query)
    assert measures(query) == [(2, 2, 2 * (1 + 1 * 2))]
    assert check_limits(schema, document, DEFAULTS) == ([], True)
    given = operation_measure(schema, document, None, {"n": 50})
    assert given is not None and given.cost == (1 + 50 * 2) + (1 + 7 * 2)
    # not an integer (the executor will refuse it): the schema's default page size
    assert operation_measure(schema, document, None, {"n": "x", "m": 1}).cost == 41 + 3


def test_the_rule_runs_inside_graphql_validate_and_is_built_once_per_limits():
    strict = Limits(**{**DEFAULTS.__dict__, "max_cost": 5})
    assert limits_rule(strict) is limits_rule(Limits(**strict.__dict__))
    errors = validate(build_schema()._schema, parse("{ criteria { name } }"), [limits_rule(strict)])
    assert [e.extensions["code"] for e in errors] == ["QUERY_TOO_COSTLY"]


def test_limits_come_from_settings():
    settings = load_settings({"SUNRANK_MAX_QUERY_COST": "100", "SUNRANK_MAX_QUERY_BYTES": "512"})
    limits = Limits.from_settings(settings)
    assert (limits.max_cost, limits.max_bytes, limits.max_depth) == (100, 512, 10)
    with pytest.raises(ConfigError, match="SUNRANK_MAX_QUERY_DEPTH"):
        load_settings({"SUNRANK_MAX_QUERY_DEPTH": "0"})


def test_bounded_lru_keeps_within_entries_and_bytes():
    lru: BoundedLRU[str, int] = BoundedLRU(max_entries=3, max_bytes=100)
    for i in range(5):
        lru.put(f"k{i}", i, 20)
    assert len(lru) == 3 and lru.bytes == 60 and lru.get("k0") is None
    lru.get("k2")  # most recently used now
    lru.put("big", 0, 24)
    lru.put("k5", 5, 24)
    assert lru.bytes <= 100 and lru.get("k2") == 2 and lru.get("k3") is None
    lru.put("huge", 0, 26)  # over a quarter of the budget: not kept
    assert lru.get("huge") is None


# --------------------------------------------------------------------------- over HTTP
@in_server_loop
async def test_fragment_explosion_is_refused_and_healthz_answers_meanwhile(api):
    query = asyncio.create_task(api.gql(explosion(30)))
    health = await asyncio.wait_for(api.client.get("/healthz"), WAIT)
    assert health.status_code == 200
    body = await asyncio.wait_for(query, WAIT)
    assert codes(body) == ["QUERY_TOO_COSTLY"], body
    assert body["data"] is None


@in_server_loop
async def test_limit_errors_name_the_limit(api):
    deep = await api.gql("{ a " + "{ b " * 11 + "}" * 12)
    assert "QUERY_TOO_DEEP" in codes(deep) and "maximum depth of 10" in str(deep)
    aliases = "{ " + " ".join(f"a{i}: stats {{ users }}" for i in range(21)) + " }"
    body = await api.gql(aliases)
    assert codes(body) == ["TOO_MANY_ALIASES"] and "maximum of 20 aliases" in str(body)
    twenty = " ".join(f"a{i}: rankings(first: 100) {{ {SCORES} }}" for i in range(20))
    body = await api.gql(f"{{ {twenty} }}")
    assert codes(body) == ["QUERY_TOO_COSTLY"] and "maximum cost of 50,000" in str(body)
    assert body["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COSTLY", "limit": 50_000, "value": 86_020,
    }  # fmt: skip
    body = await api.gql("{ stats " + "@skip(if: false) " * 51 + "{ users } }")
    assert codes(body) == ["TOO_MANY_DIRECTIVES"]
    # an integer literal Python's int() refuses to read (over 4,300 digits)
    body = await api.gql("{ rankings(first: " + "9" * 5000 + ") { totalCount } }")
    assert codes(body) == ["BAD_NUMBER"], body
    # a shallow, reasonable page passes
    body = await api.gql(f"{{ rankings(first: 100, includeUnsafe: true) {{ {SCORES} }} }}")
    assert "errors" not in body and body["data"]["rankings"]["edges"]


@in_server_loop
async def test_cost_with_variables_is_checked_with_their_values(api):
    aliases = " ".join(f"a{i}: rankings(first: $n) {{ {SCORES} }}" for i in range(12))
    query = f"query($n: Int!) {{ {aliases} }}"
    small = await api.gql(query, {"n": 5})
    assert "errors" not in small, small
    # the same document (validation cached) with a larger page: 12 × (1 + 100 × 43)
    large = await api.gql(query, {"n": 100})
    assert codes(large) == ["QUERY_TOO_COSTLY"] and large["data"] is None
    assert large["errors"][0]["extensions"]["value"] == 12 * (1 + 100 * 43)
    assert "errors" not in await api.gql(query, {"n": 5})


@in_server_loop
async def test_documents_too_long_or_with_too_many_tokens(api):
    limit = api.settings.max_query_bytes
    padding = "x" * limit
    body = await api.gql(f'{{ video(youtubeId: "{padding}") {{ title }} }}')
    assert codes(body) == ["QUERY_TOO_LARGE"] and body["data"] is None
    assert body["errors"][0]["extensions"]["limit"] == limit
    assert f"{limit:,} bytes" in body["errors"][0]["message"]
    # multi-byte characters count in UTF-8 bytes
    body = await api.gql(f'{{ video(youtubeId: "{"é" * (limit // 2)}") {{ title }} }}')
    assert codes(body) == ["QUERY_TOO_LARGE"]
    body = await api.gql("{ " + "criteria { name } " * 600 + "}")
    assert codes(body) == ["TOO_MANY_TOKENS"] and "2000 tokens" in body["errors"][0]["message"]
    body = await api.gql("{ criteria { name }")
    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    # GraphiQL's introspection query fits
    body = await api.gql(get_introspection_query(descriptions=True))
    assert "errors" not in body and body["data"]["__schema"]["types"]


@in_server_loop
async def test_caches_stay_bounded_and_keep_hitting(api):
    token = await api.login(ADMIN)  # signed in: past the response cache, to strawberry
    query = "{ stats { users videos } }"
    await api.gql(query, token=token)
    limits = Limits.from_settings(api.settings)
    parsed = documents.PARSED.get((query, limits.max_tokens))
    (key,) = [k for k in documents.VALIDATED._entries if k[0] == query]
    assert key[1] == limits
    validated = documents.VALIDATED.get(key)
    assert parsed is not None and validated == ([], False)
    await api.gql(query, token=token)  # served from both caches: the same objects
    assert documents.PARSED.get((query, limits.max_tokens)) is parsed
    assert documents.VALIDATED.get(key) is validated
    # distinct large documents: the byte budget bounds the cache, not their number
    size = api.settings.max_query_bytes - 100
    n = 2 * documents.PARSED.max_bytes // (documents.AST_BYTES_PER_CHAR * size) + 2
    for i in range(n):
        body = await api.gql(f'{{ video(youtubeId: "{i:0{size}d}") {{ title }} }}')
        assert body["data"] == {"video": None}, body
    assert documents.PARSED.bytes <= documents.PARSED.max_bytes
    assert len(documents.PARSED) < n


# --------------------------------------------------------------------------- WebSocket
@in_server_loop
async def test_the_limits_apply_over_websocket(api):
    async with websockets.connect(api.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "connection_ack"

        async def run(op_id: str, query: str, variables: dict | None = None) -> dict:
            payload = {"query": query, "variables": variables or {}}
            await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
            return json.loads(await asyncio.wait_for(ws.recv(), WAIT))

        message = await run("1", explosion(30))
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
        message = await run("2", "{ a " + "{ b " * 11 + "}" * 12)
        assert "QUERY_TOO_DEEP" in [e["extensions"].get("code") for e in message["payload"]]
        padding = "x" * api.settings.max_query_bytes
        message = await run("3", f'{{ video(youtubeId: "{padding}") {{ title }} }}')
        assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_LARGE"
        aliases = " ".join(f"a{i}: rankings(first: $n) {{ {SCORES} }}" for i in range(12))
        message = await run("4", f"query($n: Int!) {{ {aliases} }}", {"n": 100})
        assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
        # the connection still serves valid operations
        message = await run("5", "{ stats { users } }")
        assert message["type"] == "next" and message["payload"]["data"]["stats"]["users"] > 0
