"""Relay over HTTP: connections in both directions with totalCount, global ids that
`node`/`nodes` resolve, and ranking cursors pinned to their ranking while scores move."""

from __future__ import annotations

import base64
import json

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the server's loop (conftest)

PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
RANKING = (
    "query($first: Int, $after: String, $last: Int, $before: String) {"
    " rankings(includeUnsafe: true, first: $first, after: $after, last: $last,"
    " before: $before) { totalCount scoreVersion edges { cursor rank node { youtubeId } }"
    f" {PAGE_INFO} }} }}"
)
SUBMIT = (
    "mutation($a: String!, $b: String!, $s: Int!) { submitComparison(input: {videoA: $a,"
    " videoB: $b, scores: [{criterion: largely_recommended, score: $s}]}) {"
    " userErrors { code } } }"
)


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_ranking_pages_see_every_video_once_while_scores_move(api):
    token = await api.register("relay_pager")
    seen: list[str] = []
    versions = set()
    variables: dict = {"first": 5}
    flip = 10
    while True:
        body = await api.gql(RANKING, variables)
        ranking = body["data"]["rankings"]
        page = [e["node"]["youtubeId"] for e in ranking["edges"]]
        seen += page
        versions.add(ranking["scoreVersion"])
        assert ranking["pageInfo"]["hasPreviousPage"] == (len(seen) > len(page))
        if not ranking["pageInfo"]["hasNextPage"]:
            break
        # between pages, a comparison lands and moves scores (a new score version)
        top, bottom = seen[0], page[-1]
        done = await api.gql(SUBMIT, {"a": top, "b": bottom, "s": flip}, token)
        assert done["data"]["submitComparison"]["userErrors"] == [], done
        flip = -flip
        variables = {"first": 5, "after": ranking["pageInfo"]["endCursor"]}
    assert len(seen) == len(set(seen)) == ranking["totalCount"]
    # every page answered from the ranking of the first one
    assert len(versions) == 1
    fresh = (await api.gql(RANKING, {"first": 1}))["data"]["rankings"]
    assert fresh["scoreVersion"] > versions.pop()

    # backwards from the last cursor: the same ranking, reversed page by page
    back: list[str] = []
    variables = {"last": 5, "before": ranking["pageInfo"]["endCursor"]}
    while True:
        ranking = (await api.gql(RANKING, variables))["data"]["rankings"]
        back = [e["node"]["youtubeId"] for e in ranking["edges"]] + back
        if not ranking["pageInfo"]["hasPreviousPage"]:
            break
        variables = {"last": 5, "before": ranking["pageInfo"]["startCursor"]}
    assert back == seen[:-1]


async def test_stale_and_foreign_ranking_cursors_are_clear_errors(api):
    stale = base64.urlsafe_b64encode(json.dumps(["rank", 12345, 1.0, 1]).encode()).decode()
    body = await api.gql(RANKING, {"first": 5, "after": stale})
    assert codes(body) == ["STALE_CURSOR"], body
    assert body["data"] is None
    both = await api.gql(RANKING, {"first": 5, "last": 5})
    assert codes(both) == ["BAD_PAGINATION"], both


async def test_every_connection_pages_both_ways_with_total_count(api):
    token = await api.login("aidjango")
    fields = {
        "videos": "videos",
        "me.comparisons": "me { comparisons",
        "me.ratings": "me { ratings",
        "me.ranking": "me { ranking",
        "user.ratings": 'user(username: "aidjango") { ratings',
        "user.comparisons": 'user(username: "aidjango") { comparisons',
    }
    for name, opening in fields.items():
        close = " }" if "{" in opening else ""

        def query(args: str, opening: str = opening, close: str = close) -> str:
            return f"{{ {opening}({args}) {{ totalCount edges {{ cursor }} {PAGE_INFO} }}{close} }}"

        def conn(body: dict, name: str = name) -> dict:
            data = body["data"]
            for key in name.split("."):
                data = data[key]
            return data

        forward = conn(await api.gql(query("first: 3"), None, token))
        assert forward["totalCount"] >= 4, name
        assert forward["pageInfo"]["hasNextPage"] and not forward["pageInfo"]["hasPreviousPage"]
        last = conn(await api.gql(query("last: 2"), None, token))
        assert not last["pageInfo"]["hasNextPage"] and last["pageInfo"]["hasPreviousPage"], name
        # the page before the 3rd edge is the first two
        cursor = forward["edges"][2]["cursor"]
        before = conn(await api.gql(query(f'last: 5, before: "{cursor}"'), None, token))
        assert [e["cursor"] for e in before["edges"]] == [
            e["cursor"] for e in forward["edges"][:2]
        ], name
        assert before["pageInfo"]["hasNextPage"] and not before["pageInfo"]["hasPreviousPage"]
        after = conn(await api.gql(query(f'first: 1, after: "{cursor}"'), None, token))
        assert after["pageInfo"]["hasPreviousPage"], name


async def test_cached_objects_have_ids_that_node_and_nodes_resolve(api):
    token = await api.login("aidjango")
    body = await api.gql(
        "{ me { id ratings(first: 20) { edges { node { id isPublic video { id scores { id } } }"
        " } } } }",
        None,
        token,
    )
    me = body["data"]["me"]
    rating = next(e["node"] for e in me["ratings"]["edges"] if e["node"]["isPublic"])
    score_id = rating["video"]["scores"][0]["id"]
    suggestions = await api.gql("{ suggestions(first: 1) { id reason } }", None, token)
    suggestion = suggestions["data"]["suggestions"][0]
    assert suggestion["reason"] in ("RATE_LATER", "UNCERTAIN_SCORE")
    ids = [me["id"], rating["id"], score_id, suggestion["id"], rating["video"]["id"]]
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
    resolved = (await api.gql(query, {"ids": ids}, token))["data"]["nodes"]
    assert [n["id"] for n in resolved] == ids
    assert [n["__typename"] for n in resolved] == [
        "Me", "Rating", "VideoScore", "Suggestion", "Video",
    ]  # fmt: skip
    # signed out: `Me` and the suggestion are nobody's; a public rating and scores are
    anonymous = (await api.gql(query, {"ids": ids}))["data"]["nodes"]
    assert [n and n["__typename"] for n in anonymous] == [
        None, "Rating", "VideoScore", None, "Video",
    ]  # fmt: skip
    bad = await api.gql(query, {"ids": [me["id"], "not an id"]})
    assert codes(bad) == ["BAD_ID"], bad
