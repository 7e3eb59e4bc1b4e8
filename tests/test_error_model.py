"""The one error model in code (every code a member of ``ErrorCode``, the schema's
enum), Accept negotiation and the persisted-query store, without a server
(tests/api/test_graphql_over_http.py runs them against one)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.config import load_settings
from app.errors import ErrorCode, InvalidInput
from app.http.media import GRAPHQL_RESPONSE, prefers_graphql_response
from app.http.persisted import PersistedQueries, sha256
from app.resolvers.pagination import PaginationError

ROOT = Path(__file__).resolve().parents[1]


def _apq(digest: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def test_accept_negotiation():
    assert prefers_graphql_response(GRAPHQL_RESPONSE)
    assert prefers_graphql_response(f"application/json, {GRAPHQL_RESPONSE}")  # a tie
    assert prefers_graphql_response(f"{GRAPHQL_RESPONSE};q=0.9, application/json;q=0.8")
    assert not prefers_graphql_response(f"{GRAPHQL_RESPONSE};q=0.5, application/json")
    assert not prefers_graphql_response(f"{GRAPHQL_RESPONSE};q=0")
    for legacy in (None, "", "*/*", "application/json", "text/html"):
        assert not prefers_graphql_response(legacy)


RAISERS = {"InvalidInput", "ApiError", "PaginationError", "send_json_error", "deny_websocket"}


def _codes_in_source() -> dict[str, str]:
    """Every code literal the app passes to an error (file:line of one use)."""
    found: dict[str, str] = {}
    for path in (ROOT / "app").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in RAISERS:
                continue
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and arg.value.isupper()
                    and " " not in arg.value
                ):
                    found.setdefault(arg.value, f"{path.relative_to(ROOT)}:{node.lineno}")
        for node in ast.walk(tree):  # extensions={"code": "..."}
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        found.setdefault(value.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_error_code_in_the_source_is_in_the_enum():
    members = {code.value for code in ErrorCode}
    unknown = {code: where for code, where in _codes_in_source().items() if code not in members}
    assert not unknown, f"add these to app.errors.ErrorCode: {unknown}"


def test_each_mutation_has_its_own_subset_of_error_code():
    """Shopify's shape: `userErrors: [<Mutation>UserError!]!`, each implementing the
    `UserError` interface, with `code` an enum of that mutation's codes: a subset of
    `ErrorCode` (kept whole in the schema for `errors[].extensions.code`), with the
    same names and descriptions (tests/test_mutation_error_codes.py checks the
    subsets against the code)."""
    from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull, GraphQLObjectType

    from app.schema import build_schema, sdl

    assert "enum ErrorCode {" in sdl() and "interface UserError {" in sdl()
    schema = build_schema()._schema
    shared = schema.type_map["ErrorCode"]
    assert isinstance(shared, GraphQLEnumType)
    assert set(shared.values) == {code.value for code in ErrorCode}
    assert schema.mutation_type is not None
    for name, mutation in schema.mutation_type.fields.items():
        prefix = name[0].upper() + name[1:]
        payload = (
            mutation.type.of_type if isinstance(mutation.type, GraphQLNonNull) else mutation.type
        )
        assert isinstance(payload, GraphQLObjectType) and payload.name == f"{prefix}Payload"
        errors = payload.fields["userErrors"].type
        assert isinstance(errors, GraphQLNonNull) and isinstance(errors.of_type, GraphQLList)
        kind = errors.of_type.of_type.of_type
        assert kind.name == f"{prefix}UserError"
        assert [i.name for i in kind.interfaces] == ["UserError"]
        assert list(kind.fields) == ["field", "message", "code"]
        code = kind.fields["code"].type.of_type
        assert code.name == f"{prefix}ErrorCode"
        assert "INVALID" in code.values  # the fallback
        for value_name, value in code.values.items():
            assert value.value == value_name == shared.values[value_name].value
            assert value.description == shared.values[value_name].description


def test_one_error_type():
    error = PaginationError("`after` is not a cursor this API issued", "after")
    assert isinstance(error, InvalidInput) and error.code is ErrorCode.BAD_PAGINATION
    assert error.extensions == {"code": "BAD_PAGINATION", "field": "after"}
    assert InvalidInput("x", "y", "SAME_VIDEO").code is ErrorCode.SAME_VIDEO
    with pytest.raises(ValueError):
        InvalidInput("x", "y", "NO_SUCH_CODE")


async def test_persisted_query_store_is_bounded():
    settings = load_settings({}, persisted_queries_max=3)
    store = PersistedQueries(settings)
    queries = [f"{{ q{i}: stats {{ videos }} }}" for i in range(5)]
    for q in queries:
        assert await store.document(q, _apq(sha256(q))) == q
    assert len(store._local) == 3
    assert await store.document(None, _apq(sha256(queries[-1]))) == queries[-1]
    with pytest.raises(Exception, match="PersistedQueryNotFound"):
        await store.document(None, _apq(sha256(queries[0])))


def test_allowlist_mode_needs_its_file(tmp_path):
    from app.config import ConfigError

    with pytest.raises(ConfigError, match="SUNRANK_PERSISTED_QUERIES_FILE"):
        load_settings({"SUNRANK_PERSISTED_QUERIES": "allowlist"})
    bad = tmp_path / "ops.json"
    bad.write_text("[1, 2]")
    settings = load_settings(
        {"SUNRANK_PERSISTED_QUERIES": "allowlist", "SUNRANK_PERSISTED_QUERIES_FILE": str(bad)}
    )
    with pytest.raises(ConfigError, match="persisted-query manifest"):
        PersistedQueries(settings)
    good = tmp_path / "ops2.json"
    good.write_text('{"any-id": "{ stats { videos } }"}')
    store = PersistedQueries(
        load_settings(
            {"SUNRANK_PERSISTED_QUERIES": "allowlist", "SUNRANK_PERSISTED_QUERIES_FILE": str(good)}
        )
    )
    assert store.allowed == {sha256("{ stats { videos } }"): "{ stats { videos } }"}
