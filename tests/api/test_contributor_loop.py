"""The contributor loop in one round trip, over real HTTP: ``submitComparison``
offers the next pair from the live uncertainties, rate-later entries leave after
4 comparisons of the video (Tournesol's default), ``me.ranking`` pages my videos by
my own scores."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")
ERRORS = "userErrors { field message code }"
SUBMIT = (
    "mutation($a: String!, $b: String!, $s: Int!) { submitComparison(input: {videoA: $a,"
    " videoB: $b, scores: [{criterion: largely_recommended, score: $s}]}) {"
    " nextPair { videoA { youtubeId } videoB { youtubeId } uncertainty reason } " + ERRORS + " } }"
)
LATER = "mutation($v: String!) { addToRateLater(input: {youtubeId: $v}) { " + ERRORS + " } }"
MY_LATER = "{ me { rateLater(first: 100) { edges { node { youtubeId } } } } }"
RANKING = """query($first: Int!, $after: String, $c: CriterionName! = largely_recommended) {
  me { ranking(first: $first, after: $after, criterion: $c) {
    edges { cursor node { video { youtubeId } scores { criterion score } } }
    pageInfo { hasNextPage endCursor } } } }"""


def _yt() -> str:
    return uuid.uuid4().hex[:11]


async def _submit(api, token: str, a: str, b: str, score: int = 5) -> dict:
    body = await api.gql(SUBMIT, {"a": a, "b": b, "s": score}, token)
    result = body["data"]["submitComparison"]
    assert result["userErrors"] == [], body
    return result


async def _later(api, token: str) -> list[str]:
    body = await api.gql(MY_LATER, token=token)
    return [e["node"]["youtubeId"] for e in body["data"]["me"]["rateLater"]["edges"]]


async def test_next_pair_comes_with_the_submission(api):
    token = await api.register("loop_" + uuid.uuid4().hex[:8])
    later = _yt()
    await api.gql("mutation($v: String!) { addVideo(input: {youtubeId: $v}) { created } }",
                  {"v": later}, token)  # fmt: skip
    assert (await api.gql(LATER, {"v": later}, token))["data"]["addToRateLater"]["userErrors"] == []
    a, b = _yt(), _yt()
    following = (await _submit(api, token, a, b))["nextPair"]
    pair = {following["videoA"]["youtubeId"], following["videoB"]["youtubeId"]}
    assert len(pair) == 2 and pair != {a, b}  # never the pair just compared
    # the rate-later video was never compared: the most uncertain, so it comes first
    assert later in pair and following["reason"] == "RATE_LATER"
    assert following["uncertainty"] > 0
    # without rate-later entries, still a pair from live uncertainties, never one done
    await api.gql(
        "mutation($v: String!) { removeFromRateLater(input: {youtubeId: $v}) { "
        + ERRORS + " } }", {"v": later}, token,
    )  # fmt: skip
    following = (await _submit(api, token, a, later))["nextPair"]
    pair = {following["videoA"]["youtubeId"], following["videoB"]["youtubeId"]}
    assert len(pair) == 2 and pair not in ({a, b}, {a, later})


async def test_rate_later_entries_leave_after_four_comparisons(api):
    token = await api.register("later_" + uuid.uuid4().hex[:8])
    video, kept = _yt(), _yt()
    for v in (video, kept):
        await api.gql("mutation($v: String!) { addVideo(input: {youtubeId: $v}) { created } }",
                      {"v": v}, token)  # fmt: skip
        await api.gql(LATER, {"v": v}, token)
    others = [_yt() for _ in range(4)]
    for i, other in enumerate(others[:3]):
        await _submit(api, token, video, other, score=i - 1)
        assert set(await _later(api, token)) == {video, kept}
    await _submit(api, token, video, others[0], score=3)  # an update: still 3 comparisons
    assert set(await _later(api, token)) == {video, kept}
    await _submit(api, token, others[3], video)  # the fourth, either side
    assert await _later(api, token) == [kept]
    assert api.settings.rate_later_auto_remove == 4


async def test_me_ranking_orders_my_videos_by_my_own_scores(api):
    assert (await api.gql(RANKING, {"first": 5}))["data"]["me"] is None  # signed out
    token = await api.register("ranker_" + uuid.uuid4().hex[:8])
    best, middle, worst = _yt(), _yt(), _yt()
    await _submit(api, token, middle, best, score=10)  # positive prefers videoB
    await _submit(api, token, worst, middle, score=10)
    await _submit(api, token, worst, best, score=10)
    seen, after = [], None
    while True:
        body = await api.gql(RANKING, {"first": 1, "after": after}, token)
        page = body["data"]["me"]["ranking"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [n["video"]["youtubeId"] for n in seen] == [best, middle, worst]
    main = [next(s["score"] for s in n["scores"] if s["criterion"] == "largely_recommended")
            for n in seen]  # fmt: skip
    assert main == sorted(main, reverse=True) and main[0] > main[-1]
    # no score on another criterion: nothing ranked on it
    body = await api.gql(RANKING, {"first": 5, "c": "pedagogy"}, token)
    assert body["data"]["me"]["ranking"]["edges"] == []
    body = await api.gql(RANKING, {"first": 5, "after": "garbage"}, token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_PAGINATION", body


async def test_my_own_auto_remove_setting_wins(api):
    token = await api.register("mine_" + uuid.uuid4().hex[:8])
    body = await api.gql(
        "mutation { updateSettings(input: {rateLaterAutoRemove: 1}) { " + ERRORS + " } }",
        token=token,
    )
    assert body["data"]["updateSettings"]["userErrors"] == [], body
    video = _yt()
    await api.gql("mutation($v: String!) { addVideo(input: {youtubeId: $v}) { created } }",
                  {"v": video}, token)  # fmt: skip
    await api.gql(LATER, {"v": video}, token)
    assert await _later(api, token) == [video]
    await _submit(api, token, video, _yt())
    assert await _later(api, token) == []  # after 1 comparison, not 4
