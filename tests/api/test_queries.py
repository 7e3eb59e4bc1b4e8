"""Read-only queries over HTTP: criteria, video, node, videos, rankings, stats,
user profiles, and the limits and error masking of the endpoint."""

from __future__ import annotations

import pytest

from tests.api.anonymous import answered_anonymous

pytestmark = pytest.mark.asyncio(loop_scope="session")

VIDEO = """query($id: String!) { video(youtubeId: $id) {
  id youtubeId url thumbnailUrl tournesolScore safe myScores { criterion }
  scores { criterion score uncertainty nContributors nComparisons } } }"""
RANKINGS = """query($w: [CriterionWeightInput!], $f: VideoFilter, $u: Boolean!, $first: Int!,
  $after: String) {
  rankings(weights: $w, filter: $f, includeUnsafe: $u, first: $first, after: $after) {
    totalCount scoreVersion weights { criterion weight }
    pageInfo { hasNextPage endCursor }
    edges { cursor rank score node { youtubeId tournesolScore safe
      scores(criteria: [largely_recommended, reliability]) { criterion score } } } } }"""


async def _ranking(api, **kw):
    variables = {"w": None, "f": None, "u": False, "first": 20, "after": None} | kw
    body = await api.gql(RANKINGS, variables)
    assert "errors" not in body, body
    return body["data"]["rankings"]


async def test_criteria_and_stats(api):
    body = await api.gql(
        "{ criteria { name isMain } stats { contributors comparisons videos "
        "scoredVideos scoreVersion } }"
    )
    assert body["data"]["criteria"][0] == {"name": "largely_recommended", "isMain": True}
    stats = body["data"]["stats"]
    assert stats["contributors"] >= 17 and stats["videos"] >= 887
    assert stats["comparisons"] > 100 and 0 < stats["scoredVideos"] <= stats["videos"]


async def test_video_scores_come_from_the_learner(api):
    ranked = await _ranking(api, first=1)
    yt = ranked["edges"][0]["node"]["youtubeId"]
    video = (await api.gql(VIDEO, {"id": yt}))["data"]["video"]
    assert video["url"].endswith(yt) and video["myScores"] is None  # signed out
    main = next(s for s in video["scores"] if s["criterion"] == "largely_recommended")
    assert main["score"] == pytest.approx(video["tournesolScore"])
    assert -100 <= main["score"] <= 100 and main["nContributors"] >= 1
    node = await api.gql(
        "query($id: ID!) { node(id: $id) { ... on Video { youtubeId } } }", {"id": video["id"]}
    )
    assert node["data"]["node"] == {"youtubeId": yt}
    assert (await api.gql(VIDEO, {"id": "zzzzzzzzzzz"}))["data"]["video"] is None


async def test_rankings_default_to_the_main_criterion_and_hide_unsafe(api):
    page = await _ranking(api)
    assert page["weights"] == [{"criterion": "largely_recommended", "weight": 1.0}]
    scores = [e["score"] for e in page["edges"]]
    assert scores == sorted(scores, reverse=True)
    assert [e["rank"] for e in page["edges"]] == list(range(1, len(scores) + 1))
    for edge in page["edges"]:
        assert edge["node"]["safe"] and edge["score"] == pytest.approx(
            edge["node"]["tournesolScore"], abs=1e-5
        )
    everything = await _ranking(api, u=True)
    assert everything["totalCount"] > page["totalCount"]


async def test_ranking_pages_follow_keyset_cursors(api):
    weights = [
        {"criterion": "largely_recommended", "weight": 1},
        {"criterion": "reliability", "weight": 0.5},
        {"criterion": "importance", "weight": 0.5},
        {"criterion": "pedagogy", "weight": 0.25},
    ]
    whole = await _ranking(api, w=weights, u=True, first=100)
    seen, after = [], None
    for _ in range(100):
        page = await _ranking(api, w=weights, u=True, first=37, after=after)
        seen += [(e["rank"], e["node"]["youtubeId"], e["score"]) for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == whole["totalCount"]
    assert seen[:100] == [(e["rank"], e["node"]["youtubeId"], e["score"]) for e in whole["edges"]]
    # a weighted score is Σ weight · display score, missing criteria counting 0
    edge = whole["edges"][0]
    assert edge["score"] > 0


async def test_ranking_filters_on_metadata(api):
    page = await _ranking(api, u=True, f={"search": "zzzz-no-such-title"})
    assert page["totalCount"] == 0 and page["edges"] == []
    top = await _ranking(api, u=True, first=1)
    yt = top["edges"][0]["node"]["youtubeId"]
    page = await _ranking(api, u=True, f={"search": yt})
    assert [e["node"]["youtubeId"] for e in page["edges"]] == [yt]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 1000}, "between 1 and 100"),
        ({"first": 0}, "between 1 and 100"),
        ({"after": "garbage"}, "cursor"),
        ({"w": [{"criterion": "nope", "weight": 1}]}, "does not exist in 'CriterionName'"),
        ({"w": [{"criterion": "reliability", "weight": -1}]}, "between 0 and 100"),
        ({"w": [{"criterion": "reliability", "weight": 0}]}, "positive"),
    ],
)
async def test_bad_ranking_arguments_are_readable_errors(api, variables, message):
    body = await api.gql(RANKINGS, {"w": None, "f": None, "u": False, "first": 20} | variables)
    assert body["data"] is None
    assert message in body["errors"][0]["message"], body
    # validation errors (an unknown enum value) carry no extensions at all
    assert (body["errors"][0].get("extensions") or {}).get("code") != "INTERNAL_SERVER_ERROR"


async def test_user_profiles_show_public_ratings_only(api):
    body = await api.gql(
        '{ user(username: "aidjango") { id username trust ratings(first: 100) { edges { node {'
        " isPublic video { youtubeId } scores { criterion score } } } } } }"
    )
    user = body["data"]["user"]
    assert user["username"] == "aidjango" and 0 <= user["trust"] <= 1
    ratings = user["ratings"]["edges"]
    assert ratings and all(r["node"]["isPublic"] for r in ratings)
    node = await api.gql(
        "query($id: ID!) { node(id: $id) { ... on User { username } } }", {"id": user["id"]}
    )
    assert node["data"]["node"] == {"username": "aidjango"}
    assert (await api.gql('{ user(username: "nobody_here") { username } }'))["data"] == {
        "user": None
    }


async def test_query_limits(api):
    nested = "{ a " + "{ b " * 11 + "}" * 12
    body = await api.gql(nested)
    assert any("depth" in e["message"] for e in body["errors"]), body
    aliases = "{ " + " ".join(f"a{i}: criteria {{ name }}" for i in range(21)) + " }"
    body = await api.gql(aliases)
    assert "aliases" in body["errors"][0]["message"].lower(), body
    tokens = "{ " + "criteria { name } " * 600 + "}"
    body = await api.gql(tokens)
    assert "token" in body["errors"][0]["message"].lower(), body
    ok = "{ " + " ".join(f"a{i}: criteria {{ name }}" for i in range(20)) + " }"
    assert "errors" not in await api.gql(ok)


async def test_batches_and_huge_bodies_are_refused(api):
    batch = [{"query": "{ criteria { name } }"}] * 2
    response = await api.client.post("/graphql", json=batch)
    assert response.status_code == 400
    huge = {"query": "{ criteria { name } }", "variables": {"x": "y" * (1024 * 1024)}}
    response = await api.client.post("/graphql", json=huge)
    assert response.status_code == 413
    assert "too large" in response.json()["errors"][0]["message"]
    response = await api.client.post(
        "/graphql",
        json={"query": "{ criteria { name } }"},
        headers={"authorization": "Bearer not-a-token"},
    )
    assert answered_anonymous(response) and response.json()["data"]["criteria"]


async def test_unexpected_errors_are_masked_with_a_request_id(api, monkeypatch, caplog):
    from app.resolvers import stats

    async def broken(ctx):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(stats, "stats", broken)
    body = await api.gql("{ stats { videos } }")
    error = body["errors"][0]
    assert error["message"].startswith("Internal server error (request id ")
    assert "secret" not in str(body)
    request_id = error["extensions"]["requestId"]
    assert request_id in caplog.text and "secret detail" in caplog.text
    assert "Traceback" in caplog.text


async def test_graphiql_in_a_browser(api):
    response = await api.client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()
