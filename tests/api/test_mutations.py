"""Mutations over HTTP: the newcomer flow (register → login → submitComparison →
rankings and video show the new scores at once → a WebSocket subscriber gets the
update), every bad input as a clear userError with the database and the learner
unchanged, and authorization (authors, admins, private ratings)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import websockets

from tests.api.anonymous import answered_anonymous
from tests.api.conftest import ADMIN

pytestmark = pytest.mark.asyncio(loop_scope="session")

ERRORS = "userErrors { field message code }"
SUBMIT = (
    "mutation($a: String!, $b: String!, $s: [ScoreInput!]!) {"
    " submitComparison(input: {videoA: $a, videoB: $b, scores: $s}) {"
    " comparison { id videoA { youtubeId } videoB { youtubeId } scores { criterion score } }"
    " videoA { youtubeId scores { criterion score nComparisons } }"
    " videoB { youtubeId scores { criterion score nComparisons } } " + ERRORS + " } }"
)
VIDEO = (
    "query($id: String!) { video(youtubeId: $id) { tournesolScore myScores { criterion score }"
    " scores { criterion score nComparisons } } }"
)


def _name(prefix: str = "newcomer") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def _two_rated_videos(api) -> tuple[str, str]:
    body = await api.gql(
        "{ rankings(first: 2, includeUnsafe: true) { edges { node { youtubeId } } } }"
    )
    a, b = (e["node"]["youtubeId"] for e in body["data"]["rankings"]["edges"])
    return a, b


async def _add_video(api, token: str) -> str:
    yt = uuid.uuid4().hex[:11]
    body = await api.gql(
        "mutation($id: String!) { addVideo(input: {youtubeId: $id})"
        " { created video { youtubeId title } " + ERRORS + " } }",
        {"id": yt},
        token,
    )
    assert body["data"]["addVideo"]["created"], body
    return yt


async def _subscribe(api, youtube_ids: list[str]):
    ws = await websockets.connect(api.ws_url, subprotocols=["graphql-transport-ws"])
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({
        "id": "1", "type": "subscribe",
        "payload": {
            "query": "subscription($ids: [String!]!) { scoresUpdated(youtubeIds: $ids) {"
            " youtubeId scoreVersion initial scores { criterion score nComparisons } } }",
            "variables": {"ids": youtube_ids},
        },
    }))  # fmt: skip
    return ws


async def _next(ws) -> dict:
    message = json.loads(await asyncio.wait_for(ws.recv(), 20))
    assert message["type"] == "next", message
    return message["payload"]["data"]["scoresUpdated"]


async def test_newcomer_flow(api):
    token = await api.register(_name())
    a = await _add_video(api, token)
    b_id = await _add_video(api, token)
    # a subscriber to the two new videos: first their current (empty) scores
    ws = await _subscribe(api, [a, b_id])
    try:
        initial = [await _next(ws), await _next(ws)]
        assert all(m["initial"] and m["scores"] == [] for m in initial)

        version = api.learner.version
        body = await api.gql(
            SUBMIT,
            {"a": a, "b": b_id, "s": [{"criterion": "largely_recommended", "score": 8},
                                     {"criterion": "reliability", "score": -3}]},
            token,
        )  # fmt: skip
        result = body["data"]["submitComparison"]
        assert result["userErrors"] == [], body
        assert api.learner.version > version
        assert result["comparison"]["scores"] == [
            {"criterion": "largely_recommended", "score": 8},
            {"criterion": "reliability", "score": -3},
        ]
        # the payload carries refreshed scores: b preferred on the main criterion
        score_a = {s["criterion"]: s for s in result["videoA"]["scores"]}
        score_b = {s["criterion"]: s for s in result["videoB"]["scores"]}
        assert score_b["largely_recommended"]["score"] > score_a["largely_recommended"]["score"]
        assert score_a["reliability"]["score"] > score_b["reliability"]["score"]
        assert score_a["largely_recommended"]["nComparisons"] == 1

        # the video query and the rankings show them immediately
        video_b = (await api.gql(VIDEO, {"id": b_id}, token))["data"]["video"]
        assert video_b["tournesolScore"] == pytest.approx(score_b["largely_recommended"]["score"])
        assert {s["criterion"] for s in video_b["myScores"]} == {
            "largely_recommended", "reliability",
        }  # fmt: skip
        ranked = {}
        for youtube_id in (a, b_id):  # a YouTube id as the search finds that video
            ranking = (
                await api.gql(
                    "query($s: String!) { rankings(includeUnsafe: true, first: 5,"
                    " filter: {search: $s}) { edges { score node { youtubeId } } } }",
                    {"s": youtube_id},
                )
            )["data"]["rankings"]["edges"]
            ranked |= {e["node"]["youtubeId"]: e["score"] for e in ranking}
        assert ranked[b_id] == pytest.approx(score_b["largely_recommended"]["score"], abs=1e-5)
        assert ranked[a] < ranked[b_id]

        # the subscriber got the update
        pushed = {}
        while len(pushed) < 2:
            update = await _next(ws)
            assert not update["initial"]
            pushed[update["youtubeId"]] = update
        assert {s["criterion"] for s in pushed[b_id]["scores"]} == {
            "largely_recommended", "reliability",
        }  # fmt: skip
        main = next(s for s in pushed[b_id]["scores"] if s["criterion"] == "largely_recommended")
        assert main["score"] == pytest.approx(score_b["largely_recommended"]["score"])
    finally:
        await ws.close()

    # asking in reverse order negates the scores
    body = await api.gql(
        "query($a: String!, $b: String!) { comparison(videoA: $a, videoB: $b) {"
        " videoA { youtubeId } scores { criterion score } } }",
        {"a": b_id, "b": a},
        token,
    )
    reverse = body["data"]["comparison"]
    assert reverse["videoA"]["youtubeId"] == b_id
    assert {s["criterion"]: s["score"] for s in reverse["scores"]} == {
        "largely_recommended": -8, "reliability": 3,
    }  # fmt: skip

    # me: my comparisons, ratings and rate-later list
    await api.gql(
        "mutation($id: String!) { addToRateLater(input: {youtubeId: $id}) { " + ERRORS + " } }",
        {"id": a},
        token,
    )
    me = (
        await api.gql(
            "{ me { username comparisons { edges { node { id } } }"
            " ratings { edges { node { isPublic video { youtubeId } } } }"
            " rateLater { edges { node { youtubeId } } } } }",
            token=token,
        )
    )["data"]["me"]
    assert len(me["comparisons"]["edges"]) == 1
    assert {r["node"]["video"]["youtubeId"] for r in me["ratings"]["edges"]} == {a, b_id}
    assert [e["node"]["youtubeId"] for e in me["rateLater"]["edges"]] == [a]

    # update, then delete
    body = await api.gql(
        SUBMIT, {"a": b_id, "b": a, "s": [{"criterion": "largely_recommended", "score": 2}]},
        token,
    )  # fmt: skip
    assert body["data"]["submitComparison"]["comparison"]["scores"] == [
        {"criterion": "largely_recommended", "score": 2}
    ]
    body = await api.gql(
        "mutation($a: String!, $b: String!) { deleteComparison(input: {videoA: $a, videoB: $b})"
        " { deleted videoA { scores { criterion } } " + ERRORS + " } }",
        {"a": a, "b": b_id},
        token,
    )
    assert body["data"]["deleteComparison"]["deleted"], body
    assert body["data"]["deleteComparison"]["videoA"]["scores"] == []

    # logout revokes the token
    body = await api.gql("mutation { logout { revokedTokens } }", token=token)
    assert body["data"]["logout"]["revokedTokens"] == 1
    response = await api.client.post(
        "/graphql", json={"query": "{ me { username } }"},
        headers={"authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answered_anonymous(response)


def _score(criterion="largely_recommended", score=5, **kw):
    return {"criterion": criterion, "score": score, **kw}


BAD_SUBMISSIONS = [
    ("score out of range", {"s": [_score(score=11)]}, "SCORE_OUT_OF_RANGE", "scores[0].score"),
    ("same video", {"b": "A"}, "SAME_VIDEO", "videoB"),
    ("twice", {"s": [_score(), _score()]}, "DUPLICATE_CRITERION", "scores[1].criterion"),
    ("no scores", {"s": []}, "NO_SCORES", "scores"),
    # a new video is created only for a comparison that is accepted
    ("new video, bad score", {"b": "zzzzzzzzzzz", "s": [_score(score=11)]}, "SCORE_OUT_OF_RANGE",
     "scores[0].score"),
    ("bad video id", {"a": "not a video"}, "BAD_VIDEO_ID", "videoA"),
    ("unauthenticated", {"token": None}, "UNAUTHENTICATED", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "change", "code", "field"), BAD_SUBMISSIONS, ids=[c[0] for c in BAD_SUBMISSIONS]
)
async def test_bad_submissions_change_nothing(api, case, change, code, field):
    token = await api.login("aidjango")
    a, b = await _two_rated_videos(api)
    variables = {"a": a, "b": b, "s": [_score()]}
    for key, value in change.items():
        if key == "token":
            token = value
        else:
            variables[key] = a if value == "A" else value
    before = await api.snapshot()
    body = await api.gql(SUBMIT, variables, token)
    errors = body["data"]["submitComparison"]["userErrors"]
    assert len(errors) == 1 and errors[0]["code"] == code, body
    assert errors[0]["field"] == field and errors[0]["message"]
    assert body["data"]["submitComparison"]["comparison"] is None
    assert await api.snapshot() == before


async def test_only_the_author_deletes_a_comparison(api):
    mine = await api.login("aidjango")
    other = await api.login("le_science4all")
    body = await api.gql("{ me { comparisons(first: 1) { edges { node { id } } } } }", token=mine)
    comparison_id = body["data"]["me"]["comparisons"]["edges"][0]["node"]["id"]
    # someone else may see it by id when public (tests/api/test_relay.py), but never
    # delete it
    before = await api.snapshot()
    body = await api.gql(
        "mutation($id: ID!) { deleteComparison(input: {id: $id}) { deleted " + ERRORS + " } }",
        {"id": comparison_id},
        other,
    )
    # the answer a missing id gets: no oracle of which ids exist (issue 8)
    assert body["data"]["deleteComparison"]["userErrors"][0]["code"] == "UNKNOWN_COMPARISON"
    assert await api.snapshot() == before
    mine_node = await api.gql(
        "query($id: ID!) { node(id: $id) { ... on Comparison { scores { score } } } }",
        {"id": comparison_id}, mine,
    )  # fmt: skip
    assert mine_node["data"]["node"]["scores"]


async def test_private_ratings_never_leave_under_their_authors_name(api):
    token = await api.register(_name("private"))
    a, b = await _add_video(api, token), await _add_video(api, token)
    await api.gql(SUBMIT, {"a": a, "b": b, "s": [_score()]}, token)
    me = (await api.gql("{ me { username } }", token=token))["data"]["me"]["username"]
    profile = (
        "query($u: String!) { user(username: $u) { ratings { edges { node { video { youtubeId }"
        " } } } comparisons { edges { node { id } } } } }"
    )
    public = (await api.gql(profile, {"u": me}))["data"]["user"]
    assert len(public["ratings"]["edges"]) == 2 and len(public["comparisons"]["edges"]) == 1
    body = await api.gql(
        "mutation($id: String!) { setRatingVisibility(input: {youtubeId: $id, isPublic: false})"
        " { isPublic " + ERRORS + " } }",
        {"id": a},
        token,
    )
    assert body["data"]["setRatingVisibility"] == {"isPublic": False, "userErrors": []}
    public = (await api.gql(profile, {"u": me}))["data"]["user"]
    assert [r["node"]["video"]["youtubeId"] for r in public["ratings"]["edges"]] == [b]
    assert public["comparisons"]["edges"] == []
    mine = await api.gql("{ me { ratings { edges { node { isPublic } } } } }", token=token)
    assert sorted(r["node"]["isPublic"] for r in mine["data"]["me"]["ratings"]["edges"]) == [
        False, True,
    ]  # fmt: skip


async def test_admin_mutations_refuse_others_and_trust_moves(api):
    user = _name("vouchee")
    token = await api.register(user)
    voucher = await api.login("aidjango")
    set_pretrust = (
        "mutation($u: String!, $p: Float!) { setPretrust(input: {username: $u, pretrust: $p})"
        " { user { username trust } " + ERRORS + " } }"
    )
    before = await api.snapshot()
    for who in (token, voucher, None):
        body = await api.gql(set_pretrust, {"u": user, "p": 0.5}, who)
        code = body["data"]["setPretrust"]["userErrors"][0]["code"]
        assert code == ("UNAUTHENTICATED" if who is None else "FORBIDDEN")
    body = await api.gql("mutation { refit { fit { iterations } " + ERRORS + " } }", token=token)
    assert body["data"]["refit"]["userErrors"][0]["code"] == "FORBIDDEN"
    assert await api.snapshot() == before

    admin = await api.login(ADMIN)
    body = await api.gql(set_pretrust, {"u": user, "p": 1.5}, admin)
    assert body["data"]["setPretrust"]["userErrors"][0]["code"] == "OUT_OF_RANGE"
    body = await api.gql(set_pretrust, {"u": user, "p": 0.5}, admin)
    assert body["data"]["setPretrust"]["user"]["trust"] == pytest.approx(0.5)

    vouch = (
        "mutation($u: String!) { vouch(input: {username: $u}) { user { trust } "
        + ERRORS + " } }"
    )  # fmt: skip
    body = await api.gql(vouch, {"u": user}, voucher)
    assert body["data"]["vouch"]["user"]["trust"] > 0.5
    body = await api.gql(vouch, {"u": "aidjango"}, voucher)
    assert body["data"]["vouch"]["userErrors"][0]["code"] == "SELF_VOUCH"
    body = await api.gql(
        "mutation($u: String!) { unvouch(input: {username: $u}) { user { trust } } }",
        {"u": user}, voucher,
    )  # fmt: skip
    assert body["data"]["unvouch"]["user"]["trust"] == pytest.approx(0.5)


async def test_register_and_login_errors(api):
    name = _name()
    await api.register(name)
    body = await api.gql(
        "mutation($u: String!) { register(input: {username: $u, password: \"long enough!\"}) {"
        + ERRORS + " } }", {"u": name},
    )  # fmt: skip
    assert body["data"]["register"]["userErrors"][0]["code"] == "USERNAME_TAKEN"
    body = await api.gql(
        'mutation { register(input: {username: "x\\u0007y", password: "short"}) {' + ERRORS + " } }"
    )
    assert body["data"]["register"]["userErrors"][0]["code"] == "BAD_USERNAME"
    body = await api.gql(
        "mutation($u: String!) { login(input: {username: $u, password: \"wrong password\"}) {"
        " token " + ERRORS + " } }", {"u": name},
    )  # fmt: skip
    assert body["data"]["login"]["token"] is None
    assert body["data"]["login"]["userErrors"][0]["code"] == "BAD_CREDENTIALS"
    rows = await api.rows(
        'SELECT t.token_sha256 FROM api_token t JOIN "user" u ON u.id = t.user_id '
        f"WHERE u.username = '{name}'"
    )
    assert rows and all(len(r[0]) == 64 for r in rows)  # only hashes are stored


async def test_suggestions_and_stats(api):
    token = await api.login("le_science4all")
    body = await api.gql(
        "{ suggestions(first: 5) { videoA { youtubeId } videoB { youtubeId } uncertainty reason }"
        " }", token=token,
    )  # fmt: skip
    pairs = body["data"]["suggestions"]
    assert 1 <= len(pairs) <= 5
    assert all(p["videoA"]["youtubeId"] != p["videoB"]["youtubeId"] for p in pairs)
    body = await api.gql("{ suggestions { reason } }")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
