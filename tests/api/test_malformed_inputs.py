"""Malformed inputs get a clear error and change nothing (issue 8, findings on
cursors, node ids, dates, NUL bytes, ids of others' comparisons, visibility of
unrated videos). Over real HTTP (and WebSocket for NUL bytes), on SQLite and on
PostgreSQL + Redis; every refusal is checked against a database snapshot."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import pytest_asyncio
import websockets

from tests.api.conftest import ADMIN, Api

pytestmark = pytest.mark.asyncio(loop_scope="session")
ERRORS = "userErrors { field message code }"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def global_id(type_name: str, node_id: str) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


def codes(body: dict) -> list[str]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


def user_errors(body: dict, field: str) -> list[dict]:
    return body["data"][field]["userErrors"]


async def refused(api: Api, query: str, variables: dict | None = None, token: str | None = None):
    """Send an operation that must fail: return its body, after checking it changed
    nothing and hid nothing behind an internal error."""
    before = await state(api)
    body = await post(api, query, variables, token)
    assert "INTERNAL_SERVER_ERROR" not in codes(body), body
    after = await state(api)
    assert after == before, (body, [k for k in before if before[k] != after[k]])
    return body


async def post(api: Api, query: str, variables: dict | None, token: str | None) -> dict:
    """Like ``api.gql``, with the JSON encoded here: ASCII-escaped, so that a lone
    surrogate travels as ``\\ud800`` (valid JSON that httpx cannot encode)."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query, "variables": variables or {}})
    response = await api.client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def state(api: Api) -> dict[str, Any]:
    """The snapshot, less the learner's score version and scores: a background refit
    started by an earlier test's mutation may swap in meanwhile. Every change a
    request can make shows in the tables (the event log) and the watermark."""
    snapshot = await api.snapshot()
    del snapshot["learner_version"], snapshot["scores"]
    return snapshot


@pytest_asyncio.fixture(loop_scope="session")
async def viewer(api: Api) -> str:
    name = f"mal_{uuid.uuid4().hex[:10]}"
    return await api.register(name)


# --- cursors ---------------------------------------------------------------------

BAD_CURSORS = {
    "string id": b64('["video", "abc"]'),
    "NaN": b64('["video", NaN]'),
    "Infinity": b64('["video", Infinity]'),
    "1e400": b64('["video", 1e400]'),
    "10**30": b64(json.dumps(["video", 10**30])),
    "2**31": b64(json.dumps(["video", 2**31])),
    "negative": b64('["video", -1]'),
    "boolean": b64('["video", true]'),
    "nested list": b64('["video", [[1]]]'),
    "object": b64('["video", {"id": 1}]'),
    "too many keys": b64('["video", 1, 2]'),
    "other kind": b64('["rank", 1]'),
    "not a list": b64('{"video": 1}'),
    "not json": b64("video:1"),
    "not base64": "%%%not base64%%%",
    "non-ascii": "é²",
    "empty": "",
    "very long": "A" * 100_000,
}


@pytest.mark.parametrize("case", sorted(BAD_CURSORS))
async def test_bad_video_cursors_are_bad_pagination(api, case):
    body = await refused(
        api,
        "query($a: String) { videos(first: 2, after: $a) { edges { cursor } } }",
        {"a": BAD_CURSORS[case]},
    )
    assert codes(body) == ["BAD_PAGINATION"], body


BAD_RANK_CURSORS = {
    "NaN score": b64('["rank", NaN, 1]'),
    "1e400 score": b64('["rank", 1e400, 1]'),
    "-1e400 score": b64('["rank", -1e400, 1]'),
    "10**30 score": b64(json.dumps(["rank", 10**30, 1])),
    "string score": b64('["rank", "high", 1]'),
    "list score": b64('["rank", [5.0], 1]'),
    "float id": b64('["rank", 5.0, 1.5]'),
    "huge id": b64(json.dumps(["rank", 5.0, 2**63])),
    "video cursor": b64('["video", 1]'),
}


@pytest.mark.parametrize("case", sorted(BAD_RANK_CURSORS))
async def test_bad_ranking_cursors_are_bad_pagination(api, case):
    body = await refused(
        api,
        "query($a: String) { rankings(first: 2, includeUnsafe: true, after: $a) { totalCount } }",
        {"a": BAD_RANK_CURSORS[case]},
    )
    assert codes(body) == ["BAD_PAGINATION"], body


async def test_issued_cursors_still_page(api):
    query = "query($a: String) { %s(first: 2, after: $a%s) { edges { cursor node { %s } } } }"
    for field, extra, node in (("videos", "", "youtubeId"),
                               ("rankings", ", includeUnsafe: true", "youtubeId")):  # fmt: skip
        first = await api.gql(query % (field, extra, node), {"a": None})
        cursor = first["data"][field]["edges"][-1]["cursor"]
        second = await api.gql(query % (field, extra, node), {"a": cursor})
        assert "errors" not in second, second
        seen = {e["node"]["youtubeId"] for e in first["data"][field]["edges"]}
        assert seen.isdisjoint(e["node"]["youtubeId"] for e in second["data"][field]["edges"])


@pytest.mark.parametrize(
    "path",
    [
        "me { comparisons(first: 2, after: $a) { edges { cursor } } }",
        "me { ratings(first: 2, after: $a) { edges { cursor } } }",
        "me { rateLater(first: 2, after: $a) { edges { cursor } } }",
        'user(username: "aidjango") { ratings(first: 2, after: $a) { edges { cursor } } }',
        'user(username: "aidjango") { comparisons(first: 2, after: $a) { edges { cursor } } }',
    ],
)
async def test_bad_cursors_on_every_connection(api, path):
    token = await api.login("aidjango")
    kind = path.split("(")[0].split()[-1]
    for cursor in (b64(f'["{kind}", NaN]'), b64(json.dumps(["x", 10**30])), "%%",
                   b64('["comparison", 99999999999]'), b64('["rating", [1]]')):  # fmt: skip
        body = await refused(api, "query($a: String) { " + path + " }", {"a": cursor}, token)
        assert codes(body) == ["BAD_PAGINATION"], (cursor, body)


# --- node ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "node_id",
    [
        global_id("Unknown", "1"),
        global_id("Me", "1"),
        global_id("Query", "1"),
        global_id("PageInfo", "1"),
        global_id("Comparison", "²"),
        global_id("Comparison", "٣"),  # an Arabic-Indic digit: isdigit(), and int() accepts it
        global_id("Comparison", "99999999999"),
        global_id("Comparison", "-1"),
        global_id("Video", "nope"),
        global_id("User", "nobody at all"),
        # a NUL inside the base64 passes the string guard: PostgreSQL must not see it
        global_id("Video", "\x00" * 11),
        global_id("User", "a\x00b"),
        global_id("Comparison", "1\x00"),
    ],
)
async def test_unknown_node_ids_resolve_to_null(api, node_id):
    body = await refused(api, "query($id: ID!) { node(id: $id) { id } }", {"id": node_id})
    assert body == {"data": {"node": None}}, body


@pytest.mark.parametrize("node_id", ["²", "not base64!", "", b64("no colon")])
async def test_malformed_node_ids_are_bad_id(api, node_id):
    body = await refused(api, "query($id: ID!) { node(id: $id) { id } }", {"id": node_id})
    assert codes(body) == ["BAD_ID"], body


async def test_known_nodes_still_resolve(api):
    token = await api.login("aidjango")
    body = await api.gql(
        "{ me { comparisons(first: 1) { edges { node { id videoA { youtubeId } } } } } }",
        None,
        token,
    )
    edge = body["data"]["me"]["comparisons"]["edges"][0]["node"]
    comparison_id = edge["id"]
    query = "query($id: ID!) { node(id: $id) { __typename id } }"
    mine = await api.gql(query, {"id": comparison_id}, token)
    assert mine["data"]["node"] == {"__typename": "Comparison", "id": comparison_id}
    # someone else's public comparison (user(username){ comparisons } lists it) resolves
    other_token = await api.login("le_science4all")
    other = await api.gql(query, {"id": comparison_id}, other_token)
    assert other["data"]["node"] == {"__typename": "Comparison", "id": comparison_id}
    # once one of its ratings is private: null, like an id that does not exist
    hide = (
        "mutation($v: String!) { setRatingVisibility(input: {youtubeId: $v, isPublic: false})"
        " { userErrors { code } } }"
    )
    hidden = await api.gql(hide, {"v": edge["videoA"]["youtubeId"]}, token)
    assert hidden["data"]["setRatingVisibility"]["userErrors"] == []
    other = await api.gql(query, {"id": comparison_id}, other_token)
    assert other == {"data": {"node": None}}
    mine = await api.gql(query, {"id": comparison_id}, token)
    assert mine["data"]["node"] == {"__typename": "Comparison", "id": comparison_id}
    video = await api.gql(query, {"id": global_id("Video", "2Z9p_I3hhUc")})
    user = await api.gql(query, {"id": global_id("User", "aidjango")})
    assert video["data"]["node"]["__typename"] == "Video"
    assert user["data"]["node"]["__typename"] == "User"


# --- deleteComparison by id: one answer for "missing" and "not yours" -------------

DELETE = "mutation($id: ID!) { deleteComparison(input: {id: $id}) { deleted " + ERRORS + " } }"


async def test_deleting_by_id_does_not_tell_which_ids_exist(api, viewer):
    (others,) = await api.rows(
        'SELECT MIN(c.id) FROM comparison c JOIN "user" u ON u.id = c.user_id '
        "WHERE u.username = 'aidjango'"
    )
    (top,) = await api.rows("SELECT MAX(id) FROM comparison")
    answers = []
    for pk in (str(others[0]), str(top[0] + 1000), "²", "99999999999"):
        body = await refused(api, DELETE, {"id": global_id("Comparison", pk)}, viewer)
        assert body["data"]["deleteComparison"]["deleted"] is False
        answers.append(user_errors(body, "deleteComparison"))
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][0]["code"] == "UNKNOWN_COMPARISON"


@pytest.mark.parametrize("bad", ["²", "", global_id("Video", "1"), "not base64!"])
async def test_delete_comparison_with_a_malformed_id(api, viewer, bad):
    body = await refused(api, DELETE, {"id": bad}, viewer)
    assert [e["code"] for e in user_errors(body, "deleteComparison")] == ["BAD_ID"], body


# --- setRatingVisibility on a video never rated -----------------------------------


async def test_visibility_of_an_unrated_video_is_not_rated(api, viewer):
    (video,) = await api.rows("SELECT youtube_id FROM video ORDER BY id LIMIT 1")
    body = await refused(
        api,
        "mutation($v: String!) { setRatingVisibility(input: {youtubeId: $v, isPublic: false})"
        " { isPublic " + ERRORS + " } }",
        {"v": video[0]},
        viewer,
    )
    errors = user_errors(body, "setRatingVisibility")
    assert [(e["field"], e["code"]) for e in errors] == [("youtubeId", "NOT_RATED")], body


async def test_visibility_of_a_rated_video_still_changes(api):
    token = await api.login("le_science4all")
    (video,) = await api.rows(
        'SELECT v.youtube_id FROM comparison c JOIN "user" u ON u.id = c.user_id '
        "JOIN video v ON v.id = c.video_a_id WHERE u.username = 'le_science4all' LIMIT 1"
    )
    query = (
        "mutation($v: String!, $p: Boolean!) { setRatingVisibility(input: "
        "{youtubeId: $v, isPublic: $p}) { isPublic " + ERRORS + " } }"
    )
    for public in (False, True):
        body = await api.gql(query, {"v": video[0], "p": public}, token)
        assert body["data"]["setRatingVisibility"] == {"isPublic": public, "userErrors": []}


# --- dates ---------------------------------------------------------------------------

VIDEOS_BY_DATE = (
    "query($f: VideoFilter) { videos(first: 100, filter: $f) { totalCount "
    "edges { node { youtubeId publishedAt } } } }"
)


@pytest.mark.parametrize(
    "flt",
    [
        {"publishedAfter": "2020-01-01T00:00:00", "publishedBefore": "2030-01-01T00:00:00+02:00"},
        {"publishedAfter": "2020-01-01T00:00:00+05:00", "publishedBefore": "2030-01-01T00:00:00"},
        {"publishedAfter": "0001-01-01T00:00:00+14:00"},
        {"publishedBefore": "0001-01-01T00:00:00+14:00"},
        {"publishedAfter": "9999-12-31T23:59:59-14:00"},
        {"publishedBefore": "9999-12-31T23:59:59.999999-14:00"},
        {"publishedAfter": "0001-01-01T00:00:00+14:00", "publishedBefore": "0001-01-01T00:00:00"},
    ],
)
async def test_date_filters_mixing_offsets_and_extremes(api, flt):
    body = await refused(api, VIDEOS_BY_DATE, {"f": flt})
    assert "errors" not in body, body
    for query in ("rankings(first: 5, includeUnsafe: true, filter: $f) { totalCount }",):
        ranked = await refused(api, "query($f: VideoFilter) { " + query + " }", {"f": flt})
        assert "errors" not in ranked, ranked


SET_METADATA = (
    "mutation($i: SetVideoMetadataInput!) { setVideoMetadata(input: $i) { video { youtubeId } "
    + ERRORS
    + " } }"
)


async def test_a_publication_date_beyond_utc_is_refused(api):
    # Metadata comes from YouTube (addVideo refuses it); an admin may override it.
    admin = await api.login(ADMIN)
    ((youtube_id,),) = await api.rows("SELECT youtube_id FROM video ORDER BY id LIMIT 1")
    body = await refused(
        api,
        SET_METADATA,
        {"i": {"youtubeId": youtube_id, "publishedAt": "0001-01-01T00:00:00+14:00"}},
        admin,
    )
    errors = user_errors(body, "setVideoMetadata")
    assert [(e["field"], e["code"]) for e in errors] == [("publishedAt", "OUT_OF_RANGE")]


async def test_date_filters_with_offsets_select_the_same_videos_on_every_backend(api, viewer):
    tag = uuid.uuid4().hex[:8]
    ids = {"late": f"L{tag}xx"[:11].ljust(11, "x"), "early": f"E{tag}xx"[:11].ljust(11, "x")}
    published = {
        "late": "2024-01-01T23:00:00-05:00",  # 2024-01-02 04:00 UTC
        "early": "2024-01-02T01:00:00+00:00",
    }
    admin = await api.login(ADMIN)
    for which in ("late", "early"):
        body = await api.gql(
            "mutation($v: String!) { addVideo(input: {youtubeId: $v}) { created } }",
            {"v": ids[which]},
            viewer,
        )
        assert body["data"]["addVideo"]["created"], body
        metadata = {"youtubeId": ids[which], "title": f"dates {tag} {which}"}
        body = await api.gql(SET_METADATA, {"i": metadata | {"publishedAt": published[which]}},
                             admin)  # fmt: skip
        assert body["data"]["setVideoMetadata"]["userErrors"] == [], body
    (stored,) = await api.rows(f"SELECT published_at FROM video WHERE youtube_id = '{ids['late']}'")
    if api.backend == "sqlite":  # the text SQLite compares: UTC, like every other row
        assert stored[0] == "2024-01-02 04:00:00+00:00"

    async def selected(**flt: str) -> set[str]:
        body = await api.gql(VIDEOS_BY_DATE, {"f": {"search": f"dates {tag}", **flt}})
        assert "errors" not in body, body
        names = {v: k for k, v in ids.items()}
        return {names[e["node"]["youtubeId"]] for e in body["data"]["videos"]["edges"]}

    assert await selected() == {"late", "early"}
    assert await selected(publishedAfter="2024-01-02T02:00:00Z") == {"late"}
    assert await selected(publishedAfter="2024-01-01T21:00:00-05:00") == {"late"}
    assert await selected(publishedBefore="2024-01-01T22:00:00-05:00") == {"early"}
    assert await selected(publishedBefore="2024-01-02T03:00:00") == {"early"}  # naive: UTC
    assert await selected(publishedAfter="2024-01-02T05:00:00+01:00") == {"late"}


# --- NUL bytes and lone surrogates -------------------------------------------------------

NUL_CASES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "login": (
        'mutation($u: String!) { login(input: {username: $u, password: "long enough"}) { token } }',
        {"u": "aid\x00jango"},
        False,
    ),
    "register": (
        'mutation($u: String!) { register(input: {username: $u, password: "long enough"})'
        " { user { username } } }",
        {"u": "nul\x00user"},
        False,
    ),
    "search": (
        "query($s: String) { videos(filter: {search: $s}) { totalCount } }",
        {"s": "a\x00b"},
        False,
    ),
    "search literal": ('{ videos(filter: {search: "a\\u0000b"}) { totalCount } }', {}, False),
    "braced escape": ('{ videos(filter: {search: "a\\u{0}b"}) { totalCount } }', {}, False),
    "video": ("query($v: String!) { video(youtubeId: $v) { title } }", {"v": "\x00" * 11}, False),
    "user": ("query($u: String!) { user(username: $u) { username } }", {"u": "\x00"}, False),
    "addVideo title": (
        'mutation($t: String) { addVideo(input: {youtubeId: "nulnulnul01", title: $t})'
        " { created } }",
        {"t": "title\x00"},
        True,
    ),
    "addVideo nested": (
        "mutation($i: AddVideoInput!) { addVideo(input: $i) { created } }",
        {"i": {"youtubeId": "nulnulnul02", "uploader": "up\x00loader"}},
        True,
    ),
    "weights list": (
        "query($w: [CriterionWeightInput!]) { rankings(weights: $w) { totalCount } }",
        {
            "w": [
                {"criterion": "largely_recommended", "weight": 1},
                {"criterion": "x\x00", "weight": 1},
            ]
        },
        False,
    ),
    "surrogate": (
        "query($s: String) { videos(filter: {search: $s}) { totalCount } }",
        {"s": "\ud800"},
        False,
    ),
    "key": (
        "query($s: String) { videos(filter: {search: $s}) { totalCount } }",
        {"s": "ok", "other\x00": "x"},
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(NUL_CASES))
async def test_nul_bytes_and_lone_surrogates_are_refused(api, viewer, case):
    query, variables, signed_in = NUL_CASES[case]
    body = await refused(api, query, variables, viewer if signed_in else None)
    assert codes(body) == ["BAD_STRING"], body
    assert body.get("data") is None
    assert "NUL" in body["errors"][0]["message"] or "surrogate" in body["errors"][0]["message"]


async def test_nul_bytes_are_refused_over_websocket(api):
    before = await state(api)
    async with websockets.connect(api.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for op, (query, variables) in enumerate(
            [
                (NUL_CASES["login"][0], NUL_CASES["login"][1]),
                (NUL_CASES["search literal"][0], {}),
                (
                    "subscription($v: [String!]!) { scoresUpdated(youtubeIds: $v) { initial } }",
                    {"v": ["abc\x00"]},
                ),
            ]
        ):
            payload = {"query": query, "variables": variables}
            await ws.send(json.dumps({"id": str(op), "type": "subscribe", "payload": payload}))
            frame = json.loads(await ws.recv())
            errors = frame["payload"] if frame["type"] == "error" else frame["payload"]["errors"]
            assert [e["extensions"]["code"] for e in errors] == ["BAD_STRING"], frame
    assert await state(api) == before


async def test_ordinary_strings_pass_the_guard(api):
    body = await api.gql(
        "query($s: String) { a: videos(filter: {search: $s}) { totalCount } "
        'b: videos(filter: {search: "caf\\u00e9 \\uD83D\\uDE00"}) { totalCount } }',
        {"s": "tab\there, emoji 😀, é"},
    )
    assert "errors" not in body, body
